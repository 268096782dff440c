"""The engine in a child process: :class:`EngineProcess` is an :class:`~engine.api.protocol.EngineAPI`.

Its remote methods are not written here: there is one per entry of
:func:`engine.api.methods.calls`, made from that table when this module is imported, so the
proxy cannot have a method the API (and the worker's dispatch) does not. Each call sends its
request to :mod:`engine.process.worker` (see its docstring for the protocol), where an
:class:`~engine.core.service.EngineService` holds the datasets, embedding runs and maps; calls
pass their ids, so texts and vectors stay in the child once a dataset is open.

A call waits on the calling thread, which is a job lane's worker thread, never the GUI thread.
While it waits that thread only sleeps on an event, so the GUI thread has the interpreter to
itself: model loading, torch imports, UMAP and PCA run in the child. Progress lines from the
child reach the job's ``report``; a cancelled ``token`` is passed on to the child and the call
returns at once (a step that cannot stop halfway finishes in the child and lands in the cache).

The child starts with the first call (or :meth:`EngineProcess.start`), as ``python -P`` in a
private working folder, so nothing in the folder Loupe was started from runs in it. If it dies
(the out-of-memory killer, a crash in native code), every call waiting on it fails with one
sentence and the next call starts a new child; what it had computed is in the cache, but the
datasets it held are gone (their ids say so: open the dataset again). A reply line that is not a
message of the protocol is handled the same way (the child is stopped), never ignored: the call
it was meant for would otherwise wait forever. In a frozen build there is no Python to start, so
:func:`start_engine` returns an in-process :class:`~engine.core.service.EngineService` instead.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from engine.api.methods import Call, calls
from engine.api.protocol import EngineAPI
from engine.cache.store import Cache
from engine.core.service import EngineService
from engine.errors import LoupeError
from engine.logs.records import is_standard_field
from engine.model.models import DEFAULT_MODEL, Pooling, model_for_another_folder, pooling_named
from engine.process.wire import Encoder, WireError, decode
from engine.runtime.channel import (
    PrivateFolder,
    UnexpectedError,
    can_start_child,
    child_env,
    error_from_record,
    exit_detail,
    python_command,
    wait_for_event,
)
from engine.runtime.context import context_fields
from engine.runtime.jobs import CancelToken, Report, silent_report

log = logging.getLogger(__name__)

# How often a waiting call looks at its cancel token.
POLL_S = 0.05
# After its stdin closes the child gets this long to finish before it is killed.
CLOSE_GRACE_S = 3.0


class EngineProcessStopped(LoupeError):
    """The engine process ended while calls were waiting on it."""


# An unexpected error in the engine process (a bug, not the user's input): its traceback is in
# ``details`` and the log.
EngineCallFailed = UnexpectedError

# The error kinds the engine process's replies may rebuild besides the channel's own.
_KNOWN_ERRORS: Mapping[str, type[Exception]] = {
    EngineProcessStopped.__name__: EngineProcessStopped,
    WireError.__name__: WireError,
}


@dataclass
class _Call:
    report: Report
    context: dict[str, Any]  # the caller's log context (job id, dataset), for the child's records
    done: threading.Event = field(default_factory=threading.Event)
    reply: Mapping[str, Any] | None = None


def start_engine(
    cache: Cache,
    model: str = DEFAULT_MODEL,
    device: str = "auto",
    *,
    pooling: Pooling | None = None,
    precision: str = "auto",
    redis_url: str | None = None,
    no_cache: bool = False,
    warm_up_rows: int | bool | None = False,
    in_process: bool = False,
) -> EngineAPI:
    """The desktop's engine: a child process, or this process where none can be started.

    ``warm_up_rows`` as for :class:`EngineProcess`; in this process the caller warms up itself.
    """
    if in_process or not can_start_child():
        if not in_process:
            log.info("the engine runs in this process: a frozen build has no separate Python to run it in")
        return EngineService(cache, model=model, device=device, pooling=pooling, precision=precision)
    return EngineProcess.started(
        cache,
        model,
        device,
        pooling=pooling,
        precision=precision,
        redis_url=redis_url,
        no_cache=no_cache,
        warm_up_rows=warm_up_rows,
    )


class EngineProcess(EngineAPI):
    """:class:`EngineAPI` computed in ``python -m engine.process.worker``.

    The API's calls (``embed``, ``project``, …) are added to this class from
    :func:`engine.api.methods.calls` below; the class itself holds the child's life.
    ``cache`` is this process's own connection to the same cache, for the status bar; the
    child's cache counters are added to its ``stats`` as its replies arrive.
    """

    def __init__(
        self,
        cache: Cache,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        *,
        pooling: Pooling | None = None,
        precision: str = "auto",
        redis_url: str | None = None,
        no_cache: bool = False,
        warm_up_rows: int | bool | None = False,
    ) -> None:
        """``warm_up_rows``: False, or compile UMAP's kernels in the child at start (see
        ``engine.maps.projection.warm_up``; None = for any size, a number = for that many rows)."""
        self._cache = cache
        self.model_name = model
        self.device = device
        self.pooling = pooling
        self.precision = precision
        self._redis_url = redis_url
        self._no_cache = no_cache
        self._warm_up_rows = warm_up_rows
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._pending: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._child_counters: dict[str, int] = {}
        self._closed = False

    @classmethod
    def started(
        cls,
        cache: Cache,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        *,
        pooling: Pooling | None = None,
        precision: str = "auto",
        redis_url: str | None = None,
        no_cache: bool = False,
        warm_up_rows: int | bool | None = False,
    ) -> EngineProcess:
        """A new engine process whose child starts now (it imports and connects meanwhile).

        Code outside tests builds one here or through :func:`start_engine`: the class subclasses
        the protocol so that mypy sees its generated calls, which makes mypy call a direct
        ``EngineProcess(...)`` abstract; ``cls(...)`` in a classmethod is allowed."""
        engine = cls(
            cache,
            model,
            device,
            pooling=pooling,
            precision=precision,
            redis_url=redis_url,
            no_cache=no_cache,
            warm_up_rows=warm_up_rows,
        )
        engine.start()
        return engine

    @property
    def cache(self) -> Cache:
        return self._cache

    # -- the child -----------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        """Start the child now (it imports and connects while the window opens)."""
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> subprocess.Popen[str]:
        if self._closed:
            raise LoupeError("The engine has been closed.")
        process = self._process
        if process is not None and process.poll() is None:
            return process
        # A fixed command line: this interpreter and the worker module, without the working
        # folder on its path, in a private working folder (removed when it ends); the
        # configuration, including a cache URL that may hold a password, goes through the pipe.
        workdir = PrivateFolder("loupe-engine-")
        try:
            process = subprocess.Popen(
                python_command("engine.process.worker"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,  # the child's warnings go where this process's go
                text=True,
                encoding="utf-8",
                bufsize=1,
                cwd=workdir.path,
                env=child_env(),
            )
        except BaseException:
            workdir.remove()
            raise
        assert process.stdin is not None and process.stdout is not None
        config = {
            "model": model_for_another_folder(self.model_name),
            "device": self.device,
            "pooling": self.pooling,
            "precision": self.precision,
            "redis_url": self._redis_url,
            "no_cache": self._no_cache,
            "warm_up": self._warm_up_rows is not False,
            "warm_up_rows": None if isinstance(self._warm_up_rows, bool) else self._warm_up_rows,
        }
        self._process, self._child_counters = process, {}
        # The reader first: it reaps the child and removes its folder however it ends.
        threading.Thread(
            target=self._read_replies,
            args=(process, process.stdout, workdir),
            name="engine-replies",
            daemon=True,
        ).start()
        try:
            process.stdin.write(json.dumps(config) + "\n")
            process.stdin.flush()
        except OSError:
            pass  # the child is gone already; its reader thread fails the calls that wait on it
        log.info("engine process started (pid %d)", process.pid)
        return process

    def _read_replies(self, process: subprocess.Popen[str], replies: IO[str], workdir: PrivateFolder) -> None:
        """The reader thread: hands each reply to its call; on EOF fails whatever still waits.

        A line it cannot read (not JSON, or not a message of the protocol) means the stream can no
        longer be trusted to match replies to calls: the child is killed and every waiting call
        fails in one sentence (the next call starts a new child), rather than waiting forever.
        """
        fatal = ""
        for line in replies:
            try:
                fatal = self._handle(line) or fatal
            except Exception as exc:
                log.error(
                    "engine process (pid %d) sent a reply that cannot be read (%s): %.200r",
                    process.pid, exc, line,
                )  # fmt: skip
                fatal = (
                    "The engine process sent a reply that cannot be read, so it was stopped. "
                    "It starts again with the next job; what it computed is in the cache."
                )
                process.kill()
                break
        replies.close()
        code = process.wait()
        workdir.remove()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        with self._lock:
            stranded = list(self._pending.items())
            if self._process is process:
                self._process = None
        if self._closed and not fatal:
            reason = "The engine was closed."
        else:
            reason = fatal or _exit_sentence(code)
            log.warning("engine process (pid %d) ended with exit code %s: %s", process.pid, code, reason)
        for call_id, _stranded in stranded:
            self._deliver(
                call_id, {"error": {"type": EngineProcessStopped.__name__, "message": reason, "details": ""}}
            )

    def _handle(self, line: str) -> str | None:
        """Act on one line from the child; the child's fatal error, if the line is one.

        Raises (ValueError, TypeError, …) for a line that is not a message of the protocol.
        """
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("not a JSON object")
        if "log" in message:
            self._log(message["log"])
        elif "fatal" in message:
            return str(message["fatal"])
        elif "id" in message:
            call_id = message["id"]
            if type(call_id) is not int:
                raise ValueError("its id is not a number")
            if "progress" in message:
                done, total, text = message["progress"]
                message = {"progress": (int(done), int(total), str(text))}
            elif isinstance(message.get("error"), dict):
                message = {**message, "error": {k: str(v) for k, v in message["error"].items()}}
            elif "result" not in message:
                raise ValueError("it has neither a result nor an error")
            self._deliver(call_id, message)
        elif "ready" not in message:
            raise ValueError("not a message of the protocol")
        return None

    def _log(self, entry: Mapping[str, Any]) -> None:
        """A record from the child, logged here with the job context of the call that made it."""
        logger, level = (
            logging.getLogger(str(entry.get("name", "engine"))),
            int(entry.get("level", logging.INFO)),
        )
        if not logger.isEnabledFor(level):
            return
        with self._lock:
            call = self._pending.get(entry.get("call") or 0)
        fields = {**dict(entry.get("fields") or {}), **(call.context if call is not None else {})}
        extra = {key: value for key, value in fields.items() if not is_standard_field(key)}
        logger.log(level, "%s", entry.get("message", ""), extra=extra)

    def _deliver(self, call_id: int, message: Mapping[str, Any]) -> None:
        with self._lock:
            call = self._pending.get(call_id)
        if call is None:
            return  # a call given up on (cancelled): its late reply is dropped
        if "progress" in message:
            try:
                call.report(*message["progress"])
            except Exception:  # the caller's bug: logged, and never taken for an unreadable reply
                log.exception("a progress report of the engine process failed")
            return
        if "cache" in message:
            self._add_cache_counters(message["cache"])
        with self._lock:
            self._pending.pop(call_id, None)
        call.reply = message
        call.done.set()

    def _add_cache_counters(self, counters: Mapping[str, int]) -> None:
        """The child's cumulative counters, added to this process's as differences."""
        stats = self.cache.stats
        for name, value in counters.items():
            if hasattr(stats, name):
                setattr(stats, name, getattr(stats, name) + int(value) - self._child_counters.get(name, 0))
        self._child_counters = dict(counters)

    def close(self) -> None:
        """End the child: its stdin closes, it cancels its calls and exits (killed if it lingers)."""
        with self._lock:
            self._closed = True
            process = self._process
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def reconfigured(
        self, model: str, device: str, pooling: str | None, precision: str | None = None
    ) -> EngineProcess:
        """A new engine process for another model, device, pooling or precision (None: this
        one's), on the same cache."""
        engine = EngineProcess.started(
            self.cache,
            model,
            device,
            pooling=pooling_named(pooling),
            precision=self.precision if precision is None else precision,
            redis_url=self._redis_url,
            no_cache=self._no_cache,
        )
        self.close()
        return engine

    # -- calls ---------------------------------------------------------------------------

    def call(
        self, name: str, request: object, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> object:
        """Run the call ``name`` with ``request`` in the child and wait for its result.

        The child checks both (a name in :func:`~engine.api.methods.calls`, a request of its
        type); the result must be of the call's result type.
        """
        if token is not None:
            token.raise_if_cancelled()
        with PrivateFolder("loupe-call-") as folder:
            call_id = next(self._ids)
            message = {
                "id": call_id,
                "call": name,
                "folder": str(folder),
                "request": Encoder(folder).encode(request),
            }
            call = _Call(report, context_fields())
            with self._lock:
                process = self._ensure_started()
                self._pending[call_id] = call
                try:
                    assert process.stdin is not None
                    process.stdin.write(json.dumps(message) + "\n")
                    process.stdin.flush()
                except OSError:
                    pass  # the child is gone; its reader thread fails this call in a moment
            wait_for_event(call.done, token, poll_s=POLL_S, on_cancel=lambda: self._give_up(call_id, process))
            assert call.reply is not None
            if "error" in call.reply:
                raise _error_from(name, call.reply["error"])
            result = decode(call.reply["result"], folder)
        expected = calls().get(name)
        if expected is not None and type(result) is not expected.result:
            raise WireError(f"The engine process answered {name} with a {type(result).__name__}.")
        return result

    def _give_up(self, call_id: int, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._pending.pop(call_id, None)
            try:
                assert process.stdin is not None
                process.stdin.write(json.dumps({"cancel": call_id}) + "\n")
                process.stdin.flush()
            except (OSError, ValueError):
                pass  # already gone


def _remote(call: Call) -> Callable[..., object]:
    """The proxy's method for ``call``: sends its request to the child, returns the child's result."""

    def remote(
        self: EngineProcess,
        request: object,
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> object:
        return self.call(call.name, request, token=token, report=report)

    remote.__name__ = remote.__qualname__ = call.name
    remote.__doc__ = getattr(EngineAPI, call.name).__doc__
    return remote


# One remote method per call of the API, from the one table (engine.api.methods.calls).
for _call in calls().values():
    setattr(EngineProcess, _call.name, _remote(_call))


def _error_from(name: str, error: Mapping[str, Any]) -> Exception:
    failure = error_from_record(error, "the engine process", _KNOWN_ERRORS)
    if isinstance(failure, UnexpectedError):
        log.error("%s failed in the engine process:\n%s", name, failure.details or failure.summary)
    return failure


def _exit_sentence(code: int | None) -> str:
    how = exit_detail(code, "") if code is not None else "it ended unexpectedly"  # "it was stopped by…"
    return (
        f"The engine process {how.removeprefix('it ')}. "
        "It starts again with the next job; what it computed is in the cache."
    )
