"""Run one whitelisted compute function in a child Python process.

Some library code holds the GIL for its whole run: scikit-learn's HDBSCAN (``_hdbscan_prims``,
Cython) froze the desktop's GUI thread for 155 s at 200,000 rows although the fit ran on a
worker thread, and a fit in this process cannot be stopped. In a child process the parent's
interpreter stays free, and cancelling kills the child.

Nothing crosses the process boundary as a pickle (DESIGN §6): the parent writes each input
array with ``np.save(allow_pickle=False)`` and the parameters as JSON into a private temporary
directory; the child (``python -P -m engine.runtime.isolated NAME DIR``, working in that directory, so
that nothing in the folder Loupe was started from runs: see :func:`python_command`) looks
``NAME`` up in :data:`TASKS` (it never imports or evaluates anything else the caller names),
runs it, and writes its arrays back the same way plus a ``result.json`` listing them, or an ``error.json``
with the exception's type and message. Standard output and error go to files in the same
directory, so a chatty child cannot fill a pipe and stall. The directory is removed in every
case.

A frozen build (PyInstaller and the like) has no Python to start as ``sys.executable``, nor has an
embedded interpreter that leaves it empty; there the function runs in this process instead, as
before, and a log line says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import JobCancelled, LoupeError
from engine.runtime.jobs import CancelToken

log = logging.getLogger(__name__)

Arrays = dict[str, npt.NDArray[Any]]
TaskFn = Callable[[Arrays, dict[str, Any]], Arrays]

POLL_S = 0.1
# After terminate() a child gets this long to exit before kill(); numpy/sklearn code does not
# catch SIGTERM, so it normally dies at once.
TERMINATE_GRACE_S = 0.5
# Array names become file names: keep them plain.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PARAMS_FILE = "params.json"
_RESULT_FILE = "result.json"
_ERROR_FILE = "error.json"
# The longest a test-only task may sleep, so a stray call cannot hold a child for long.
_MAX_TEST_SLEEP_S = 30.0


@dataclass(frozen=True)
class Task:
    """A function the child may run, and what the user calls it ("the clustering process")."""

    what: str
    fn: TaskFn


def _hdbscan(arrays: Arrays, params: dict[str, Any]) -> Arrays:
    from engine.maps.analysis import hdbscan_fit

    labels, probabilities = hdbscan_fit(
        arrays["points"],
        min_cluster_size=int(params["min_cluster_size"]),
        min_samples=int(params["min_samples"]),
        max_cluster_size=int(params["max_cluster_size"]),
    )
    return {"labels": labels, "probabilities": probabilities}


def _echo_for_tests(arrays: Arrays, params: dict[str, Any]) -> Arrays:
    """Test only: every input array back, plus their sum scaled by ``params["scale"]``."""
    total = sum((np.asarray(a, np.float64).sum() for a in arrays.values()), np.float64(0.0))
    return {**arrays, "scaled_sum": np.array([total * float(params.get("scale", 1.0))])}


def _fail_for_tests(arrays: Arrays, params: dict[str, Any]) -> Arrays:
    """Test only: raise the exception ``params["error"]`` names (from a fixed list)."""
    errors: dict[str, type[Exception]] = {"MemoryError": MemoryError, "ValueError": ValueError}
    raise errors[str(params.get("error", "ValueError"))](str(params.get("message", "")))


def _sleep_for_tests(arrays: Arrays, params: dict[str, Any]) -> Arrays:
    """Test only: sleep ``params["seconds"]`` (at most 30 s), then return nothing."""
    time.sleep(min(float(params.get("seconds", 0.0)), _MAX_TEST_SLEEP_S))
    return {}


TASKS: Mapping[str, Task] = {
    "hdbscan": Task("clustering", _hdbscan),
    "_echo_for_tests": Task("test", _echo_for_tests),
    "_fail_for_tests": Task("test", _fail_for_tests),
    "_sleep_for_tests": Task("test", _sleep_for_tests),
}


def run_isolated(
    name: str,
    arrays: Mapping[str, npt.ArrayLike],
    params: Mapping[str, Any] | None = None,
    *,
    token: CancelToken | None = None,
    poll_s: float = POLL_S,
) -> Arrays:
    """``TASKS[name]`` on ``arrays`` and JSON-able ``params`` in a child process; its arrays.

    Checks ``token`` every ``poll_s`` seconds while the child runs and, when it is cancelled,
    kills the child and raises :class:`JobCancelled`. A failure in the child (an exception, a
    kill by the system) raises one :class:`LoupeError` sentence; the child's full standard error
    goes to the log. An unknown ``name``, an odd array name or an object array is a caller's
    bug: :class:`ValueError`.
    """
    task = _task(name)
    inputs = _checked_arrays(arrays)
    values = dict(params or {})
    if token is not None:
        token.raise_if_cancelled()
    if getattr(sys, "frozen", False) or not sys.executable:
        log.info("running %s in this process: a frozen build has no separate Python to run it in", name)
        result = task.fn(inputs, values)
        if token is not None:
            token.raise_if_cancelled()
        return result

    start = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="loupe-isolated-"))  # mode 0700: only this user reads it
    try:
        for key, array in inputs.items():
            np.save(folder / f"in_{key}.npy", array, allow_pickle=False)
        (folder / _PARAMS_FILE).write_text(json.dumps(values), "utf-8")
        try:
            returncode = _run_child(name, folder, token, poll_s)
        except OSError as exc:  # no such interpreter, no processes left, no memory to fork
            raise LoupeError(_sentence(f"The {task.what} process could not be started: {exc}")) from exc
        result = _read_result(task, folder, returncode)
        elapsed = round(time.perf_counter() - start, 4)
        log.info("%s ran in a child process", name, extra={"duration_s": elapsed})
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _task(name: str) -> Task:
    task = TASKS.get(name)
    if task is None:
        raise ValueError(f"{name!r} is not a task engine.runtime.isolated may run")
    return task


def _checked_arrays(arrays: Mapping[str, npt.ArrayLike]) -> Arrays:
    checked: Arrays = {}
    for key, value in arrays.items():
        if not _NAME.match(key):
            raise ValueError(f"array name {key!r} must be a plain identifier")
        array = np.asarray(value)
        if array.dtype.hasobject:  # np.save would need a pickle for it
            raise ValueError(f"array {key!r} holds Python objects, which cannot be passed without a pickle")
        checked[key] = array
    return checked


# Environment variables that name files or folders: made absolute for a child, which works in a
# folder of its own, so a relative one still means what it meant here.
_PATH_VARIABLES = (
    "LOUPE_HOME", "LOUPE_REDIS_CA", "LOUPE_GELF_CA", "LOUPE_CACHE_KEY_FILE",
    "HF_HOME", "HF_HUB_CACHE", "NUMBA_CACHE_DIR",
    "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
)  # fmt: skip


def python_command(module: str, *args: str) -> list[str]:
    """``python -P -m module args``: this interpreter, without the working folder on ``sys.path``.

    With ``-P`` (Python 3.11+) neither the working folder nor the script's folder is put first on
    the path, so a ``json.py`` or an ``engine/`` in the folder Loupe was started from never runs
    in a child; the installed package and ``PYTHONPATH`` (see :func:`child_env`) still import.
    Start every child in a private working folder too (``cwd=``), which a relative path entry
    would otherwise point at.
    """
    return [sys.executable, "-P", "-m", module, *args]


def child_env() -> dict[str, str]:
    """This environment for a child Python, made independent of the working folder.

    The folder holding *this* engine package comes first on ``PYTHONPATH``, so the child runs the
    same code; the other entries are made absolute and empty ones (which mean "the working
    folder") dropped; ``PYTHONSAFEPATH`` passes ``-P`` on to any Python the child starts; and the
    variables that name paths (:data:`_PATH_VARIABLES`) are made absolute.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    entries = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([root, *entries]))
    env["PYTHONSAFEPATH"] = "1"
    for name in _PATH_VARIABLES:
        if env.get(name):
            env[name] = os.path.abspath(os.path.expanduser(env[name]))
    return env


def _run_child(name: str, folder: Path, token: CancelToken | None, poll_s: float) -> int:
    """Start the child, wait for it while checking ``token``; its exit code."""
    with (folder / "stdout.txt").open("wb") as stdout, (folder / "stderr.txt").open("wb") as stderr:
        # A fixed command line: this interpreter, this module, a name already found in TASKS; the
        # private directory is its working folder.
        process = subprocess.Popen(
            python_command("engine.runtime.isolated", name, str(folder)),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=folder,
            env=child_env(),
        )
        try:
            while True:
                try:
                    return process.wait(timeout=poll_s)
                except subprocess.TimeoutExpired:
                    if token is not None and token.cancelled:
                        log.info("cancelled: stopping the %s child process (pid %d)", name, process.pid)
                        raise JobCancelled from None
        finally:
            if process.poll() is None:  # cancelled, or this thread was interrupted: never leave it running
                _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_result(task: Task, folder: Path, returncode: int) -> Arrays:
    stderr = _tail(folder / "stderr.txt")
    error = folder / _ERROR_FILE
    if error.exists():
        if stderr:
            log.warning("the %s process failed; its standard error:\n%s", task.what, stderr)
        raise LoupeError(_sentence(f"The {task.what} process failed: {_error_detail(error)}"))
    result = folder / _RESULT_FILE
    if returncode != 0 or not result.exists():
        if stderr:
            log.warning("the %s process failed; its standard error:\n%s", task.what, stderr)
        raise LoupeError(_sentence(f"The {task.what} process failed: {exit_detail(returncode, stderr)}"))
    names = json.loads(result.read_text("utf-8"))
    if not isinstance(names, list) or not all(isinstance(n, str) and _NAME.match(n) for n in names):
        raise LoupeError(f"The {task.what} process wrote a result that cannot be read.")
    return {n: np.load(folder / f"out_{n}.npy", allow_pickle=False) for n in names}


def _error_detail(path: Path) -> str:
    try:
        error = json.loads(path.read_text("utf-8"))
        kind, message = str(error["type"]), str(error["message"]).strip()
        user_facing = bool(error.get("user_facing"))
    except (OSError, ValueError, KeyError, TypeError):
        return "it reported an error that cannot be read"
    first_line = message.splitlines()[0] if message else ""
    if user_facing:  # a LoupeError in the child is already a sentence for the user
        return first_line or kind
    return f"{kind}: {first_line}" if first_line else kind


def exit_detail(returncode: int, stderr: str) -> str:
    """How a child process ended, in words ("it was stopped by the system (signal 9; …)")."""
    if returncode < 0:  # POSIX: killed by a signal, most often the out-of-memory killer (SIGKILL)
        return f"it was stopped by the system (signal {-returncode}; perhaps it ran out of memory)"
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    if last:
        return last
    if returncode == 0:
        return "it ended without a result"
    return f"it ended with exit code {returncode}"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _tail(path: Path, limit: int = 20_000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace").strip()


# The child --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The child's entry point: ``NAME DIR``. 0 with a result, 1 when the task raised, 2 on misuse."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m engine.runtime.isolated NAME DIR", file=sys.stderr)
        return 2
    name, folder = args[0], Path(args[1])
    task = TASKS.get(name)
    if task is None:
        print(f"unknown task {name!r}", file=sys.stderr)
        return 2
    try:
        params = json.loads((folder / _PARAMS_FILE).read_text("utf-8"))
        if not isinstance(params, dict):
            raise ValueError("the parameters are not a JSON object")
        inputs = {
            path.name[3:-4]: np.load(path, allow_pickle=False)
            for path in sorted(folder.glob("in_*.npy"))
            if _NAME.match(path.name[3:-4])
        }
        outputs = _checked_arrays(task.fn(inputs, params))
        for key, array in outputs.items():
            np.save(folder / f"out_{key}.npy", array, allow_pickle=False)
        # Written last: its presence says every output file is complete.
        (folder / _RESULT_FILE).write_text(json.dumps(sorted(outputs)), "utf-8")
    except BaseException as exc:  # the parent turns it into one sentence
        traceback.print_exc()
        error = {"type": type(exc).__name__, "message": str(exc), "user_facing": isinstance(exc, LoupeError)}
        # Without the file the parent falls back to the last line of standard error.
        with contextlib.suppress(OSError):
            (folder / _ERROR_FILE).write_text(json.dumps(error), "utf-8")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
