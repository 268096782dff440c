"""Figures and data files without a window: the map as PNG/SVG/PDF, coordinates as CSV.

matplotlib draws the figures because its SVG and PDF backends write real vector marks (one
per point, sharing one marker definition), which is what a paper needs, and because it runs
without any display.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.palette import label_colors

FIGURE_FORMATS = (".png", ".svg", ".pdf")


def save_map_figure(
    path: Path,
    coords: npt.NDArray[np.float32],
    labels: Sequence[str],
    title: str = "",
    dpi: int = 200,
) -> Path:
    """Write the map (points coloured by label, with a legend) to ``path`` (.png/.svg/.pdf)."""
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise BadInputError(
            f"Cannot write a figure as {path.suffix or 'no extension'}: use .png, .svg or .pdf."
        )
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 6.5), layout="constrained")
    axes = figure.add_subplot()
    colors = label_colors(labels)
    label_array = np.asarray(labels)
    size = max(2.0, min(12.0, 6000.0 / max(len(labels), 1)))
    for label, color in colors.items():
        mask = label_array == label
        axes.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=size,
            color=color,
            label=label or "(no label)",
            linewidths=0,
            alpha=0.85,
            rasterized=False,
        )
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_aspect("equal", adjustable="datalim")
    if title:
        axes.set_title(title)
    if len(colors) > 1:
        axes.legend(
            loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, markerscale=max(1.0, 24 / size)
        )
    _writable(path)
    figure.savefig(path, dpi=dpi)
    return path


def write_coords_csv(
    path: Path,
    coords: npt.NDArray[np.float32],
    labels: Sequence[str],
    texts: Sequence[str] | None = None,
    *,
    extra: Mapping[str, Sequence[Any]] | None = None,
) -> Path:
    """Write ``row,x,y,label[,extra columns...][,text]`` for every row, in dataset order.

    ``extra`` adds named columns (clusters, faithfulness); floats are written with 6
    significant digits.
    """
    _writable(path)
    extra = dict(extra or {})
    for name, values in extra.items():
        if len(values) != len(coords):
            raise ValueError(f"column {name!r} has {len(values)} values for {len(coords)} rows")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "x", "y", "label", *extra] + (["text"] if texts is not None else []))
        for row, ((x, y), label) in enumerate(zip(coords.tolist(), labels, strict=True)):
            cells = [_cell(values[row]) for values in extra.values()]
            writer.writerow(
                [row, f"{x:.6g}", f"{y:.6g}", label, *cells] + ([texts[row]] if texts is not None else [])
            )
    return path


def _cell(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float | np.floating) else value


def _writable(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"Cannot create the folder {path.parent}: {exc.strerror}.") from exc
    if path.parent.exists() and not path.parent.is_dir():
        raise BadInputError(f"{path.parent} is not a folder.")
