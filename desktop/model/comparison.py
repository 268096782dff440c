"""The comparison on show: a second embedding of the same rows beside the first, Qt-free.

:class:`CompareChoice` is what the user asks for (Map ▸ Compare with…, a session): the other
side's model, layer and pooling, and how many neighbours the overlap counts. The result, an
:class:`engine.api.types.Comparison`, is kept by :class:`~desktop.model.document.AppModel`
(``model.comparison``, ``comparison_changed``); the helpers here word it for titles and
order its rows for the "Moved most" panel, so views and exports say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.api.types import ComparedSide, Comparison, Side
from engine.maps.comparison import most_moved

# The colourings a comparison adds to the map's (continuous scales, like a numeric column).
COMPARE_COLOURINGS = {"overlap": "neighbour overlap", "displacement": "displacement"}
MOVED_SHOWN = 50  # rows the "Moved most" panel lists


@dataclass(frozen=True)
class CompareChoice:
    """The other side of a comparison: a model (a folder or a hub id; None: the window's own),
    its layer (-1: the last), its pooling (None: the model's own) and k for the overlap."""

    model: str | None = None
    layer: int = 1
    pooling: str | None = None
    k: int = 10

    @property
    def side(self) -> Side:
        return Side(model=self.model or None, layer=self.layer, pooling=self.pooling or None)


def choice_of(comparison: Comparison) -> CompareChoice:
    """What was asked for to make ``comparison`` (what a session saves)."""
    side = comparison.against.side
    return CompareChoice(side.model, side.layer, side.pooling, comparison.k)


def side_title(compared: ComparedSide) -> str:
    """ "all-MiniLM-L6-v2 · layer 1 · mean": the model, layer and pooling of one side."""
    identity, layer = compared.identity, compared.side.layer
    if layer < 0 and identity.layers is not None:
        layer = identity.layers + 1 + layer  # -1: the last hidden layer, by its number
    return f"{identity.display_name} · layer {layer} · {identity.pooling}"


def scores_line(comparison: Comparison) -> str:
    """The whole-space scores: mean overlap, CKA, and whether the neighbours were exact."""
    how = "exact" if comparison.exact_neighbours else "approximate"
    return (
        f"mean neighbour overlap {comparison.mean_overlap:.3f} · CKA {comparison.cka:.3f} · "
        f"k={comparison.k}, {how} neighbours"
    )


def moved_rows(comparison: Comparison, count: int = MOVED_SHOWN) -> npt.NDArray[np.intp]:
    """The rows that moved most, the farthest first."""
    return most_moved(comparison.displacement, count)


def compare_values(comparison: Comparison, colouring: str) -> npt.NDArray[np.float32] | None:
    """The per-row values of a comparison colouring ("overlap", "displacement"); None otherwise."""
    if colouring == "overlap":
        return comparison.overlap
    if colouring == "displacement":
        return comparison.displacement
    return None
