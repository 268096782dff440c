"""The map's colours per row, as arrays: one colour per category, or a shade per value.

Plain numpy (no Qt), so that a million rows cost array operations, not a Python object each;
the view turns the few distinct colours into brushes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg

from desktop.map_density import Rows
from engine.palette import colors_by_count

SHADES = 256


def category_colours(
    categories: Sequence[str], muted: str | None, muted_colour: str
) -> tuple[list[tuple[str, Rows, str]], npt.NDArray[np.uint8]]:
    """Each category's rows and colour, in drawing order (``muted`` first, so under the rest),
    and the RGBA colour of every row."""
    # One pass in Python to number the categories, then numpy: comparing a 200k-row object
    # array with each name cost the GUI thread ~80 ms.
    numbers: dict[str, int] = {}
    codes = np.fromiter((numbers.setdefault(c, len(numbers)) for c in categories), np.intp, len(categories))
    names = list(numbers)
    counts = np.bincount(codes, minlength=len(names))
    colours = colors_by_count({n: int(c) for n, c in zip(names, counts, strict=True) if n != muted})
    if muted is not None and muted in numbers:
        colours = {muted: muted_colour, **colours}
    by_code = np.argsort(codes, kind="stable")  # rows grouped by category, each group ascending
    starts = np.concatenate([[0], np.cumsum(counts)])
    table = np.zeros((len(names), 4), np.uint8)
    groups = []
    for name, colour in colours.items():
        code = numbers[name]
        table[code] = pg.mkColor(colour).getRgb()
        groups.append((name, by_code[starts[code] : starts[code + 1]], colour))
    return groups, table[codes] if len(codes) else np.zeros((0, 4), np.uint8)


def value_shades(
    values: npt.NDArray[np.floating[Any]],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint8], float, float]:
    """The viridis shade (0 to 255, NaN darkest) of each value, the RGBA table of the shades,
    and the lowest and highest finite value."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scaled = np.clip(np.nan_to_num((values - low) / ((high - low) or 1.0)), 0, 1)
    table = pg.colormap.get("viridis").getLookupTable(nPts=SHADES, alpha=True).astype(np.uint8)
    return np.round(scaled * (SHADES - 1)).astype(np.intp), table, low, high
