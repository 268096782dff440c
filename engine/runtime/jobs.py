"""Jobs: plain functions with a cancel token and a progress callback, run on worker lanes.

A job is any callable ``fn(*, token, report) -> result``. It checks ``token`` once per batch
and calls ``report(done, total, message)``; both are cheap and thread-safe. The
:class:`JobRunner` runs jobs on named lanes, one thread each, so the model lane (inference),
the compute lane (UMAP) and the interactive lane (attention for a click) never wait on each
other. Results and errors are delivered through callbacks *on the worker thread*; the desktop
bridge is the one place that hops them onto the GUI thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import JobCancelled, LoupeError
from engine.runtime.context import log_context

log = logging.getLogger(__name__)
# "cluster": a job followed on a cluster (hours), which must not hold up the local lanes.
LANES = ("model", "compute", "interactive", "cluster")


class CancelToken:
    """Set once by whoever wants the job to stop; checked by the job between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled


@dataclass(frozen=True)
class Progress:
    """A snapshot of a job's progress; ``rate`` is items per second, ``eta_s`` seconds left."""

    done: int
    total: int
    message: str
    rate: float | None = None
    eta_s: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class Report(Protocol):
    def __call__(self, done: int, total: int, message: str = "") -> None: ...


MIN_RATE_WINDOW_S = 1.0  # a rate from less work than this (and under 5 % done) is noise


class ProgressMeter:
    """Turns (done, total) calls into :class:`Progress` with a rate and ETA for a listener.

    The rate counts only items done since the meter's first report with a new message, so
    a phase that starts with cached rows does not claim an impossible speed; and it is shown
    only once a second has passed or a twentieth of the total is done, so one row done just
    after a phase began does not claim "3/s · ETA 1014 s" (seen on the progressive map).
    """

    def __init__(self, listener: Callable[[Progress], None]) -> None:
        self._listener = listener
        self._message = ""
        self._start_time = time.monotonic()
        self._start_done = 0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if message != self._message:
            self._message, self._start_time, self._start_done = message, now, done
        elapsed = now - self._start_time
        worked = done - self._start_done
        settled = elapsed >= MIN_RATE_WINDOW_S or (total > 0 and worked >= total / 20)
        rate = worked / elapsed if settled and elapsed > 0.05 and worked > 0 else None
        eta = (total - done) / rate if rate else None
        self._listener(Progress(done, total, message, rate, eta))


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 4)


def silent_report(done: int, total: int, message: str = "") -> None:
    """A report callback that discards progress (for tests and quiet callers)."""


def report_phase(report: Report, index: int, count: int, name: str) -> Report:
    """``report`` for step ``index`` of ``count`` equal steps of one job (one progress bar)."""

    def phase(done: int, total: int, message: str = "") -> None:
        share = done / total if total else 1.0
        report(int(1000 * (index + share)), 1000 * count, f"{name}: {message}" if message else name)

    return phase


@dataclass(frozen=True)
class JobHandle:
    """What :meth:`JobRunner.submit` returns: an id, the cancel token and the future."""

    job_id: int
    name: str
    token: CancelToken
    future: Future[Any]

    def cancel(self) -> None:
        self.token.cancel()


JobFn = Callable[..., Any]


class JobRunner:
    """Runs jobs on one thread per lane. Callbacks run on the lane's thread.

    ``on_progress(handle, Progress)``, ``on_done(handle, result)`` and
    ``on_error(handle, message, exception)`` are called at most as described; a cancelled
    job calls ``on_cancelled(handle)`` instead of ``on_error``.
    """

    def __init__(self) -> None:
        self._lanes = {
            lane: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"loupe-{lane}") for lane in LANES
        }
        self._ids = itertools.count(1)
        self._live: dict[int, JobHandle] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(
        self,
        lane: str,
        name: str,
        fn: JobFn,
        *,
        on_progress: Callable[[JobHandle, Progress], None] | None = None,
        on_done: Callable[[JobHandle, Any], None] | None = None,
        on_error: Callable[[JobHandle, str, BaseException], None] | None = None,
        on_cancelled: Callable[[JobHandle], None] | None = None,
    ) -> JobHandle:
        """Queue ``fn(token=..., report=...)`` on ``lane``; returns at once."""
        if self._closed:
            raise RuntimeError("the job runner is shut down")
        token = CancelToken()
        future: Future[Any] = Future()
        handle = JobHandle(next(self._ids), name, token, future)

        def report(progress: Progress) -> None:
            if on_progress is not None and not token.cancelled:
                on_progress(handle, progress)

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            # Every record the job (and its callbacks) logs on this lane carries job_id and job.
            with log_context(job_id=handle.job_id, job=name, lane=lane):
                start = time.perf_counter()
                log.info("job %s started", name)
                try:
                    token.raise_if_cancelled()
                    result = fn(token=token, report=ProgressMeter(report))
                    # A step that cannot stop halfway (a UMAP fit) still ends as cancelled when the
                    # user asked; what it computed is already in the cache.
                    token.raise_if_cancelled()
                except JobCancelled as exc:
                    log.info("job %s cancelled", name, extra={"duration_s": _since(start)})
                    future.set_exception(exc)
                    if on_cancelled is not None:
                        on_cancelled(handle)
                except LoupeError as exc:  # the user can act on it: no traceback
                    log.warning("job %s failed: %s", name, exc, extra={"duration_s": _since(start)})
                    future.set_exception(exc)
                    if on_error is not None:
                        on_error(handle, str(exc), exc)
                except Exception as exc:  # an unexpected failure: keep the traceback in the log
                    log.exception("job %s failed", name, extra={"duration_s": _since(start)})
                    future.set_exception(exc)
                    if on_error is not None:
                        on_error(handle, f"{name} failed unexpectedly: {exc}", exc)
                else:
                    log.info("job %s finished", name, extra={"duration_s": _since(start)})
                    future.set_result(result)
                    if on_done is not None:
                        on_done(handle, result)
                finally:
                    with self._lock:
                        self._live.pop(handle.job_id, None)

        with self._lock:
            self._live[handle.job_id] = handle
        self._lanes[lane].submit(run)
        return handle

    def cancel_all(self) -> None:
        with self._lock:
            handles = list(self._live.values())
        for handle in handles:
            handle.cancel()

    def shutdown(self) -> None:
        """Cancel every job, then wait for the lanes' threads to finish (each within one batch)."""
        self._closed = True
        self.cancel_all()
        for executor in self._lanes.values():
            executor.shutdown(wait=True, cancel_futures=True)
