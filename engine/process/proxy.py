"""The desktop's engine in a child process: :class:`EngineProcess` has the Engine's methods.

Each call is sent to :mod:`engine.process.worker` (see its docstring for the protocol) and waited for
on the calling thread, which is a job lane's worker thread, never the GUI thread. While it
waits that thread only sleeps on an event, so the GUI thread has the interpreter to itself:
model loading, torch imports, UMAP and PCA run in the child. Progress lines from the child
reach the job's ``report``; a cancelled ``token`` is passed on to the child and the call
returns at once (a step that cannot stop halfway finishes in the child and lands in the cache).

The child starts with the first call (or :meth:`EngineProcess.start`), as ``python -P`` in a
private working folder, so nothing in the folder Loupe was started from runs in it. If it dies
(the out-of-memory killer, a crash in native code), every call waiting on it fails with one
sentence and the next call starts a new child; what it had computed is in the cache. A reply
line that is not a message of the protocol is handled the same way (the child is stopped),
never ignored: the call it was meant for would otherwise wait forever. In a frozen build there
is no Python to start, so :func:`start_engine` returns an in-process
:class:`~engine.core.engine.Engine` instead.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from engine import errors
from engine.cache.store import Cache
from engine.core.engine import Clustering, EmbeddingRun, Engine
from engine.core.runs import precomputed_run
from engine.data.datasets import Dataset
from engine.errors import JobCancelled, LoupeError
from engine.logs.records import context_fields, is_standard_field
from engine.maps.projection import ProjectionParams
from engine.maps.sweep import SweepResult
from engine.model.attention_stats import AttentionStatistics
from engine.model.inference import AttentionMaps
from engine.model.models import DEFAULT_MODEL, ModelSpec, Pooling
from engine.process.wire import Encoder, WireError, decode
from engine.runtime.isolated import child_env, exit_detail, python_command
from engine.runtime.jobs import CancelToken, Report, silent_report

log = logging.getLogger(__name__)

# How often a waiting call looks at its cancel token.
POLL_S = 0.05
# After its stdin closes the child gets this long to finish before it is killed.
CLOSE_GRACE_S = 3.0


class EngineProcessStopped(LoupeError):
    """The engine process ended while calls were waiting on it."""


class EngineCallFailed(Exception):
    """An unexpected error in the engine process (its traceback is in ``details`` and the log)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


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
    redis_url: str | None = None,
    no_cache: bool = False,
    warm_up_rows: int | bool | None = False,
    in_process: bool = False,
) -> Engine | EngineProcess:
    """The desktop's engine: a child process, or this process where none can be started.

    ``warm_up_rows`` as for :class:`EngineProcess`; in this process the caller warms up itself.
    """
    if in_process or getattr(sys, "frozen", False) or not sys.executable:
        if not in_process:
            log.info("the engine runs in this process: a frozen build has no separate Python to run it in")
        return Engine(cache, model=model, device=device, pooling=pooling)
    engine = EngineProcess(
        cache,
        model,
        device,
        pooling=pooling,
        redis_url=redis_url,
        no_cache=no_cache,
        warm_up_rows=warm_up_rows,
    )
    engine.start()
    return engine


class EngineProcess:
    """The Engine's desktop-facing methods, computed in ``python -m engine.process.worker``.

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
        redis_url: str | None = None,
        no_cache: bool = False,
        warm_up_rows: int | bool | None = False,
    ) -> None:
        """``warm_up_rows``: False, or compile UMAP's kernels in the child at start (see
        ``engine.maps.projection.warm_up``; None = for any size, a number = for that many rows)."""
        self.cache = cache
        self.model_name = model
        self.device = device
        self.pooling = pooling
        self._redis_url = redis_url
        self._no_cache = no_cache
        self._warm_up_rows = warm_up_rows
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._pending: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._child_counters: dict[str, int] = {}
        self._closed = False
        self._spec: ModelSpec | None = None  # see the spec property

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
        workdir = Path(tempfile.mkdtemp(prefix="loupe-engine-"))
        try:
            process = subprocess.Popen(
                python_command("engine.process.worker"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,  # the child's warnings go where this process's go
                text=True,
                encoding="utf-8",
                bufsize=1,
                cwd=workdir,
                env=child_env(),
            )
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        assert process.stdin is not None and process.stdout is not None
        config = {
            "model": _model_for_child(self.model_name),
            "device": self.device,
            "pooling": self.pooling,
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

    def _read_replies(self, process: subprocess.Popen[str], replies: IO[str], workdir: Path) -> None:
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
        shutil.rmtree(workdir, ignore_errors=True)
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
                call_id, {"error": {"type": "EngineProcessStopped", "message": reason, "details": ""}}
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

    def reconfigured(self, model: str, device: str, pooling: Pooling | None) -> EngineProcess:
        """A new engine process for another model, device or pooling, on the same cache."""
        engine = EngineProcess(
            self.cache, model, device, pooling=pooling, redis_url=self._redis_url, no_cache=self._no_cache
        )
        engine.start()
        self.close()
        return engine

    # -- calls ---------------------------------------------------------------------------

    def call(
        self,
        name: str,
        *args: Any,
        token: CancelToken | None = None,
        report: Report = silent_report,
        **kwargs: Any,
    ) -> Any:
        """Run ``name`` (a name in ``engine.process.worker.CALLS``) in the child and wait for its result."""
        if token is not None:
            token.raise_if_cancelled()
        folder = Path(tempfile.mkdtemp(prefix="loupe-call-"))
        try:
            encoder = Encoder(folder)
            call_id = next(self._ids)
            message = {
                "id": call_id,
                "call": name,
                "folder": str(folder),
                "args": encoder.encode(list(args)),
                "kwargs": encoder.encode(kwargs),
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
            while not call.done.wait(POLL_S):
                if token is not None and token.cancelled:
                    self._give_up(call_id, process)
                    raise JobCancelled
            assert call.reply is not None
            if "error" in call.reply:
                raise _error_from(name, call.reply["error"])
            return decode(call.reply["result"], folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _give_up(self, call_id: int, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._pending.pop(call_id, None)
            try:
                assert process.stdin is not None
                process.stdin.write(json.dumps({"cancel": call_id}) + "\n")
                process.stdin.flush()
            except (OSError, ValueError):
                pass  # already gone

    # -- the Engine's methods, as the desktop uses them -----------------------------------

    def dataset_embeddings(
        self,
        dataset: Dataset,
        *,
        layer: int = -1,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> EmbeddingRun:
        if dataset.vectors is not None:
            return precomputed_run(dataset.vectors, report)
        result: EmbeddingRun = self.call("embeddings", dataset.texts, layer=layer, token=token, report=report)
        return result

    def embeddings(
        self,
        texts: Sequence[str],
        *,
        layer: int = -1,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> EmbeddingRun:
        result: EmbeddingRun = self.call("embeddings", texts, layer=layer, token=token, report=report)
        return result

    def projection(
        self,
        vectors: npt.NDArray[np.float32],
        params: ProjectionParams,
        *,
        input_id: str | None = None,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> npt.NDArray[np.float32]:
        coords: npt.NDArray[np.float32] = self.call(
            "projection", vectors, params, input_id=input_id, token=token, report=report
        )
        return coords

    def attention(self, text: str) -> AttentionMaps:
        maps: AttentionMaps = self.call("attention", text)
        return maps

    def attention_statistics(
        self, texts: Sequence[str], *, token: CancelToken | None = None, report: Report = silent_report
    ) -> AttentionStatistics:
        stats: AttentionStatistics = self.call("attention_statistics", texts, token=token, report=report)
        return stats

    def layer_maps(
        self,
        texts: Sequence[str],
        params: ProjectionParams,
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> list[npt.NDArray[np.float32]]:
        maps: list[npt.NDArray[np.float32]] = self.call(
            "layer_maps", texts, params, token=token, report=report
        )
        return maps

    def sweep(
        self,
        run: EmbeddingRun,
        base: ProjectionParams,
        axis_x: tuple[str, Sequence[Any]],
        axis_y: tuple[str, Sequence[Any]],
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> SweepResult:
        result: SweepResult = self.call("sweep", run, base, axis_x, axis_y, token=token, report=report)
        return result

    def clusters(
        self,
        coords: npt.NDArray[np.float32],
        texts: Sequence[str],
        min_cluster_size: int | None = None,
        *,
        token: CancelToken | None = None,
    ) -> Clustering:
        clustering: Clustering = self.call("clusters", coords, texts, min_cluster_size, token=token)
        return clustering

    def faithfulness(
        self,
        vectors: npt.NDArray[np.float32],
        coords: npt.NDArray[np.float32],
        k: int = 10,
        *,
        input_id: str | None = None,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> npt.NDArray[np.float32]:
        values: npt.NDArray[np.float32] = self.call(
            "faithfulness", vectors, coords, k, input_id=input_id, token=token, report=report
        )
        return values

    def trustworthiness(
        self,
        vectors: npt.NDArray[np.float32],
        coords: npt.NDArray[np.float32],
        *,
        token: CancelToken | None = None,
    ) -> float:
        return float(self.call("trustworthiness", vectors, coords, token=token))

    def demo_dataset(
        self, rows: int, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> Dataset:
        dataset: Dataset = self.call("demo_dataset", rows, token=token, report=report)
        return dataset

    def preload_model(self, *, token: CancelToken | None = None) -> str:
        """Load the model in the child; its compute precision."""
        return str(self.call("preload_model", token=token))

    @property
    def spec(self) -> ModelSpec:
        """The model the child computes with, as its Engine resolves it (the same name and
        pooling through the same code), without a call to the child: export's provenance asks
        on the GUI thread. Resolving reads the folder's config and the memoised weights digest."""
        if self._spec is None:
            self._spec = Engine(self.cache, self.model_name, self.device, pooling=self.pooling).spec
        return self._spec


def _error_from(name: str, error: Mapping[str, Any]) -> BaseException:
    kind, message, details = str(error.get("type")), str(error.get("message")), str(error.get("details", ""))
    if kind == "JobCancelled":
        return JobCancelled()
    if kind == "EngineProcessStopped":
        return EngineProcessStopped(message)
    if kind == "WireError":
        return WireError(message)
    known = getattr(errors, kind, None)
    if isinstance(known, type) and issubclass(known, LoupeError):
        return known(message)
    log.error("%s failed in the engine process:\n%s", name, details or f"{kind}: {message}")
    return EngineCallFailed(f"{kind}: {message}" if message else kind, details)


def _model_for_child(model: str) -> str:
    """``model`` as the child must name it: a folder relative to this process's working folder
    made absolute (the child works in a folder of its own); an alias or a hub id unchanged."""
    from engine.model.models import _ALIASES

    folder = Path(model).expanduser()
    if model.lower() in _ALIASES or folder.is_absolute() or not folder.is_dir():
        return model
    return str(folder.resolve())


def _exit_sentence(code: int | None) -> str:
    how = exit_detail(code, "") if code is not None else "it ended unexpectedly"  # "it was stopped by…"
    return (
        f"The engine process {how.removeprefix('it ')}. "
        "It starts again with the next job; what it computed is in the cache."
    )


# What the desktop holds: either kind has the same methods.
AnyEngine = Engine | EngineProcess
