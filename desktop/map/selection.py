"""Box and lasso on the map: a left-drag draws the outline, the release hands over the region.

The tool watches the plot's viewport for mouse events. In "pan" mode it lets everything
through, so pyqtgraph pans and zooms as usual; in "box" or "lasso" mode it takes the left
button for itself (the view must not pan under a drawing) and leaves the wheel to zoom.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QMouseEvent, QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem

TOOLS = ("pan", "box", "lasso")
# A press and release closer than this (in screen pixels) is a click, not a region.
_CLICK_PX = 3


class RegionTool(QObject):
    """Draws a box or lasso on ``plot_widget`` and emits the region in data coordinates.

    :attr:`region_drawn` carries a k x 2 float array (the polygon's vertices; a box has four)
    and whether Shift was held (add to the selection). :attr:`clicked` carries the data
    point of a press and release without a drag. Both are emitted on the GUI thread.
    """

    region_drawn = Signal(object, bool)
    clicked = Signal(float, float)
    # A class default too: Qt may still call the filter while the Python side is torn down.
    name = "pan"

    def __init__(self, plot_widget: pg.PlotWidget) -> None:
        super().__init__(plot_widget)
        self.name = "pan"
        self._widget = plot_widget
        self._box = plot_widget.getPlotItem().getViewBox()
        self._outline = QGraphicsPathItem()
        self._outline.setPen(pg.mkPen("#0078d7", width=1.5, style=Qt.PenStyle.DashLine))
        self._outline.setBrush(pg.mkBrush(0, 120, 215, 40))
        self._outline.setZValue(30)
        self._outline.setVisible(False)
        self._box.addItem(self._outline, ignoreBounds=True)
        self._press: QPointF | None = None  # the press in viewport pixels
        self._vertices: list[QPointF] = []  # the outline so far, in data coordinates
        plot_widget.viewport().installEventFilter(self)

    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"unknown map tool {name!r}; expected one of {', '.join(TOOLS)}")
        self.name = name
        self._finish()
        cursor = Qt.CursorShape.ArrowCursor if name == "pan" else Qt.CursorShape.CrossCursor
        self._widget.viewport().setCursor(cursor)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if self.name == "pan" or not isinstance(event, QMouseEvent):
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position()
            self._vertices = [self._to_data(event.position())]
            return True
        if self._press is None:
            return kind == QEvent.Type.MouseButtonDblClick
        if kind == QEvent.Type.MouseMove:
            self._drag_to(event.position())
            return True
        if kind == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            self._release(event)
            return True
        return False

    def _to_data(self, position: QPointF) -> QPointF:
        point: QPointF = self._box.mapSceneToView(self._widget.mapToScene(position.toPoint()))
        return point

    def _drag_to(self, position: QPointF) -> None:
        here = self._to_data(position)
        if self.name == "lasso":
            self._vertices.append(here)
        else:
            self._vertices = [self._vertices[0], here]
        self._outline.setPath(self._path(self.polygon()))
        self._outline.setVisible(True)

    def _release(self, event: QMouseEvent) -> None:
        assert self._press is not None
        moved = (event.position() - self._press).manhattanLength() > _CLICK_PX
        if moved:
            self._drag_to(event.position())
        polygon = self.polygon()
        start = self._vertices[0]
        self._finish()
        if not moved:
            self.clicked.emit(start.x(), start.y())
            return
        additive = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.region_drawn.emit(polygon, additive)

    def polygon(self) -> npt.NDArray[np.float64]:
        """The region being drawn, as vertices in data coordinates (a box's four corners)."""
        points = np.array([(p.x(), p.y()) for p in self._vertices], np.float64).reshape(-1, 2)
        if self.name != "box" or len(points) < 2:
            return points
        (x0, y0), (x1, y1) = points[0], points[-1]
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], np.float64)

    @staticmethod
    def _path(polygon: npt.NDArray[np.float64]) -> QPainterPath:
        path = QPainterPath()
        if len(polygon):
            path.moveTo(*polygon[0])
            for x, y in polygon[1:]:
                path.lineTo(x, y)
            path.closeSubpath()
        return path

    def _finish(self) -> None:
        self._press = None
        self._vertices = []
        self._outline.setVisible(False)
