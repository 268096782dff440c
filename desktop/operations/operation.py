"""An operation: a job, and what to do with its partial results, its result and its failure.

Modelled on Anki's ``CollectionOp(...).success(...).failure(...)``: the code that starts a
piece of work also says, in one place, what its outcome does (usually: change the
application model, which the views follow). The job runs on an engine lane and must not touch
Qt; the handlers run on the GUI thread, delivered through the one :class:`EngineBridge`.

``Operation(...).run(operations)`` where :class:`Operations` routes the bridge's signals to
the operation that started the job. An operation with a ``key`` supersedes the running one
with the same key (the newest click, dataset or Apply wins): the older job is cancelled and
whatever it still delivers is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.operations.bridge import EngineBridge
from engine.runtime.jobs import JobFn, JobHandle, Progress

Handler = Callable[[Any], object]


@dataclass
class Operation:
    """``job(token=..., report=...)`` on ``lane``; it returns a result, or yields partial results.

    ``busy``: shown in the status bar with progress and Cancel (quick interactive work is not).
    """

    name: str
    job: JobFn
    lane: str = "compute"
    key: str | None = None
    busy: bool = True
    _partial: Handler | None = field(default=None, repr=False)
    _success: Handler | None = field(default=None, repr=False)
    _failure: Callable[[str], bool | None] | None = field(default=None, repr=False)

    def partial(self, handler: Handler) -> Operation:
        """Called with each item the job yields, in order (GUI thread)."""
        self._partial = handler
        return self

    def success(self, handler: Handler) -> Operation:
        """Called with the job's result (GUI thread); not for a superseded or cancelled job."""
        self._success = handler
        return self

    def failure(self, handler: Callable[[str], bool | None]) -> Operation:
        """Called with the one-sentence message (GUI thread); the window then reports it too
        (a dialog), unless the handler returns True: it has reported it itself."""
        self._failure = handler
        return self

    def run(self, operations: Operations) -> JobHandle:
        return operations.run(self)


class Operations(QObject):
    """Runs operations through the bridge and hands each one its own results (GUI thread).

    Signals, for the status bar and the window: ``busy_changed(bool)`` while any busy
    operation runs, ``progress(name, Progress)`` of busy ones, ``failed(JobHandle, message)``
    and ``cancelled(name)``, and ``done(name)`` after each success.
    """

    busy_changed = Signal(bool)
    started = Signal(str)
    progress = Signal(str, object)
    failed = Signal(object, str)
    cancelled = Signal(str)
    done = Signal(str)

    def __init__(self, bridge: EngineBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self._running: dict[int, Operation] = {}
        self._by_key: dict[str, JobHandle] = {}
        bridge.progress.connect(self._on_progress)
        bridge.partial.connect(self._on_partial)
        bridge.finished.connect(self._on_finished)
        bridge.failed.connect(self._on_failed)
        bridge.cancelled.connect(self._on_cancelled)

    def run(self, operation: Operation) -> JobHandle:
        if operation.key is not None:
            self.cancel(operation.key)
        handle = self.bridge.submit(operation.lane, operation.name, operation.job)
        self._running[handle.job_id] = operation
        if operation.key is not None:
            self._by_key[operation.key] = handle
        if operation.busy:
            self.started.emit(operation.name)
            self.busy_changed.emit(True)
        return handle

    def cancel(self, *keys: str) -> None:
        """Cancel the operations running under ``keys``; what they still deliver is dropped."""
        for key in keys:
            handle = self._by_key.pop(key, None)
            if handle is not None:
                handle.cancel()
                self._forget(handle)

    def cancel_all(self) -> None:
        """Cancel every running job (the Cancel button, Escape); they report as cancelled."""
        self.bridge.cancel_all()

    @property
    def busy(self) -> bool:
        return any(operation.busy for operation in self._running.values())

    def running(self, key: str) -> bool:
        return key in self._by_key

    # -- from the bridge -----------------------------------------------------------------------

    def _forget(self, handle: JobHandle) -> Operation | None:
        operation = self._running.pop(handle.job_id, None)
        if operation is not None and operation.key is not None and self._by_key.get(operation.key) is handle:
            del self._by_key[operation.key]
        if operation is not None and operation.busy and not self.busy:
            self.busy_changed.emit(False)
        return operation

    def _on_progress(self, handle: JobHandle, progress: Progress) -> None:
        operation = self._running.get(handle.job_id)
        if operation is not None and operation.busy:
            self.progress.emit(operation.name, progress)

    def _on_partial(self, handle: JobHandle, step: object) -> None:
        operation = self._running.get(handle.job_id)
        if operation is not None and operation._partial is not None:
            operation._partial(step)

    def _on_finished(self, handle: JobHandle, result: object) -> None:
        operation = self._forget(handle)
        if operation is None:
            return  # superseded: a newer operation of its key has taken its place
        if operation._success is not None:
            operation._success(result)
        self.done.emit(operation.name)

    def _on_failed(self, handle: JobHandle, message: str) -> None:
        operation = self._forget(handle)
        if operation is None:
            return
        if operation._failure is not None and operation._failure(message):
            return
        self.failed.emit(handle, message)

    def _on_cancelled(self, handle: JobHandle) -> None:
        operation = self._forget(handle)
        if operation is not None:
            self.cancelled.emit(operation.name)
