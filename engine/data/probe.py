"""Read a binary dataset in a short child process first, so that a reader's crash is a sentence.

pyarrow reads Parquet and Arrow in native code. A damaged or crafted file that its checks miss
can end the reading process with a signal (an Arrow file with one corrupted string offset ended
it with SIGBUS before :mod:`engine.data.readers` validated tables), and no ``except`` runs.
The window reads datasets in its own process, so :func:`check_in_child_process` lets the same
read (and the full validation) happen first in a child, ``python -P -m engine.data.probe read
DIR``: a crash there becomes a :class:`BadInputError`, and only a file the child read cleanly
is then read again in this process. Text formats are parsed by Python code and need no child.

The child is one of the runtime's isolated processes (:mod:`engine.runtime.isolated`), so it
starts like the engine's other children: the code of *this* engine package, ``-P`` so that
nothing in the working folder is imported, a private working folder, its output in files so a
chatty reader cannot stall, and the path in that folder's call file. A frozen build (no
separate Python to start) skips the child and says so in the log; the in-process validation
still runs.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from engine.data.readers import read_table
from engine.errors import BadInputError
from engine.runtime.channel import can_start_child
from engine.runtime.isolated import Arrays, ChildFailed, Task, TaskTable, run_isolated, serve

log = logging.getLogger(__name__)

BINARY_SUFFIXES = frozenset({".parquet", ".arrow"})


def check_in_child_process(path: Path) -> None:
    """Read and validate ``path`` in a child process; BadInputError if it fails or crashes there.

    Blocks until the child ends (about as long as reading the file; the child's start costs
    about half a second). Call it from a worker thread, never the GUI thread.
    """
    if not can_start_child():
        log.info("reading %s without a child check: a frozen build has no separate Python", path.name)
        return
    start = time.perf_counter()
    try:
        run_isolated(TASKS, "read", {}, {"path": str(Path(path).resolve())})
    except ChildFailed as exc:
        if exc.returncode is None:  # it never started: read without it, as the in-process checks still run
            log.warning(
                "could not start the dataset check (%s); reading %s without it", exc.detail, path.name
            )
            return
        if exc.returncode < 0:
            raise BadInputError(
                f"Cannot read {path}: the reader crashed on it ({_signal_name(-exc.returncode)}), "
                "so the file is damaged or not what its name says."
            ) from exc
        raise BadInputError(f"Cannot read {path}: the reader failed ({exc.detail}).") from exc
    log.info("checked %s in a child process", path.name, extra={"duration_s": time.perf_counter() - start})


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _read(arrays: Arrays, params: dict[str, Any]) -> Arrays:
    """The child's task: read and validate ``params["path"]``; its BadInputError is the sentence."""
    read_table(Path(str(params["path"])))
    return {}


TASKS = TaskTable("engine.data.probe", {"read": Task("dataset check", _read)})

if __name__ == "__main__":
    sys.exit(serve(TASKS))
