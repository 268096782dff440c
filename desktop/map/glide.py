"""Moving the same rows to new coordinates (another layer, a sweep cell) so the eye can follow
each point: a quarter of a second of frames, eased, each one handed to the map to draw.

A move keeps its time and takes fewer steps when a frame is slow (at a million points a frame
costs tens of ms). GUI thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QObject, QTimer

Coords = npt.NDArray[np.float32]
DURATION_S = 0.25
FRAME_MS = 16


class Glide(QObject):
    """Calls ``draw(coords)`` with the in-between coordinates of each frame, the target last."""

    def __init__(self, draw: Callable[[Coords], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._draw = draw
        self._timer = QTimer(self)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self._step)
        self._from: Coords = np.zeros((0, 2), np.float32)
        self._to: Coords = self._from
        self._started = 0.0  # time.monotonic() when the move began

    def start(self, start: Coords, end: Coords) -> None:
        self._from, self._to, self._started = start.copy(), end, time.monotonic()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def moving(self) -> bool:
        return self._timer.isActive()

    def _step(self) -> None:
        t = min(1.0, (time.monotonic() - self._started) / DURATION_S)
        if t >= 1.0:
            self._timer.stop()
            self._draw(self._to)
            return
        eased = t * t * (3 - 2 * t)  # smoothstep: starts and ends gently
        self._draw((self._from + (self._to - self._from) * eased).astype(np.float32))
