"""A plain, Qt-free event: callbacks called in order, on the thread that emits (the GUI thread).

The model cannot use Qt signals (it is Qt-free, so it can be tested and reused without a
window); views connect their redraw methods here, as napari's components do with their events.
A callback that raises is not hidden: the error reaches whoever changed the model (in the
window, a slot, which Qt logs and pytest-qt fails a test on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Event(Generic[T]):
    """Callbacks that each get the new value, in the order they connected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[[T], object]] = []

    def connect(self, callback: Callable[[T], object]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[T], object]) -> None:
        """Remove ``callback`` (nothing happens if it was not connected)."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, value: T) -> None:
        for callback in list(self._callbacks):  # a callback may disconnect itself
            callback(value)
