"""Hover linked between two maps: the row under the mouse on one is ringed on the other.

Each map already shows a hovered point's text as a tooltip; in comparison mode the same row
is marked on the other map, so the eye finds where it went. GUI thread only.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF

from desktop.map.view import MapView

_MARK_PX = 18


class HoverLink(QObject):
    """Marks, on each of two maps, the row hovered on the other (only while both are shown)."""

    def __init__(self, first: MapView, second: MapView) -> None:
        super().__init__(first)
        self.marks: dict[int, pg.ScatterPlotItem] = {}
        for source, target in ((first, second), (second, first)):
            mark = pg.ScatterPlotItem(size=_MARK_PX, pen=pg.mkPen("#1f6fff", width=2.5), brush=None)
            mark.setZValue(11)  # over the selection's rings
            target.plot.addItem(mark)
            self.marks[id(target)] = mark
            source.plot.scene().sigMouseMoved.connect(partial(self._moved, source, target))

    def hovered(self, source: MapView, target: MapView, row: int | None) -> None:
        """``row`` is under the mouse on ``source``: ring it on ``target`` (None: nothing)."""
        mark = self.marks[id(target)]
        if row is None or not target.isVisible() or not 0 <= row < len(target.coords):
            mark.clear()
            return
        x, y = target.coords[row]
        mark.setData(x=[float(x)], y=[float(y)], data=[row])

    def marked(self, target: MapView) -> int | None:
        """The row ringed on ``target`` (None: none)."""
        data = self.marks[id(target)].data
        return int(data[0]["data"]) if len(data) else None

    def _moved(self, source: MapView, target: MapView, position: Any) -> None:
        box = source.plot.getViewBox()
        if not box.sceneBoundingRect().contains(QPointF(position)):
            self.hovered(source, target, None)
            return
        point = box.mapSceneToView(position)
        self.hovered(source, target, source.row_at(point.x(), point.y()))
