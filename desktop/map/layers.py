"""Layers of the map drawn from whole arrays: the density image and the rings around rows.

Both draw only over the *drawn range*, the part of the map the last refresh covered (the
view and a margin around it), at about screen resolution, so their cost follows the screen
and the rows in view, not the size of the dataset.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush

from desktop.map import density as map_density
from desktop.map.density import Coords, Rows

DrawnRange = tuple[tuple[float, float], tuple[float, float]]
# More rings than this near the view become a translucent halo image: 16 px rings around
# tens of thousands of points are a solid blot anyway, and cost a slow repaint.
RING_LIMIT = 5_000


def add_image(plot: pg.PlotItem, *, z: float) -> pg.ImageItem:
    """A hidden RGBA image layer on ``plot`` that the view's autorange ignores."""
    item = pg.ImageItem(axisOrder="row-major")
    item.setZValue(z)
    item.setVisible(False)
    plot.addItem(item, ignoreBounds=True)
    return item


def show_image(item: pg.ImageItem, image: npt.NDArray[np.uint8], drawn: DrawnRange) -> None:
    """Put ``image`` (row 0 at the bottom) over the drawn range."""
    (x0, x1), (y0, y1) = drawn
    item.setImage(image, autoLevels=False)
    item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))


def fill_density(
    item: pg.ImageItem,
    coords: Coords,
    colours: npt.NDArray[np.uint8],
    drawn: DrawnRange,
    bins: tuple[int, int],
) -> None:
    """Draw the density of ``coords`` over the drawn range in ``bins`` (width, height) pixels."""
    image = map_density.density_image(coords, colours, *drawn, *bins)
    show_image(item, image, drawn)


class Points(pg.ScatterPlotItem):  # type: ignore[misc]  # pyqtgraph has no type information
    """A scatter item that sets many points in numpy where pyqtgraph's works per point.

    Setting points costs pyqtgraph ~2 µs each in Python: numpy filling each object field of
    the new record array one by one, every brush compared with None, every point's (symbol,
    size, pen, brush) looked up in the symbol atlas with a key of its own; 75-125 ms of the
    GUI thread for the 40,000 points the map may draw. Here the record starts from zeros, None
    is found by identity, and each distinct style (a brush per category or shade, a size per
    whole pixel) is looked up once. Every point gets the record and the atlas place that
    pyqtgraph's own code gives it; a call this class does not expect goes to pyqtgraph's.
    """

    _FAST = frozenset({"x", "y", "data", "size", "brush"})  # what the map passes to setData
    data: npt.NDArray[Any]  # pyqtgraph's record of the points, one row each

    def setData(self, *args: Any, **kargs: Any) -> None:  # noqa: N802 (pyqtgraph's name)
        if args or "y" not in kargs or not self._FAST.issuperset(kargs) or not hasattr(self, "_style"):
            super().setData(*args, **kargs)
            return
        self.clear()
        points: npt.NDArray[Any] = np.zeros(len(kargs["y"]), dtype=self.data.dtype)
        for name, (kind, *_) in (points.dtype.fields or {}).items():
            if kind == np.dtype(object):
                points[name] = None  # as np.empty leaves them, in one pass instead of one per field
        points["x"], points["y"] = kargs["x"], kargs["y"]
        points["size"], points["visible"] = -1, True  # -1: the item's own size
        self.data = points
        if "brush" in kargs:
            self.setBrush(kargs["brush"], update=False, dataSet=points, mask=None)
        if "size" in kargs:
            self.setSize(kargs["size"], update=False, dataSet=points, mask=None)
        if "data" in kargs:
            self.setPointData(kargs["data"], dataSet=points)
        # The rest of pyqtgraph's addPoints.
        self.prepareGeometryChange()
        self.informViewBoundsChanged()
        self.bounds = [None, None]
        self.invalidate()
        self.updateSpots(points)
        self.sigPlotChanged.emit(self)

    def setBrush(self, *args: Any, **kargs: Any) -> None:  # noqa: N802 (pyqtgraph's name)
        """As pyqtgraph's; but an array of brushes (a shade per point) is stored as an array:
        pyqtgraph makes it a list, which numpy then inspects brush by brush (~1.5 µs each)."""
        brushes = args[0] if len(args) == 1 else None
        if not isinstance(brushes, np.ndarray) or brushes.dtype != object or kargs.get("mask") is not None:
            super().setBrush(*args, **kargs)
            return
        data = cast("npt.NDArray[Any]", kargs.get("dataSet", self.data))
        if len(brushes) != len(data):
            raise ValueError(f"{len(brushes)} brushes for {len(data)} points")
        data["brush"] = np.frompyfunc(_brush, 1, 1)(brushes) if len(brushes) else brushes
        data["sourceRect"] = 0
        if kargs.get("update", True):
            self.updateSpots(data)

    def updateSpots(self, dataSet: npt.NDArray[Any] | None = None) -> None:  # noqa: N802, N803
        data: npt.NDArray[Any] = self.data if dataSet is None else dataSet
        if not (self.opts["pxMode"] and self.opts["useCache"] and hasattr(self, "_style")):
            super().updateSpots(dataSet)  # drawn without the atlas, or a pyqtgraph we do not know
            return
        new = data["sourceRect"]["w"] == 0
        if np.any(new):
            styles, keys = self._styles(data, new)
            first, style_of = _distinct_rows(keys)
            places = self.fragmentAtlas[[tuple(column[i] for column in styles) for i in first]]
            data["sourceRect"][new] = np.array(places, dtype=data["sourceRect"].dtype)[style_of]
        self._maybeRebuildAtlas()
        self._updateMaxSpotSizes(data=data)
        if np.any(new):
            self.invalidate()

    def _styles(
        self, data: npt.NDArray[Any], rows: npt.NDArray[np.bool_]
    ) -> tuple[list[npt.NDArray[Any]], list[npt.NDArray[Any]]]:
        """pyqtgraph's ``_style`` of ``rows`` (symbol, size, pen and brush, the hover style
        and the item's own filled in), and a key per row for each: objects by identity."""
        hovered = data["hovered"][rows]
        styles, keys = [], []
        for name in ("symbol", "size", "pen", "brush"):
            column = data[name][rows]
            hover = self.opts["hover" + name.title()] if self.opts["hoverable"] else _UNSET[name]
            if name == "size":
                if hover != -1:
                    column[hovered] = hover
                column[column == -1] = self.opts["size"]
                styles.append(column)
                keys.append(column)
                continue
            key = np.frompyfunc(id, 1, 1)(column).astype(np.uint64)
            if hover is not None:
                column[hovered], key[hovered] = hover, id(hover)
            unset = key == id(None)
            column[unset], key[unset] = self.opts[name], id(self.opts[name])
            styles.append(column)
            keys.append(key)
        return styles, keys


_UNSET = {"symbol": None, "size": -1, "pen": None, "brush": None}  # pyqtgraph's "no style of its own"


def _brush(value: Any) -> QBrush:
    """``value`` as a brush, as pyqtgraph reads each of a list of brushes."""
    return value if isinstance(value, QBrush) else pg.mkBrush(value)


def _distinct_rows(keys: list[npt.NDArray[Any]]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For rows across the ``keys`` columns: the first row of each distinct combination, in
    order, and the number of each row's combination."""
    combination = np.zeros(len(keys[0]), np.intp)
    for key in keys:
        if len(key) and bool(np.all(key == key[0])):
            continue  # one value for every row (the usual case): nothing to tell apart
        distinct, inverse = np.unique(key, return_inverse=True)
        combination = np.unique(combination * len(distinct) + inverse.reshape(-1), return_inverse=True)[1]
    _, first, inverse = np.unique(combination, return_index=True, return_inverse=True)
    # Numbered in order of first appearance, as pyqtgraph meets them: the atlas grows alike.
    order = np.argsort(first)
    number = np.empty(len(order), np.intp)
    number[order] = np.arange(len(order))
    return first[order], number[inverse.reshape(-1)]


class Rings:
    """Rings around some rows (the selection, the search matches), or a halo when too many."""

    def __init__(self, plot: pg.PlotItem, colour: str, size: int, width: float, *, z: float) -> None:
        self.item = Points(size=size, pen=pg.mkPen(colour, width=width), brush=None)
        self.item.setZValue(z)
        plot.addItem(self.item)
        self.image = add_image(plot, z=z)
        self._colour = np.array(pg.mkColor(colour).getRgb(), np.uint8)

    def show(self, coords: Coords, rows: Rows, drawn: DrawnRange, bins: tuple[int, int]) -> None:
        """Ring those of ``rows`` in the drawn range (``bins``: the halo image's size).

        An unbounded drawn range means every row is drawn, so few that rings always do.
        """
        near = map_density.rows_in_range(coords, rows, *drawn)
        self.image.setVisible(len(near) > RING_LIMIT and bool(np.isfinite(drawn).all()))
        if self.image.isVisible():
            colours = np.broadcast_to(self._colour, (len(near), 4))
            image = map_density.density_image(coords[near], colours, *drawn, *bins, spread=2)
            image[..., 3] //= 2  # a halo: the points' own colours show through
            show_image(self.image, image, drawn)
            near = near[:0]
        points = coords[near]
        self.item.setData(x=points[:, 0], y=points[:, 1])

    def clear(self) -> None:
        self.item.clear()
        self.image.setVisible(False)
