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
from engine.palette import label_colors

SHADES = 256


def category_colours(
    categories: Sequence[str], muted: str | None, muted_colour: str
) -> tuple[list[tuple[str, Rows, str]], npt.NDArray[np.uint8]]:
    """Each category's rows and colour, in drawing order (``muted`` first, so under the rest),
    and the RGBA colour of every row."""
    values = np.asarray(categories, dtype=object)
    colours = label_colors([c for c in categories if c != muted])
    if muted is not None and muted in set(categories):
        colours = {muted: muted_colour, **colours}
    rgba = np.zeros((len(values), 4), np.uint8)
    groups = []
    for name, colour in colours.items():
        rows = np.flatnonzero(values == name)
        rgba[rows] = pg.mkColor(colour).getRgb()
        groups.append((name, rows, colour))
    return groups, rgba


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
