"""Label colours shared by the desktop map and exported figures, so both look the same."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

# Okabe–Ito and Tableau colours: distinguishable, including for the common colour-vision
# deficiencies in the first eight.
_COLORS = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD", "#FF9896", "#98DF8A", "#C5B0D5",
)  # fmt: skip


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    """A colour for each distinct label, most frequent label first (stable across runs)."""
    return colors_by_count(Counter(labels))  # counted in C: 200k labels in a few ms


def colors_by_count(counts: Mapping[str, int]) -> dict[str, str]:
    """:func:`label_colors` from labels already counted."""
    ordered = sorted(counts, key=lambda label: (-counts[label], label))
    return {label: _COLORS[i % len(_COLORS)] for i, label in enumerate(ordered)}
