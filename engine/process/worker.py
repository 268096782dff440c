"""The engine process: a child Python that runs the desktop's heavy work (``python -P -m
engine.process.worker``).

Why a process and not threads: model loading, torch and numba imports, PCA's ``eigh`` and other C
code hold the interpreter lock for hundreds of milliseconds at a time, and the desktop's GUI thread
shares that lock with its worker threads; a probe saw the window freeze for up to 466 ms while jobs
ran. In a child process none of that touches the GUI thread.

Protocol, one JSON object per line (the parent's side is :mod:`engine.process.proxy`):

* stdin, first line: the configuration ``{"model", "device", "pooling", "precision", "redis_url", "no_cache",
  "warm_up", "warm_up_rows"}``; the child opens its own connection to the same cache, builds an
  :class:`~engine.core.service.EngineService` (which holds the datasets, runs and maps the parent
  names by id) and, with ``warm_up``, compiles UMAP's kernels in the background.
* stdin, then: ``{"id", "call", "folder", "request"}`` runs ``call`` (a name in
  :func:`engine.api.methods.calls`, nothing else) on a thread of its own, with its request (of
  exactly that call's request type) encoded by :mod:`engine.process.wire` in ``folder``;
  ``{"cancel": id}`` sets that call's cancel token.
* stdout: ``{"id", "progress": [done, total, message]}``; then ``{"id", "result", "cache"}`` with
  the result's arrays written into the call's folder, or ``{"id", "error": {...}}`` (an error record
  of :mod:`engine.runtime.channel`); ``{"log": {...}}`` carries the child's log records to the
  parent's log; ``{"ready": true}`` once the engine exists. A line the parent cannot read makes it
  stop this process and fail the calls waiting on it.

The real standard output is kept for the protocol; file descriptor 1 is pointed at standard error
first, so a library that prints cannot corrupt a message. The child exits when its stdin closes (the
parent went away), so it never outlives the desktop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engine.api.methods import calls
from engine.errors import LoupeError
from engine.runtime.channel import error_record
from engine.runtime.jobs import CancelToken, Report

if TYPE_CHECKING:
    from engine.core.service import EngineService

log = logging.getLogger(__name__)

# Enough threads for every lane of the desktop (model, compute, interactive) plus a spare.
THREADS = 4
# How much lower than the desktop's the engine's CPU priority is (os.nice; POSIX only).
NICE = 10
# Progress lines are sent at most this often per call; the last one of a phase always goes.
PROGRESS_INTERVAL_S = 0.05

# The id of the call this thread is running, for the log records it makes.
_current_call = threading.local()

# Test only: the call's one reply is its request, a raw line with "{id}" replaced by the call's
# id, so tests can check how the parent takes a reply it cannot read.
RAW_REPLY_FOR_TESTS = "_raw_reply_for_tests"


class Worker:
    """Reads calls from ``commands``, runs them on threads, writes replies to ``replies``."""

    def __init__(self, service: EngineService | None, commands: IO[str], replies: IO[str]) -> None:
        self.service = service  # None until main() has built it
        self._commands = commands
        self._replies = replies
        self._write_lock = threading.Lock()
        self._tokens: dict[int, CancelToken] = {}
        self._tokens_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="engine-call")

    def send(self, message: Mapping[str, Any]) -> None:
        self._send_line(json.dumps(message, allow_nan=True))

    def _send_line(self, line: str) -> None:
        with self._write_lock:
            self._replies.write(line + "\n")
            self._replies.flush()

    def serve(self) -> None:
        """Until stdin closes: start each call, pass on each cancel."""
        for line in self._commands:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                log.error("engine process: a line that is not JSON was ignored")
                continue
            if "cancel" in message:
                with self._tokens_lock:
                    token = self._tokens.get(int(message["cancel"]))
                if token is not None:
                    token.cancel()
                continue
            call_id = int(message["id"])
            token = CancelToken()
            with self._tokens_lock:
                self._tokens[call_id] = token
            self._pool.submit(self._run, call_id, message, token)
        # The parent closed our stdin: it is gone or wants us gone. Running calls are cancelled.
        with self._tokens_lock:
            for token in self._tokens.values():
                token.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, call_id: int, message: Mapping[str, Any], token: CancelToken) -> None:
        from engine.process.wire import Encoder, decode

        _current_call.id = call_id
        try:
            name = str(message["call"])
            if name not in calls() and name != RAW_REPLY_FOR_TESTS:
                raise LoupeError(f"The engine process has no call named {name!r}.")
            folder = Path(str(message["folder"]))
            request = decode(message.get("request"), folder)
            if name == RAW_REPLY_FOR_TESTS:
                self._send_line(" ".join(str(request).split()).replace("{id}", str(call_id)))
                return
            result = self.dispatch(name, request, token, self._reporter(call_id))
            token.raise_if_cancelled()
            encoded = Encoder(folder).encode(result)
            assert self.service is not None
            self.send({"id": call_id, "result": encoded, "cache": self.service.cache.stats.as_counters()})
        except BaseException as exc:  # every failure goes back to the parent, in words
            self.send({"id": call_id, "error": error_record(exc)})
        finally:
            _current_call.id = None
            with self._tokens_lock:
                self._tokens.pop(call_id, None)

    def dispatch(self, name: str, request: object, token: CancelToken, report: Report) -> object:
        """Run the API's call ``name`` on the service; a request of another type is refused."""
        call = calls().get(name)
        if call is None:
            raise LoupeError(f"The engine process has no call named {name!r}.")
        if type(request) is not call.request:
            raise LoupeError(
                f"The engine process's call {name} takes a {call.request.__name__}, "
                f"not a {type(request).__name__}."
            )
        if self.service is None:
            raise LoupeError("The engine process has not started its engine yet.")
        method: Callable[..., object] = getattr(self.service, name)
        return method(request, token=token, report=report)

    def _reporter(self, call_id: int) -> Report:
        last_time, last_message = [0.0], [""]

        def report(done: int, total: int, message: str = "") -> None:
            now = time.monotonic()
            if now - last_time[0] < PROGRESS_INTERVAL_S and message == last_message[0] and done < total:
                return
            last_time[0], last_message[0] = now, message
            self.send({"id": call_id, "progress": [int(done), int(total), str(message)]})

        return report


class _ForwardLogs(logging.Handler):
    """Sends each log record to the parent, which logs it as its own (log view, files, GELF),
    with its plain structured fields and the id of the call it was logged in."""

    def __init__(self, worker_send: Callable[[Mapping[str, Any]], None]) -> None:
        super().__init__(logging.INFO)
        self._send = worker_send

    def emit(self, record: logging.LogRecord) -> None:
        from engine.logs.records import record_fields

        try:
            fields = {
                key: value
                for key, value in record_fields(record).items()
                if value is None or isinstance(value, bool | int | float | str)
            }
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            entry = {"name": record.name, "level": record.levelno, "message": message, "fields": fields}
            self._send({"log": {**entry, "call": getattr(_current_call, "id", None)}})
        except Exception:  # a log line must never take the engine down
            self.handleError(record)


def _service_from(config: Mapping[str, Any]) -> EngineService:
    from engine.core.service import EngineService
    from engine.model.models import pooling_named
    from engine.user.settings import open_configured_cache

    pooling = config.get("pooling")
    cache = open_configured_cache(config.get("redis_url"), bool(config.get("no_cache")))
    return EngineService(
        cache,
        model=str(config.get("model")),
        device=str(config.get("device", "auto")),
        pooling=pooling_named(None if pooling is None else str(pooling)),
        precision=str(config.get("precision", "auto")),
    )


def main() -> int:
    # Keep the real stdout for the protocol; anything else printed goes to stderr.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    commands = sys.stdin
    config = json.loads(commands.readline() or "{}")
    # Below the desktop's priority: on a machine with few cores, the window keeps its share of
    # the CPU while a fit or an embedding run uses every core here.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(int(config.get("nice", NICE)))
    worker = Worker(None, commands, replies)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(_ForwardLogs(worker.send))
    try:
        service = worker.service = _service_from(config)
    except LoupeError as exc:
        worker.send({"fatal": str(exc)})
        return 2
    worker.send({"ready": True})
    if config.get("warm_up"):
        # UMAP's numba kernels compile here while the model embeds, not in the desktop's process.
        from engine.maps.projection import warm_up_in_background

        warm_up_in_background(rows=config.get("warm_up_rows"))
    try:
        worker.serve()
    finally:
        service.cache.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
