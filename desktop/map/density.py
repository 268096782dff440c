"""The map's arithmetic on many points, in numpy and without Qt, so it can be tested alone.

Which rows fall in the view, a density image of them at screen resolution, the row nearest
to a click, the rows inside a drawn region, and point sizes from a column. Each works on the
whole coordinate array at once: at a million rows a Python loop per point is not an option.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Coords = npt.NDArray[np.float32]
Rows = npt.NDArray[np.intp]
Range = tuple[float, float]

SMALLEST_PX = 3.0
LARGEST_PX = 14.0


def rows_in_range(coords: Coords, rows: Rows, x_range: Range, y_range: Range) -> Rows:
    """Those of ``rows`` whose point lies inside the rectangle (edges included), in order."""
    return rows[in_range_mask(coords[rows], x_range, y_range)]


def covers(drawn: tuple[Range, Range], view: tuple[float, float, float, float], margin: float) -> bool:
    """Whether ``drawn`` (a view widened by ``margin`` of its size each side) still serves ``view``.

    It does while it holds all of ``view`` and its scale is within a quarter of the view's:
    beyond that the points near the view, or the image's resolution, are out of date.
    """
    (dx0, dx1), (dy0, dy1) = drawn
    x0, x1, y0, y1 = view
    zoom = (dx1 - dx0) / (1 + 2 * margin) / ((x1 - x0) or 1.0)
    return dx0 <= x0 and x1 <= dx1 and dy0 <= y0 and y1 <= dy1 and 0.8 <= zoom <= 1.25


def in_range_mask(coords: Coords, x_range: Range, y_range: Range) -> npt.NDArray[np.bool_]:
    """Which points lie inside the rectangle, edges included."""
    x, y = coords[:, 0], coords[:, 1]
    return (x >= x_range[0]) & (x <= x_range[1]) & (y >= y_range[0]) & (y <= y_range[1])


def density_counts(
    coords: Coords, x_range: Range, y_range: Range, width: int, height: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """How many points fall in each of ``height`` x ``width`` bins, and the bin of each point.

    Row 0 of the counts is the bottom of the range (lowest y), as the map draws it. Bins are
    half-open except the last, which takes the top and right edges. A point outside the
    range gets the bin ``width * height``, one past the end, which the counts leave out.
    """
    column, row = _bin_columns_rows(coords, x_range, y_range, width, height)
    bins = row * width + column
    bins[~in_range_mask(coords, x_range, y_range)] = width * height
    counts = np.bincount(bins, minlength=width * height + 1)[:-1].reshape(height, width)
    return counts, bins


def density_image(
    coords: Coords,
    colours: npt.NDArray[np.uint8],
    x_range: Range,
    y_range: Range,
    width: int,
    height: int,
    *,
    spread: int = 1,
) -> npt.NDArray[np.uint8]:
    """An RGBA image (``height`` x ``width`` x 4, row 0 at the lowest y) of where the points are.

    Each point also counts in the bins up to ``spread`` away, so that at two screen pixels a
    bin a point covers about as much as the 6 px marker it replaces. Each pixel takes the mean
    colour of its points; its opacity grows with the log of their number, so a lone point
    still shows and the dense cores do not all look the same.
    """
    image = np.zeros((height, width, 4), np.uint8)
    inside = in_range_mask(coords, x_range, y_range)
    if not inside.any():
        return image
    # Only the block of bins the points (and their spread) can reach is computed, the rest
    # stays empty: with the whole map in view that is under half the image, and most of the
    # cost is per bin (~20 ms for 500k bins).
    column, row = _bin_columns_rows(coords, x_range, y_range, width, height)
    columns_in, rows_in = column[inside], row[inside]
    c0, c1 = max(0, int(columns_in.min()) - spread), min(width, int(columns_in.max()) + spread + 1)
    r0, r1 = max(0, int(rows_in.min()) - spread), min(height, int(rows_in.max()) + spread + 1)
    block_width, block_height = c1 - c0, r1 - r0
    size = block_width * block_height
    bins = (row - r0) * block_width + (column - c0)
    bins[~inside] = size
    if np.count_nonzero(inside) < len(bins) // 2:
        # Zoomed in, most points fall outside: adding them all up in the one bin past the end
        # is slower than leaving them out first.
        bins, colours = bins[inside], colours[inside]
    # The count and the three colour sums of each bin, spread together (float32 halves the
    # memory traffic; a mean colour does not need more precision).
    sums = np.empty((4, size), np.float32)
    sums[0] = np.bincount(bins, minlength=size + 1)[:-1]
    for channel in range(3):
        sums[channel + 1] = np.bincount(bins, weights=colours[:, channel], minlength=size + 1)[:-1]
    sums = _spread(sums.reshape(4, block_height, block_width), spread).reshape(4, size)
    count = sums[0]
    block = image[r0:r1, c0:c1]
    # Every pixel at once (an empty one divides by 1 and gets alpha 0): faster than picking the filled.
    means = np.rint(sums[1:] / np.maximum(count, 1))
    block[..., :3] = means.reshape(3, block_height, block_width).transpose(1, 2, 0)
    depth = np.log1p(count) / max(float(np.log1p(count.max())), 1e-9)
    block[..., 3] = np.where(count > 0, 200 + 55 * depth, 0).reshape(block_height, block_width)
    return image


def _bin_columns_rows(
    coords: Coords, x_range: Range, y_range: Range, width: int, height: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The bin column and row of each point (clipped to the grid: check the range apart)."""
    # No copy of the points inside: at a million points copying costs more than binning all.
    scale_x = np.float32(width / ((x_range[1] - x_range[0]) or 1.0))
    scale_y = np.float32(height / ((y_range[1] - y_range[0]) or 1.0))
    column = ((coords[:, 0] - np.float32(x_range[0])) * scale_x).astype(np.intp)
    row = ((coords[:, 1] - np.float32(y_range[0])) * scale_y).astype(np.intp)
    # Points on the far edges (and float32 rounding there) belong to the last bin.
    np.clip(column, 0, width - 1, out=column)
    np.clip(row, 0, height - 1, out=row)
    return column, row


def _spread(grids: npt.NDArray[np.float32], radius: int) -> npt.NDArray[np.float32]:
    """Each cell's sum over the (2 radius + 1)² square around it in the last two axes (zeros beyond)."""
    out = grids
    for axis in (-2, -1):  # the box is separable: a sum along columns, then along rows
        summed = out.copy()
        for shift in range(1, radius + 1):
            ahead: list[slice] = [slice(None)] * out.ndim
            behind: list[slice] = [slice(None)] * out.ndim
            ahead[axis], behind[axis] = slice(shift, None), slice(None, -shift)
            summed[tuple(behind)] += out[tuple(ahead)]
            summed[tuple(ahead)] += out[tuple(behind)]
        out = summed
    return out


def nearest_row(
    coords: Coords, rows: Rows, x: float, y: float, pixels_per_unit: tuple[float, float], radius_px: float
) -> int | None:
    """The row of ``rows`` drawn nearest to (``x``, ``y``), if within ``radius_px`` on screen."""
    if not len(rows):
        return None
    points = coords[rows]
    dx = (points[:, 0] - x) * pixels_per_unit[0]
    dy = (points[:, 1] - y) * pixels_per_unit[1]
    distance = dx * dx + dy * dy
    best = int(np.argmin(distance))
    return int(rows[best]) if distance[best] <= radius_px * radius_px else None


def rows_in_polygon(coords: Coords, rows: Rows, polygon: npt.NDArray[np.float64]) -> Rows:
    """Those of ``rows`` inside ``polygon`` (k x 2 vertices, closed implicitly), sorted."""
    from matplotlib.path import Path  # matplotlib is heavy; only a finished lasso needs it

    if len(polygon) < 3 or not len(rows):
        return np.zeros(0, np.intp)
    low, high = polygon.min(axis=0), polygon.max(axis=0)
    # The bounding box discards most points cheaply; the exact test runs on the rest.
    candidates = rows_in_range(coords, rows, (low[0], high[0]), (low[1], high[1]))
    inside = Path(polygon).contains_points(coords[candidates].astype(np.float64))
    return np.sort(candidates[inside])


def sizes_from_values(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
    """Point sizes in whole pixels from :data:`SMALLEST_PX` to :data:`LARGEST_PX` (NaN: smallest).

    Whole pixels keep pyqtgraph's symbol atlas to a dozen sprites instead of one per point.
    """
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.full(len(values), SMALLEST_PX, np.float32)
    low, high = float(values[finite].min()), float(values[finite].max())
    scaled = np.where(finite, (values - low) / ((high - low) or 1.0), 0.0)
    return np.round(SMALLEST_PX + scaled * (LARGEST_PX - SMALLEST_PX)).astype(np.float32)
