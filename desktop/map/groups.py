"""The map's points as groups: one scatter item per colour group (a category, or one item for a
colour scale), and the legend that names them.

Items are reused, and they and the legend change only when the groups do: making, adding and
removing an item costs the GUI thread ~1 ms, a legend entry as much again, and a new map usually
keeps the colouring of the last one. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyqtgraph as pg

from desktop.map.layers import Points


class PointGroups:
    """``items``: the scatter item of each group, in drawing order (made by ``make_item``)."""

    def __init__(self, plot: pg.PlotItem, legend: pg.LegendItem, make_item: Callable[[], Points]) -> None:
        self.plot, self.legend, self._make_item = plot, legend, make_item
        self.items: list[Points] = []
        self._pool: list[Points] = []  # the items made so far, items first; the rest hidden
        self._shown: tuple[list[tuple[str, int]], bool] | None = None  # the groups the items show, legend
        self._legend_on = True  # whether the items are named in the legend (or some other way)
        self.legend_wanted = False  # the legend waits to be filled (after the points are drawn)

    def grow(self, size: int) -> None:
        """At least ``size`` scatter items made and added to the plot (new ones hidden)."""
        while len(self._pool) < size:
            item = self._make_item()
            item.setVisible(False)
            self.plot.addItem(item)
            self._pool.append(item)

    def set_groups(self, groups: Sequence[tuple[str, Any]], *, legend: bool = True) -> None:
        """An item for each of ``groups`` (name, brush), named in the legend unless ``legend`` is
        False; the items' points are set by the caller's next refresh."""
        shown = ([(name, brush.color().rgba()) for name, brush in groups], legend)
        if shown == self._shown:
            return
        self._shown = shown
        self.grow(len(groups))
        self.items = self._pool[: len(groups)]
        for item, (name, brush) in zip(self.items, groups, strict=True):
            item.opts["name"] = name if legend else None
            item.setBrush(brush, update=False)  # the refresh sets every item's points anew
            item.setVisible(True)
        for item in self._pool[len(groups) :]:
            item.clear()
            item.setVisible(False)
        self.legend.setVisible(legend)
        self._legend_on = legend
        self.legend_wanted = True

    def recoloured(self, index: int, brush: Any) -> None:
        """Item ``index`` drawn with ``brush`` (a theme change): the groups differ from those set."""
        self.items[index].setBrush(brush)
        self._shown = None

    def fill_legend(self) -> None:
        """One legend entry per item, when the items are named there."""
        self.legend_wanted = False
        self.legend.clear()
        for item in self.items if self._legend_on else ():
            self.legend.addItem(item, item.name())
