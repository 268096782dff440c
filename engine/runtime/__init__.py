"""The runtime every long task shares, below every other room of the engine but ``errors`` (it
imports none of them): jobs with progress and cancel tokens (``jobs``), the context a job runs in
for its log records (``context``), per-user folders (``paths``), what each child Python shares
with its parent (``channel``: its start, private folder, errors, cancellable wait and exit
sentence), the one temporary-file format between processes (``exchange``), one-shot isolated
children that run a caller's whitelisted tasks (``isolated``), and atomic file writes (``atomic``)."""
