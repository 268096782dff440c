"""The map's colours per row, as arrays: one colour per category, or a shade per value.

Plain numpy (no Qt), so that a million rows cost array operations, not a Python object each;
the view turns the few distinct colours into brushes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg

from desktop.map.density import Rows
from engine.data.column_codes import value_codes
from engine.maps.palette import colors_by_count

SHADES = 256


@dataclass(frozen=True)
class CodedCategories:
    """Categories already numbered: row ``i`` is ``names[codes[i]]`` (cluster labels are).

    Numbering text again costs 40 ms at 200,000 rows; numbers are taken as they are.
    """

    names: Sequence[str]
    codes: npt.NDArray[np.integer[Any]]

    def present(self) -> tuple[list[str], Rows]:
        """What value_codes gives for the rows' names: those present, in order of first
        appearance, and each row's index into them."""
        codes = np.asarray(self.codes, np.intp)
        first = np.full(len(self.names), len(codes), np.intp)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the last write is the first row
        order = np.argsort(first, kind="stable")[: int(np.count_nonzero(first < len(codes)))]
        renumber = np.zeros(len(self.names), np.intp)
        renumber[order] = np.arange(len(order))
        return [self.names[i] for i in order], renumber[codes]


def category_colours(
    categories: Sequence[str] | npt.NDArray[np.str_] | CodedCategories, muted: str | None, muted_colour: str
) -> tuple[list[tuple[str, str]], Rows, npt.NDArray[np.uint8]]:
    """Each category and its colour, in drawing order (``muted`` first, so under the rest),
    the index into that list of every row's category, and the RGBA colour of every row."""
    # Numbered by engine.data.column_codes in Arrow: a loop over 200k rows in Python cost ~35 ms.
    names, codes = (
        categories.present() if isinstance(categories, CodedCategories) else value_codes(categories)
    )
    counts = np.bincount(codes, minlength=len(names))
    colours = colors_by_count({n: int(c) for n, c in zip(names, counts, strict=True) if n != muted})
    if muted is not None and muted in names:
        colours = {muted: muted_colour, **colours}
    code_of = {name: code for code, name in enumerate(names)}
    group_of_code = np.zeros(len(names), np.intp)
    table = np.zeros((len(names), 4), np.uint8)
    for group, (name, colour) in enumerate(colours.items()):
        group_of_code[code_of[name]] = group
        table[code_of[name]] = pg.mkColor(colour).getRgb()
    return list(colours.items()), group_of_code[codes], table[codes]


def value_shades(
    values: npt.NDArray[np.floating[Any]],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint8], float, float]:
    """The viridis shade (0 to 255, NaN darkest) of each value, the RGBA table of the shades,
    and the lowest and highest finite value.

    In place on one scratch array (a million values cost ~5 ms, not the ~12 ms of a chain
    of temporaries); +inf is the top shade, -inf the bottom one, as a clipped scale gives.
    """
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    every = bool(finite.all())
    present = values if every else values[finite]
    low, high = (float(present.min()), float(present.max())) if present.size else (0.0, 1.0)
    # The same steps, in the same order, as clip(nan_to_num((v - low) / span), 0, 1) * 255.
    scaled = np.subtract(values, low)
    np.divide(scaled, (high - low) or 1.0, out=scaled)
    if not every:
        scaled[np.isnan(scaled)] = 0
    np.clip(scaled, 0, 1, out=scaled)
    np.multiply(scaled, SHADES - 1, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.intp), _viridis().copy(), low, high


@functools.cache
def _viridis() -> npt.NDArray[np.uint8]:
    """The RGBA table of the shades, read from pyqtgraph's colour map file once (~3 ms a read)."""
    table: npt.NDArray[np.uint8] = (
        pg.colormap.get("viridis").getLookupTable(nPts=SHADES, alpha=True).astype(np.uint8)
    )
    return table
