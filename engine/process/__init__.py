"""The engine in a child process: the proxy the desktop holds, the worker that runs in the
child, and the wire format between them (JSON and .npy files, never a pickle)."""
