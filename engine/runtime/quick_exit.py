"""Ending a headless command without the interpreter's teardown.

Once torch and transformers are loaded, Python's own shutdown (clearing every module, then
the libraries' static destructors) takes 0.6-0.9 s on this project's 2-core machine, after
the command's work is done and its output written: a tenth of a whole ``loupe embed`` of
4,000 texts. A finished command has nothing left for that teardown to do, so it can end the
process at once, but only after everything a normal exit does that someone could notice:

1. wait for the threads a normal exit waits for (non-daemon threads, and the workers of any
   thread pool not yet shut down), so no started write is cut short;
2. run the ``atexit`` handlers (log handlers flushed and closed, temporary folders removed by
   ``weakref.finalize``, servers and clusters shut down by their libraries);
3. flush stdout and stderr.

The desktop window ends the ordinary way: Qt cleans up its own objects at teardown.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with ``code`` as a normal exit would, minus the module teardown."""
    # The interpreter's own first step at exit: it joins non-daemon threads and wakes idle
    # thread-pool workers so they end. Private, so it is looked up, not assumed.
    shutdown_threads = getattr(threading, "_shutdown", None)
    if shutdown_threads is not None:
        shutdown_threads()
    atexit._run_exitfuncs()  # the handlers a normal exit runs, last registered first
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (`loupe ... | head`) or a closed stream: nothing left to write to.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
