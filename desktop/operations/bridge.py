"""The one place where engine callbacks become Qt signals on the GUI thread.

Jobs run on the engine's :class:`~engine.runtime.jobs.JobRunner` lanes and call back on those
threads. :class:`EngineBridge` re-emits each callback as a Qt signal; because the bridge
lives on the GUI thread and the connections are queued, every slot that views connect runs
on the GUI thread with finished, plain data (dataclasses, numpy arrays).

A job may also hand over results before it ends (the map flow's run, preview, map and scores):
a job function that returns an iterator (a generator) has each item it yields delivered as
:attr:`EngineBridge.partial`, in order, before :attr:`EngineBridge.finished`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from engine.runtime.jobs import CancelToken, JobFn, JobHandle, JobRunner, Progress, Report


class EngineBridge(QObject):
    """Submits jobs and reports on them with signals (all delivered on the GUI thread).

    Signals carry the :class:`JobHandle` first, so a receiver can tell a superseded
    request's result from the newest one and drop it.
    """

    submitted = Signal(object, str)  # JobHandle, lane
    progress = Signal(object, object)  # JobHandle, Progress
    partial = Signal(object, object)  # JobHandle, one step a streaming job yielded
    finished = Signal(object, object)  # JobHandle, result (None for a streaming job)
    failed = Signal(object, str)  # JobHandle, one-sentence message
    cancelled = Signal(object)  # JobHandle
    # Internal, emitted on worker threads and queued onto the GUI thread.
    _progress = Signal(object, object)
    _partial = Signal(object, object)
    _finished = Signal(object, object)
    _failed = Signal(object, str)
    _cancelled = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = JobRunner()
        self._running: dict[int, JobHandle] = {}
        queued = Qt.ConnectionType.QueuedConnection
        self._progress.connect(self._on_progress, queued)
        self._partial.connect(self._on_partial, queued)
        self._finished.connect(self._on_finished, queued)
        self._failed.connect(self._on_failed, queued)
        self._cancelled.connect(self._on_cancelled, queued)

    def submit(self, lane: str, name: str, fn: JobFn) -> JobHandle:
        """Run ``fn(token=..., report=...)`` on ``lane``; call from the GUI thread.

        When ``fn`` returns an iterator, it is run on the lane too, each item emitted as
        :attr:`partial` (the cancel token checked between items) and the job's result is None.
        """
        known = threading.Event()  # the handle exists before the first step is handed over
        holder: list[JobHandle] = []

        def run(*, token: CancelToken, report: Report) -> Any:
            result = fn(token=token, report=report)
            if not isinstance(result, Iterator):
                return result
            known.wait()
            for step in result:
                token.raise_if_cancelled()
                self._partial.emit(holder[0], step)
            return None

        handle = self._runner.submit(
            lane,
            name,
            run,
            on_progress=lambda h, p: self._progress.emit(h, p),
            on_done=lambda h, r: self._finished.emit(h, r),
            on_error=lambda h, message, exc: self._failed.emit(h, message),
            on_cancelled=lambda h: self._cancelled.emit(h),
        )
        holder.append(handle)
        known.set()
        self._running[handle.job_id] = handle
        self.submitted.emit(handle, lane)
        return handle

    @property
    def running(self) -> list[JobHandle]:
        return list(self._running.values())

    def cancel_all(self) -> None:
        self._runner.cancel_all()

    def shutdown(self) -> None:
        """Cancel every job and join the worker threads (each stops within one batch)."""
        self._runner.shutdown()
        self._running.clear()

    def _on_progress(self, handle: JobHandle, progress: Progress) -> None:
        if handle.job_id in self._running:
            self.progress.emit(handle, progress)

    def _on_partial(self, handle: JobHandle, step: Any) -> None:
        if handle.job_id in self._running and not handle.token.cancelled:
            self.partial.emit(handle, step)

    def _on_finished(self, handle: JobHandle, result: Any) -> None:
        if self._running.pop(handle.job_id, None) is not None:
            self.finished.emit(handle, result)

    def _on_failed(self, handle: JobHandle, message: str) -> None:
        if self._running.pop(handle.job_id, None) is not None:
            self.failed.emit(handle, message)

    def _on_cancelled(self, handle: JobHandle) -> None:
        if self._running.pop(handle.job_id, None) is not None:
            self.cancelled.emit(handle)
