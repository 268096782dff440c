"""Run one whitelisted compute function in a short-lived child Python process.

Some library code holds the GIL for its whole run: scikit-learn's HDBSCAN (``_hdbscan_prims``,
Cython) froze the desktop's GUI thread for 155 s at 200,000 rows although the fit ran on a
worker thread, and a fit in this process cannot be stopped. In a child process the parent's
interpreter stays free, and cancelling kills the child. A native reader that may crash on a
damaged file (:mod:`engine.data.probe`) runs the same way, so its crash is a sentence.

Whoever has work for a child writes a *tasks module*: a :class:`TaskTable` of the functions
the child may run, and a ``__main__`` that calls :func:`serve` with it. The runtime knows no
task of its own (the clustering task lives with the maps, ``engine.maps.isolated_tasks``).

Nothing crosses the process boundary as a pickle (DESIGN §6): the parent writes the input
arrays and parameters into a :class:`~engine.runtime.channel.PrivateFolder` in the
runtime's one format (:mod:`engine.runtime.exchange`: JSON plus ``.npy`` files); the child
(``python -P -m <tasks module> NAME DIR``, working in that folder: see
:func:`~engine.runtime.channel.python_command`) looks ``NAME`` up in its table (it never imports
or evaluates anything else the caller names), runs it, and writes its arrays back the same way
in ``result.json``, or the exception in ``error.json``
(:func:`~engine.runtime.channel.error_record`). Standard output and error go to files in the
same folder, so a chatty child cannot fill a pipe and stall. The folder is removed in every case.

A frozen build (PyInstaller and the like) has no Python to start as ``sys.executable``, nor has an
embedded interpreter that leaves it empty; there the function runs in this process instead, as
before, and a log line says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import LoupeError
from engine.runtime.channel import (
    POLL_S,
    PrivateFolder,
    UnexpectedError,
    as_sentence,
    can_start_child,
    child_env,
    error_from_record,
    error_record,
    exit_detail,
    python_command,
    stop_process,
    wait_for_process,
)
from engine.runtime.exchange import Exchange, ExchangeError
from engine.runtime.jobs import CancelToken

__all__ = ["ChildFailed", "Task", "TaskTable", "run_isolated", "serve"]

log = logging.getLogger(__name__)

Arrays = dict[str, npt.NDArray[Any]]
TaskFn = Callable[[Arrays, dict[str, Any]], Arrays]

# Array names are keys the task reads: keep them plain.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_CALL_FILE = "call.json"
_RESULT_FILE = "result.json"
_ERROR_FILE = "error.json"
# The child writes its result's files here, apart from the call's (the same numbering, v1, v2, …).
_RESULT_FOLDER = "result"
# Arrays and plain parameters only: no dataclass may be rebuilt from a child's files.
_EXCHANGE = Exchange(peer="a child process")


@dataclass(frozen=True)
class Task:
    """A function the child may run, and what the user calls it ("the clustering process")."""

    what: str
    fn: TaskFn


@dataclass(frozen=True)
class TaskTable:
    """The tasks one module offers its child: ``python -P -m module NAME DIR`` runs ``tasks[NAME]``."""

    module: str
    tasks: Mapping[str, Task]


class ChildFailed(LoupeError):
    """The child failed: an unexpected exception there, or it died. The message is one sentence
    ("The clustering process failed: …"); ``detail`` is its end ("it was stopped by the system
    (signal 9; …)", "ValueError: bad") and ``returncode`` the child's exit code (None when it
    never started)."""

    def __init__(self, message: str, detail: str, returncode: int | None) -> None:
        super().__init__(message)
        self.detail, self.returncode = detail, returncode


def run_isolated(
    tasks: TaskTable,
    name: str,
    arrays: Mapping[str, npt.ArrayLike],
    params: Mapping[str, Any] | None = None,
    *,
    token: CancelToken | None = None,
    poll_s: float = POLL_S,
) -> Arrays:
    """``tasks.tasks[name]`` on ``arrays`` and ``params`` in a child process; its arrays.

    ``params`` may hold what :mod:`engine.runtime.exchange` carries without dataclasses (numbers,
    strings, lists, dicts, paths). Checks ``token`` every ``poll_s`` seconds while the child
    runs and, when it is cancelled, kills the child and raises :class:`JobCancelled`. A
    :class:`LoupeError` in the child comes back as itself; another failure there (an exception,
    a kill by the system) raises one :class:`ChildFailed` sentence, with the child's standard
    error in the log. An unknown ``name``, an odd array name or an object array is a caller's
    bug: :class:`ValueError`.
    """
    task = _task(tasks, name)
    inputs = _checked_arrays(arrays)
    values = dict(params or {})
    if token is not None:
        token.raise_if_cancelled()
    if not can_start_child():
        log.info("running %s in this process: a frozen build has no separate Python to run it in", name)
        result = task.fn(inputs, values)
        if token is not None:
            token.raise_if_cancelled()
        return result

    start = time.perf_counter()
    with PrivateFolder("loupe-isolated-") as folder:
        call = _EXCHANGE.encoder(folder)
        (folder / _CALL_FILE).write_text(
            json.dumps({"arrays": call.encode(inputs), "params": call.encode(values)}), "utf-8"
        )
        try:
            returncode = _run_child(tasks.module, name, folder, token, poll_s)
        except OSError as exc:  # no such interpreter, no processes left, no memory to fork
            raise ChildFailed(
                as_sentence(f"The {task.what} process could not be started: {exc}"), str(exc), None
            ) from exc
        result = _read_result(task, folder, returncode)
    log.info("%s ran in a child process", name, extra={"duration_s": round(time.perf_counter() - start, 4)})
    return result


def _task(tasks: TaskTable, name: str) -> Task:
    task = tasks.tasks.get(name)
    if task is None:
        raise ValueError(f"{name!r} is not a task {tasks.module} may run")
    return task


def _checked_arrays(arrays: Mapping[str, npt.ArrayLike]) -> Arrays:
    checked: Arrays = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not _NAME.match(key):
            raise ValueError(f"array name {key!r} must be a plain identifier")
        array = np.asarray(value)
        if array.dtype.hasobject:  # np.save would need a pickle for it
            raise ValueError(f"array {key!r} holds Python objects, which cannot be passed without a pickle")
        checked[key] = array
    return checked


def _run_child(module: str, name: str, folder: Path, token: CancelToken | None, poll_s: float) -> int:
    """Start the child, wait for it while checking ``token``; its exit code."""
    with (folder / "stdout.txt").open("wb") as stdout, (folder / "stderr.txt").open("wb") as stderr:
        # A fixed command line: this interpreter, the tasks module, a name already found in its
        # table; the private folder is its working folder.
        process = subprocess.Popen(
            python_command(module, name, str(folder)),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=folder,
            env=child_env(),
        )
        try:

            def say_so() -> None:
                log.info("cancelled: stopping the %s child process (pid %d)", name, process.pid)

            return wait_for_process(process, token, poll_s=poll_s, on_cancel=say_so)
        finally:
            stop_process(process)  # cancelled, or this thread was interrupted: never leave it running


def _read_result(task: Task, folder: Path, returncode: int) -> Arrays:
    stderr = _tail(folder / "stderr.txt")
    error_file, result_file = folder / _ERROR_FILE, folder / _RESULT_FILE
    if error_file.exists():
        error = _error_from(error_file, task.what)
        if not isinstance(error, UnexpectedError):  # a LoupeError is already a sentence for the user
            raise error
        if stderr:
            log.warning("the %s process failed; its standard error:\n%s", task.what, stderr)
        raise ChildFailed(
            as_sentence(f"The {task.what} process failed: {error.summary}"), error.summary, returncode
        )
    if returncode != 0 or not result_file.exists():
        if stderr:
            log.warning("the %s process failed; its standard error:\n%s", task.what, stderr)
        detail = exit_detail(returncode, stderr)
        raise ChildFailed(as_sentence(f"The {task.what} process failed: {detail}"), detail, returncode)
    try:
        result = _EXCHANGE.decode(json.loads(result_file.read_text("utf-8")), folder / _RESULT_FOLDER)
        return _checked_arrays(result)
    except (OSError, ValueError, TypeError, AttributeError, ExchangeError) as exc:
        log.warning("the %s process wrote a result that cannot be read: %s", task.what, exc)
        raise LoupeError(f"The {task.what} process wrote a result that cannot be read.") from exc


def _error_from(path: Path, what: str) -> Exception:
    """The child's exception from ``error.json``; one that cannot be read is an unexpected one."""
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict):
        return UnexpectedError(f"the {what} process", "it reported an error that cannot be read", "")
    return error_from_record(record, f"the {what} process")


def _tail(path: Path, limit: int = 20_000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace").strip()


# The child --------------------------------------------------------------------------------------


def serve(tasks: TaskTable, argv: Sequence[str] | None = None) -> int:
    """The child's side, for a tasks module's ``__main__``: ``NAME DIR``.

    0 with a result, 1 when the task raised (the exception is in ``error.json`` and its
    traceback on standard error), 2 on misuse (an unknown name, a wrong number of arguments).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(f"usage: python -m {tasks.module} NAME DIR", file=sys.stderr)
        return 2
    name, folder = args[0], Path(args[1])
    task = tasks.tasks.get(name)
    if task is None:
        print(f"unknown task {name!r}", file=sys.stderr)
        return 2
    try:
        call = json.loads((folder / _CALL_FILE).read_text("utf-8"))
        arrays, params = (_EXCHANGE.decode(call[part], folder) for part in ("arrays", "params"))
        if not isinstance(arrays, dict) or not isinstance(params, dict):
            raise ExchangeError("The call holds no arrays or no parameters.")
        outputs = _checked_arrays(task.fn(_checked_arrays(arrays), params))
        (folder / _RESULT_FOLDER).mkdir()
        result = _EXCHANGE.encode(outputs, folder / _RESULT_FOLDER)
        # Written last: its presence says every output file is complete.
        (folder / _RESULT_FILE).write_text(json.dumps(result), "utf-8")
    except BaseException as exc:  # the parent turns it into one sentence
        traceback.print_exc()
        # Without the file the parent falls back to the last line of standard error.
        with contextlib.suppress(OSError):
            (folder / _ERROR_FILE).write_text(json.dumps(error_record(exc)), "utf-8")
        return 1
    return 0
