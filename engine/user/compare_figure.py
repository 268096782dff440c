"""A comparison as one figure: both maps side by side, on the same scale (the second map is
already aligned onto the first), points coloured by label, and, for the rows that moved most,
a line from where each was in the first map to where it is in the second.

The lines are drawn in the second panel, between the row's two aligned positions: since both
panels share their axes, that is exactly "from A to B" while staying inside one plot, where a
reader can see which part of the map the row left and which it joined. The movers are ringed
in both panels so they can be found in the first one too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import BadInputError
from engine.maps.comparison import most_moved
from engine.maps.palette import label_colors
from engine.user.figures import (
    FIGURE_FORMATS,
    any_script,
    marker_size,
    new_figure,
    save_figure,
    scatter_by_label,
    vector_text,
)

if TYPE_CHECKING:
    from engine.api.types import ComparedSide, Comparison

# The page: two square-ish panels and a legend column; text sizes are matplotlib's defaults.
SIZE = (13.0, 6.0)
DPI = 200
MOVER_COLOUR = "#222222"


def side_title(side: ComparedSide) -> str:
    """``all-MiniLM-L6-v2 · layer 1 · mean``: what a panel shows."""
    layer = side.run.layer
    layers = side.identity.layers
    named = "last layer" if layer == -1 else f"layer {layer}"
    if layer == -1 and layers is not None:
        named = f"layer {layers} (last)"
    return f"{side.identity.display_name} · {named} · {side.identity.pooling}"


def save_comparison_figure(
    path: Path,
    comparison: Comparison,
    labels: Sequence[str] | None,
    *,
    movers: int = 25,
    provenance: Mapping[str, Any] | None = None,
    titles: tuple[str, str] | None = None,
) -> Path:
    """Write both maps of ``comparison`` side by side to ``path`` (.png/.svg/.pdf), points
    coloured by ``labels`` (None or all "": one colour), lines from A to B for the ``movers``
    rows that moved most. Text stays text in SVG/PDF and any script is drawn; ``provenance``
    adds a one-line description inside the file. The save is atomic."""
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise BadInputError(
            f"Cannot write a figure as {path.suffix or 'no extension'}: use .png, .svg or .pdf."
        )
    base = np.asarray(comparison.base.map.coords, dtype=np.float64)
    against = np.asarray(comparison.against.map.coords, dtype=np.float64)
    rows = len(base)
    shown_labels = [""] * rows if labels is None else [str(label) for label in labels]
    if len(shown_labels) != rows:
        raise ValueError(f"{len(shown_labels)} labels for {rows} rows")
    if titles is None:
        titles = (side_title(comparison.base), side_title(comparison.against))
    moved = most_moved(comparison.displacement, min(max(0, movers), rows))
    with vector_text(), any_script(path):
        figure = new_figure(*SIZE)
        _draw(figure, base, against, shown_labels, moved, titles)
        figure.suptitle(_scores_line(comparison, len(moved)))
        save_figure(figure, path, DPI, provenance, "Loupe comparison")
    return path


def _draw(
    figure: Any,
    base: np.ndarray[Any, Any],
    against: np.ndarray[Any, Any],
    labels: list[str],
    moved: np.ndarray[Any, Any],
    titles: tuple[str, str],
) -> None:
    left = figure.add_subplot(1, 2, 1)
    right = figure.add_subplot(1, 2, 2, sharex=left, sharey=left)  # the same scale in both
    colours = label_colors(labels)
    marker = marker_size(len(labels))
    for plot, coords, title in ((left, base, titles[0]), (right, against, titles[1])):
        scatter_by_label(plot, coords, labels, colours, marker, alpha=0.8)
        if len(moved):
            plot.scatter(
                coords[moved, 0],
                coords[moved, 1],
                s=marker * 4,
                facecolors="none",
                edgecolors=MOVER_COLOUR,
                linewidths=0.8,
            )
        plot.set_title(title)
        plot.set_xticks([])
        plot.set_yticks([])
        # Shared axes allow only a box-adjusted aspect: both panels show the same square of data.
        plot.set_aspect("equal", adjustable="box")
    left.set_xlim(*_limits(base[:, 0], against[:, 0]))
    left.set_ylim(*_limits(base[:, 1], against[:, 1]))
    if len(moved):
        from matplotlib.collections import LineCollection

        segments = [[tuple(base[row]), tuple(against[row])] for row in moved.tolist()]
        right.add_collection(LineCollection(segments, colors=MOVER_COLOUR, linewidths=0.7, alpha=0.7))
        right.scatter(
            base[moved, 0], base[moved, 1], s=marker, color=MOVER_COLOUR, marker="x", linewidths=0.7
        )
    if len(colours) > 1 or next(iter(colours), "") != "":
        right.legend(
            loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, markerscale=max(1.0, 24 / marker)
        )


def _limits(*values: np.ndarray[Any, Any]) -> tuple[float, float]:
    """Both maps' range along one axis, with a margin (a map of one point still gets a range)."""
    joined = np.concatenate(values)
    joined = joined[np.isfinite(joined)]
    low, high = (float(joined.min()), float(joined.max())) if len(joined) else (0.0, 1.0)
    margin = max(high - low, 1e-6) * 0.05
    return low - margin, high + margin


def _scores_line(comparison: Comparison, movers: int) -> str:
    cka = "n/a" if not np.isfinite(comparison.cka) else f"{comparison.cka:.3f}"
    line = f"mean neighbour overlap {comparison.mean_overlap:.3f} (k={comparison.k}) · linear CKA {cka}"
    if movers:
        line += f" · lines: the {movers} rows that moved most (x = where it was)"
    return line
