"""Layers of the map drawn from whole arrays: the density image and the rings around rows.

Both draw only over the *drawn range*, the part of the map the last refresh covered (the
view and a margin around it), at about screen resolution, so their cost follows the screen
and the rows in view, not the size of the dataset.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from desktop import map_density
from desktop.map_density import Coords, Rows

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


class Rings:
    """Rings around some rows (the selection, the search matches), or a halo when too many."""

    def __init__(self, plot: pg.PlotItem, colour: str, size: int, width: float, *, z: float) -> None:
        self.item = pg.ScatterPlotItem(size=size, pen=pg.mkPen(colour, width=width), brush=None)
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
