"""What every child Python of Loupe shares with its parent: how it starts, where it works, how its
errors come back, how a wait on it is cancelled and how its death is told.

The engine process (:mod:`engine.process.proxy`), the one-shot isolated processes
(:mod:`engine.runtime.isolated`) and the dataset probe (:mod:`engine.data.probe`) all use these
pieces, so a safety property fixed here holds for each of them:

* :func:`python_command` and :func:`child_env`: ``python -P`` running *this* engine package, so
  nothing in the folder Loupe was started from is imported in a child;
* :class:`PrivateFolder`: a unique folder only this user can read (0700), removed in every case;
* :func:`error_record` and :func:`error_from_record`: an exception as plain JSON-able words and
  back, rebuilding only the kinds named in :data:`KNOWN_ERRORS` (never a name it is sent);
* :func:`wait_cancellable` (and its forms for an event and a process): a wait that looks at a
  :class:`~engine.runtime.jobs.CancelToken` every poll interval and runs an on-cancel action;
* :func:`exit_detail`: how a child ended, in words.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from engine.errors import BadInputError, JobCancelled, LoupeError, ModelError
from engine.runtime.exchange import ExchangeError
from engine.runtime.jobs import CancelToken

# Starting a child -----------------------------------------------------------------------------

# Environment variables that name files or folders: made absolute for a child, which works in a
# folder of its own, so a relative one still means what it meant here.
_PATH_VARIABLES = (
    "LOUPE_HOME", "LOUPE_REDIS_CA", "LOUPE_GELF_CA", "LOUPE_CACHE_KEY_FILE",
    "HF_HOME", "HF_HUB_CACHE", "NUMBA_CACHE_DIR",
    "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
)  # fmt: skip

# The folder that holds the ``engine`` package (engine/runtime/channel.py -> its grandparent).
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


# The flag a frozen build's own executable takes to run one of these modules instead of the app
# (desktop/launcher.py reads it first thing): a frozen app has no Python to run ``-m MODULE``.
ENGINE_CHILD_FLAG = "--engine-child"

# The only modules a child may run through :data:`ENGINE_CHILD_FLAG`: never a name it is sent.
# (``desktop.map.draw_check`` is self-test's Qt check, by name: the engine never imports Qt.)
ENGINE_CHILD_MODULES = frozenset(
    {"engine.process.worker", "engine.maps.isolated_tasks", "engine.data.probe", "desktop.map.draw_check"}
)


def is_frozen() -> bool:
    """True in a frozen build (PyInstaller): ``sys.executable`` is the app itself, not Python."""
    return bool(getattr(sys, "frozen", False))


def python_command(module: str, *args: str) -> list[str]:
    """``python -P -m module args``: this interpreter, without the working folder on ``sys.path``.

    With ``-P`` (Python 3.11+) neither the working folder nor the script's folder is put first on
    the path, so a ``json.py`` or an ``engine/`` in the folder Loupe was started from never runs
    in a child; the installed package and ``PYTHONPATH`` (see :func:`child_env`) still import.
    Start every child in a :class:`PrivateFolder` too (``cwd=``), which a relative path entry
    would otherwise point at.

    In a frozen build the executable is the app: ``loupe --engine-child module args``, which
    :func:`run_engine_child` answers (its imports come from the bundle, never the working folder).
    """
    if is_frozen():
        return [sys.executable, ENGINE_CHILD_FLAG, module, *args]
    return [sys.executable, "-P", "-m", module, *args]


def run_engine_child(argv: Sequence[str]) -> int:
    """The frozen executable's side of :func:`python_command`: ``MODULE ARGS...`` run as ``-m``.

    Only the modules in :data:`ENGINE_CHILD_MODULES` run; anything else is misuse (exit 2).
    """
    if not argv or argv[0] not in ENGINE_CHILD_MODULES:
        print(f"usage: loupe {ENGINE_CHILD_FLAG} MODULE ARGS... (MODULE: one of "
              f"{', '.join(sorted(ENGINE_CHILD_MODULES))})", file=sys.stderr)  # fmt: skip
        return 2
    module, *args = argv
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as end:
        code = end.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return 0


def child_env() -> dict[str, str]:
    """This environment for a child Python, made independent of the working folder.

    The folder holding *this* engine package comes first on ``PYTHONPATH``, so the child runs the
    same code; the other entries are made absolute and empty ones (which mean "the working
    folder") dropped; ``PYTHONSAFEPATH`` passes ``-P`` on to any Python the child starts; and the
    variables that name paths (:data:`_PATH_VARIABLES`) are made absolute.
    """
    env = dict(os.environ)
    entries = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(_PACKAGE_ROOT), *entries]))
    env["PYTHONSAFEPATH"] = "1"
    for name in _PATH_VARIABLES:
        if env.get(name):
            env[name] = os.path.abspath(os.path.expanduser(env[name]))
    return env


def can_start_child() -> bool:
    """False in a frozen build (PyInstaller and the like) or an embedded interpreter: there is
    no separate Python to start as ``sys.executable``, so the work runs in this process.

    A frozen build whose executable answers :data:`ENGINE_CHILD_FLAG` (Loupe's bundle, see
    ``packaging/``) says so with ``LOUPE_FROZEN_CHILDREN=1`` set by its launcher: it can."""
    if is_frozen():
        return bool(sys.executable) and os.environ.get("LOUPE_FROZEN_CHILDREN") == "1"
    return bool(sys.executable)


class PrivateFolder:
    """A new folder only this user can read (``mkdtemp``: mode 0700, a unique name).

    ``with PrivateFolder("loupe-call-") as folder:`` removes it when the block ends, however it
    ends; a folder that must outlive a block (a long-lived child's working folder) is removed by
    :meth:`remove` instead. Removing twice, or a folder already gone, is harmless.
    """

    def __init__(self, prefix: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.remove()


# Errors across the boundary -------------------------------------------------------------------

# The only exception kinds a record may rebuild, by name, each from its message alone. A caller
# with kinds of its own (the engine process's EngineProcessStopped) passes them as ``known``.
KNOWN_ERRORS: Mapping[str, type[Exception]] = {
    cls.__name__: cls for cls in (LoupeError, BadInputError, ModelError, ExchangeError, JobCancelled)
}


class UnexpectedError(Exception):
    """An unexpected error in a child (a bug, not the user's input): ``kind`` and ``message`` as
    the child named them, ``what`` ran it ("the engine process"), ``details`` its traceback."""

    def __init__(self, what: str, kind: str, message: str, details: str = "") -> None:
        self.what, self.kind, self.message, self.details = what, kind, message, details
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """``"ValueError: first line of its message"``, or the kind alone."""
        first_line = next(iter(self.message.strip().splitlines()), "")
        return f"{self.kind}: {first_line}" if first_line else self.kind


def error_record(exc: BaseException) -> dict[str, str | bool]:
    """``exc`` as JSON-able words: ``type``, ``message``, ``details`` (the traceback, only for an
    unexpected error) and ``user_facing`` (a :class:`LoupeError`: its message is a sentence)."""
    user_facing = isinstance(exc, LoupeError)
    expected = user_facing or isinstance(exc, JobCancelled)
    details = "" if expected else "".join(traceback.format_exception(exc)).rstrip()
    return {"type": type(exc).__name__, "message": str(exc), "details": details, "user_facing": user_facing}


def error_from_record(
    record: Mapping[str, object], what: str, known: Mapping[str, type[Exception]] | None = None
) -> Exception:
    """The exception :func:`error_record` described, to raise in the parent.

    Only a kind named in :data:`KNOWN_ERRORS` or ``known`` is rebuilt (from its message); any
    other :class:`LoupeError` comes back as a plain LoupeError with its sentence, anything else as
    an :class:`UnexpectedError` in ``what`` carrying the details. A record that is not one
    (missing or odd fields) is an UnexpectedError too, never a failure here.
    """
    kind, message = str(record.get("type") or "Exception"), str(record.get("message") or "")
    table = {**KNOWN_ERRORS, **(known or {})}
    if kind == JobCancelled.__name__:
        return JobCancelled()
    if kind in table:
        return table[kind](message)
    if record.get("user_facing") in (True, "True", "true"):  # a JSON bool, or one sent as text
        return LoupeError(message)
    return UnexpectedError(what, kind, message, str(record.get("details") or ""))


# Waiting, with a way out ----------------------------------------------------------------------

# How often a wait on a child looks at its cancel token, unless the caller says otherwise.
POLL_S = 0.1


def wait_cancellable(
    finished: Callable[[float], bool],
    token: CancelToken | None,
    *,
    poll_s: float = POLL_S,
    on_cancel: Callable[[], None] | None = None,
) -> None:
    """Wait until ``finished(poll_s)`` (which blocks for at most ``poll_s`` seconds) is true.

    Between tries ``token`` is checked; once it is cancelled, ``on_cancel()`` runs (stop the
    child, tell it to give up) and :class:`JobCancelled` is raised, within about ``poll_s``.
    """
    while not finished(poll_s):
        if token is not None and token.cancelled:
            if on_cancel is not None:
                on_cancel()
            raise JobCancelled


def wait_for_event(
    event: threading.Event,
    token: CancelToken | None,
    *,
    poll_s: float = POLL_S,
    on_cancel: Callable[[], None] | None = None,
) -> None:
    """:func:`wait_cancellable` for ``event`` to be set (a reply from a long-lived child)."""
    wait_cancellable(event.wait, token, poll_s=poll_s, on_cancel=on_cancel)


def wait_for_process(
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    token: CancelToken | None,
    *,
    poll_s: float = POLL_S,
    on_cancel: Callable[[], None] | None = None,
) -> int:
    """:func:`wait_cancellable` for ``process`` to end; its exit code.

    A cancelled wait does not stop the process by itself: pass ``on_cancel`` (or stop it in a
    ``finally``, as :func:`stop_process` does, which also covers an interrupted thread).
    """

    def ended(timeout: float) -> bool:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    wait_cancellable(ended, token, poll_s=poll_s, on_cancel=on_cancel)
    return int(process.returncode)


# After terminate() a child gets this long to exit before kill(); numpy and scikit-learn code do
# not catch SIGTERM, so it normally dies at once.
TERMINATE_GRACE_S = 0.5


def stop_process(
    process: subprocess.Popen[bytes] | subprocess.Popen[str], grace_s: float = TERMINATE_GRACE_S
) -> None:
    """End ``process`` if it still runs: terminate, then kill after ``grace_s``; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# How a child ended ---------------------------------------------------------------------------


def exit_detail(returncode: int | None, stderr: str = "") -> str:
    """How a child process ended, in words ("it was stopped by the system (signal 9; …)").

    A negative code is a signal (POSIX), most often the out-of-memory killer's SIGKILL; otherwise
    the last line the child wrote to standard error says most, then the exit code.
    """
    if returncode is None:
        return "it ended unexpectedly"
    if returncode < 0:
        return f"it was stopped by the system (signal {-returncode}; perhaps it ran out of memory)"
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    if last:
        return last
    if returncode == 0:
        return "it ended without a result"
    return f"it ended with exit code {returncode}"


def as_sentence(text: str) -> str:
    """``text`` on one line, ending with a full stop unless it already ends a sentence."""
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."
