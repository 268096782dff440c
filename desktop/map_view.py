"""The map: one point per row, coloured by label, with a legend, hover text and clicks."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from engine.palette import label_colors


class MapView(QWidget):
    """Scatter plot of 2-D coordinates. Emits :attr:`row_clicked` with the dataset row."""

    row_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.legend = self.plot.addLegend(
            offset=(10, 10), labelTextSize="9pt", brush=pg.mkBrush(255, 255, 255, 210)
        )
        self._items: list[pg.ScatterPlotItem] = []
        self._texts: Sequence[str] = ()
        self._selected = pg.ScatterPlotItem(size=16, pen=pg.mkPen("#d00", width=2), brush=None)
        self._selected.setZValue(10)
        self.plot.addItem(self._selected)
        self.coords: npt.NDArray[np.float32] = np.zeros((0, 2), np.float32)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

    def set_points(
        self, coords: npt.NDArray[np.float32], labels: Sequence[str], texts: Sequence[str], title: str
    ) -> None:
        """Show ``coords`` (one row per dataset row); replaces whatever was shown."""
        for item in self._items:
            self.plot.removeItem(item)
        self.legend.clear()
        self._items = []
        self._texts = texts
        self.coords = coords
        label_array = np.asarray(labels)
        for label, color in label_colors(labels).items():
            rows = np.flatnonzero(label_array == label)
            item = pg.ScatterPlotItem(
                x=coords[rows, 0],
                y=coords[rows, 1],
                data=rows,
                size=6,
                pen=None,
                brush=pg.mkBrush(color),
                hoverable=True,
                hoverSize=10,
                tip=self._tip,
                name=label or "(no label)",
            )
            item.sigClicked.connect(self._on_clicked)
            self.plot.addItem(item)
            self._items.append(item)
        self.plot.setTitle(title)
        self.plot.enableAutoRange()
        self.show_selected(None)

    def show_selected(self, row: int | None) -> None:
        if row is None or row >= len(self.coords):
            self._selected.clear()
        else:
            self._selected.setData(x=[self.coords[row, 0]], y=[self.coords[row, 1]])

    def click_row(self, row: int) -> None:
        """Act as if the user clicked the point of ``row`` (keyboard navigation, tests)."""
        self.show_selected(row)
        self.row_clicked.emit(row)

    def _tip(self, x: float, y: float, data: Any) -> str:
        text = self._texts[int(data)] if 0 <= int(data) < len(self._texts) else ""
        return f"row {int(data)}\n" + textwrap.fill(textwrap.shorten(text, 400), 70)

    def _on_clicked(self, item: pg.ScatterPlotItem, points: Sequence[Any], event: Any) -> None:
        if len(points):
            self.click_row(int(points[0].data()))
