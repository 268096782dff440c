"""The map: one point per row, coloured by a category or a value, with hover text and clicks.

Colouring is either categorical (one scatter item per category, so the legend lists them)
or continuous (one item, a colour per point from a colour map, and the range in the legend).
Moving to new coordinates of the same rows (another layer, another sweep cell) can be
animated, so the eye can follow each point.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from engine.palette import label_colors

# Frames of a move between layouts; 15 frames at 16 ms is a quarter of a second.
_ANIMATION_FRAMES = 15
_FRAME_MS = 16
_MUTED = "#d0d0d0"


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
        self._rows: list[npt.NDArray[np.intp]] = []  # dataset rows of each item's points
        self._annotations: list[pg.TextItem] = []
        self._texts: Sequence[str] = ()
        self._selected = pg.ScatterPlotItem(size=16, pen=pg.mkPen("#d00", width=2), brush=None)
        self._selected.setZValue(10)
        self._selected_rows: npt.NDArray[np.intp] = np.zeros(0, np.intp)
        self.plot.addItem(self._selected)
        self._matches = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#ff8c00", width=1.5), brush=None)
        self._matches.setZValue(9)
        self._match_rows: npt.NDArray[np.intp] | None = None
        self.plot.addItem(self._matches)
        self.coords: npt.NDArray[np.float32] = np.zeros((0, 2), np.float32)
        self._animation = QTimer(self)
        self._animation.setInterval(_FRAME_MS)
        self._animation.timeout.connect(self._animation_step)
        self._from = self._to = self.coords
        self._frame = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

    # -- what is shown -------------------------------------------------------------------

    def set_points(
        self, coords: npt.NDArray[np.float32], labels: Sequence[str], texts: Sequence[str], title: str
    ) -> None:
        """Show ``coords`` (one row per dataset row) coloured by ``labels``; replaces everything."""
        self._animation.stop()
        self._texts = texts
        self.coords = np.asarray(coords, np.float32)
        self.set_categories(labels)
        self.plot.setTitle(title)
        self.plot.enableAutoRange()
        self.set_annotations([])
        self.show_selected(None)
        self.set_matches(None)

    def set_categories(
        self, categories: Sequence[str], *, muted: str | None = None, legend: bool = True
    ) -> None:
        """Colour the current points by a category per row, one legend entry per category.

        ``muted`` (for example cluster noise) is drawn light grey, under the others; without
        ``legend`` the categories are named some other way (cluster names drawn on the map).
        """
        values = np.asarray(categories, dtype=object)
        colours = label_colors([c for c in categories if c != muted])
        if muted is not None and muted in set(categories):
            colours = {muted: _MUTED, **colours}
        groups = [
            (name or "(no label)", pg.mkBrush(colour), np.flatnonzero(values == name))
            for name, colour in colours.items()
        ]
        self._rebuild([(name, rows, brush) for name, brush, rows in groups], legend=legend)

    def set_values(self, values: npt.NDArray[np.floating[Any]], name: str) -> None:
        """Colour the current points by a number per row (viridis: dark low, yellow high)."""
        values = np.asarray(values, np.float64)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        scaled = np.clip((values - low) / ((high - low) or 1.0), 0, 1)
        colormap = pg.colormap.get("viridis")
        brushes = [pg.mkBrush(color) for color in colormap.mapToQColor(np.nan_to_num(scaled))]
        rows = np.arange(len(values))
        self._rebuild([(f"{name}: {low:.2f} (dark) to {high:.2f} (yellow)", rows, brushes)])

    def move_to(self, coords: npt.NDArray[np.float32], *, animate: bool = True) -> None:
        """Move the same rows to new coordinates, gliding there over a quarter of a second."""
        coords = np.asarray(coords, np.float32)
        if coords.shape != self.coords.shape or not animate:
            self._animation.stop()
            self.coords = coords
            self._place(coords)
            return
        self._from, self._to, self._frame = self.coords.copy(), coords, 0
        self._animation.start()

    def set_annotations(self, annotations: Sequence[tuple[float, float, str]]) -> None:
        """Text drawn on the map at data coordinates, for example cluster names."""
        for item in self._annotations:
            self.plot.removeItem(item)
        self._annotations = []
        for x, y, text in annotations:
            item = pg.TextItem(text, color="#222", anchor=(0.5, 0.5), fill=pg.mkBrush(255, 255, 255, 190))
            item.setPos(x, y)
            item.setZValue(20)
            self.plot.addItem(item)
            self._annotations.append(item)

    @property
    def annotations(self) -> list[str]:
        return [item.toPlainText() for item in self._annotations]

    def show_selected(self, row: int | None) -> None:
        self.set_selection([] if row is None else [row])

    def set_selection(self, rows: Sequence[int] | npt.NDArray[np.intp]) -> None:
        """Ring the selected rows (the selection the table shares)."""
        chosen = np.asarray(rows, dtype=np.intp)
        self._selected_rows = chosen[chosen < len(self.coords)]
        if not len(self._selected_rows):
            self._selected.clear()
        else:
            points = self.coords[self._selected_rows]
            self._selected.setData(x=points[:, 0], y=points[:, 1])

    @property
    def selected_rows(self) -> list[int]:
        return [int(row) for row in self._selected_rows]

    def set_matches(self, rows: npt.NDArray[np.intp] | None) -> None:
        """Ring the rows a search matched in orange (None: no search)."""
        self._match_rows = None if rows is None else np.asarray(rows, dtype=np.intp)
        if self._match_rows is None or not len(self._match_rows) or not len(self.coords):
            self._matches.clear()
            return
        points = self.coords[self._match_rows[self._match_rows < len(self.coords)]]
        self._matches.setData(x=points[:, 0], y=points[:, 1])

    @property
    def match_count(self) -> int:
        return 0 if self._match_rows is None else len(self._match_rows)

    def click_row(self, row: int) -> None:
        """Act as if the user clicked the point of ``row`` (keyboard navigation, tests)."""
        self.show_selected(row)
        self.row_clicked.emit(row)

    # -- internals -----------------------------------------------------------------------

    def _rebuild(
        self, groups: Sequence[tuple[str, npt.NDArray[np.intp], Any]], *, legend: bool = True
    ) -> None:
        for item in self._items:
            self.plot.removeItem(item)
        self.legend.clear()
        self.legend.setVisible(legend)
        self._items, self._rows = [], []
        for name, rows, brush in groups:
            item = pg.ScatterPlotItem(
                x=self.coords[rows, 0],
                y=self.coords[rows, 1],
                data=rows,
                size=6,
                pen=None,
                brush=brush,
                hoverable=True,
                hoverSize=10,
                tip=self._tip,
                name=name if legend else None,
            )
            item.sigClicked.connect(self._on_clicked)
            self.plot.addItem(item)
            self._items.append(item)
            self._rows.append(rows)

    def _place(self, coords: npt.NDArray[np.float32]) -> None:
        for item, rows in zip(self._items, self._rows, strict=True):
            brushes = item.data["brush"].copy()
            item.setData(x=coords[rows, 0], y=coords[rows, 1], data=rows, brush=brushes)
        self.set_selection(self._selected_rows)
        self.set_matches(self._match_rows)

    def _animation_step(self) -> None:
        self._frame += 1
        t = self._frame / _ANIMATION_FRAMES
        eased = t * t * (3 - 2 * t)  # smoothstep: starts and ends gently
        self.coords = (self._from + (self._to - self._from) * eased).astype(np.float32)
        if self._frame >= _ANIMATION_FRAMES:
            self._animation.stop()
            self.coords = self._to
        self._place(self.coords)

    def _tip(self, x: float, y: float, data: Any) -> str:
        text = self._texts[int(data)] if 0 <= int(data) < len(self._texts) else ""
        return f"row {int(data)}\n" + textwrap.fill(textwrap.shorten(text, 400), 70)

    def _on_clicked(self, item: pg.ScatterPlotItem, points: Sequence[Any], event: Any) -> None:
        if len(points):
            self.click_row(int(points[0].data()))
