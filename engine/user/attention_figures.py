"""One text's attention, and a group's attention statistics, as figures (PNG/SVG/PDF).

SVG and PDF keep every cell a vector patch and every token label real text, so a journal
can restyle them; :mod:`engine.user.figures` holds what these share with the map figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.model.attention import merge_words, rollout, word_groups, words_of
from engine.model.attention_stats import LABELS, AttentionStatistics
from engine.model.inference import AttentionMaps
from engine.user.figures import FIGURE_FORMATS, any_script, new_figure, save_figure, vector_text

ATTENTION_FIGURE_VIEWS = ("heatmap", "rollout")
ATTENTION_UNITS = ("tokens", "words")
MIN_LABEL_POINTS = 4.0  # token labels smaller than this are unreadable: label every k-th instead


def attention_matrix(
    maps: AttentionMaps,
    *,
    layer: int,
    head: int | None = None,
    view: str = "heatmap",
    hide_special: bool = True,
    unit: str = "tokens",
) -> tuple[npt.NDArray[np.float32], list[str]]:
    """The query x key matrix a figure shows, and its labels (what the attention view draws).

    ``head`` None is the mean of the heads; ``view`` "rollout" ignores layer and head and rolls
    out over every layer and every token, and only then drops the special tokens, so that
    attention flowing through them still counts. Special tokens stay when fewer than two
    other tokens would be left. ``unit`` "words" merges subword tokens into words
    (:func:`engine.model.attention.merge_words`: keys summed, queries averaged), after the rollout.
    """
    if view not in ATTENTION_FIGURE_VIEWS:
        raise BadInputError(f"There is no attention figure called {view!r}: use heatmap or rollout.")
    if unit not in ATTENTION_UNITS:
        raise BadInputError(f"Attention is shown over tokens or words, not {unit!r}.")
    if view == "heatmap" and not 0 <= layer < maps.layers:
        raise BadInputError(f"Layer {layer} is out of range: the layers are 0..{maps.layers - 1}.")
    if head is not None and not 0 <= head < maps.heads:
        raise BadInputError(f"Head {head} is out of range: the heads are 0..{maps.heads - 1}.")
    if view == "rollout":
        full = rollout(maps, residual=True)
    else:
        per_layer = maps.attentions[layer]
        full = (
            per_layer.mean(axis=0, dtype=np.float64).astype(np.float32) if head is None else per_layer[head]
        )
    if unit == "words":
        full = merge_words(full, word_groups(maps))
        # Only the words' labels and flags are wanted here: merging every layer and head of a
        # 256-token MiniLM row took 1.7 s (each redraw of a view over words), one head takes ms.
        maps = words_of(replace(maps, attentions=maps.attentions[:1, :1]))
    keep = [i for i, special in enumerate(maps.special) if not special]
    if not hide_special or len(keep) < 2:
        keep = list(range(len(maps.tokens)))
    matrix: npt.NDArray[np.float32] = np.ascontiguousarray(full[np.ix_(keep, keep)], dtype=np.float32)
    return matrix, [maps.tokens[i] for i in keep]


def save_attention_figure(
    path: Path,
    maps: AttentionMaps,
    *,
    layer: int,
    head: int | None = None,
    view: str = "heatmap",
    hide_special: bool = True,
    unit: str = "tokens",
    title: str = "",
    width: float = 7.0,
    height: float = 6.0,
    dpi: int = 200,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """One text's attention as a token x token (or word x word) heatmap, written to ``path``.

    ``path`` ends in .png, .svg or .pdf; ``unit`` is "tokens" or "words" (:func:`attention_matrix`).
    ``width``/``height`` are inches and ``dpi`` sets a PNG's pixels (``width * dpi`` wide).
    SVG and PDF are vector: one filled path per cell and real text for every token label
    (SVG ``<text>``, PDF TrueType), so a journal can restyle them; nothing is rasterised.
    """
    check_attention_figure(path, width, height, dpi)
    matrix, tokens = attention_matrix(
        maps, layer=layer, head=head, view=view, hide_special=hide_special, unit=unit
    )
    thing = "word" if unit == "words" else "token"
    with vector_text(), any_script(path):
        figure = new_figure(width, height)
        plot = figure.add_subplot()
        mesh = draw_cells(plot, matrix, vmax=float(matrix.max()) or 1.0)
        token_axis_labels(plot, tokens, height)
        plot.set_xlabel(f"input {thing}" if view == "rollout" else f"key {thing}")
        plot.set_ylabel(f"output {thing}" if view == "rollout" else f"query {thing}")
        colour_bar(figure, plot, mesh, "rollout weight" if view == "rollout" else "attention")
        if title:
            plot.set_title(title)
        summary = f"Loupe attention {view}: layer {layer}, head {'mean' if head is None else head}, {unit}"
        save_figure(figure, path, dpi, provenance, summary)
    return path


def save_attention_statistics_figure(
    path: Path,
    stats: AttentionStatistics,
    statistic: str,
    title: str = "",
    *,
    width: float = 7.0,
    height: float = 4.5,
    dpi: int = 200,
    annotate: bool | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """A group's ``statistic`` as a layers x heads grid, written to ``path`` (.png/.svg/.pdf).

    The colour scale is fixed to 0..1 (every statistic lies there), so two groups' figures
    compare by eye. ``annotate`` writes each cell's value in it (default: when there are at
    most 200 cells, where the numbers stay legible).
    """
    check_attention_figure(path, width, height, dpi)
    grid = stats.values(statistic)
    layers, heads = grid.shape
    with vector_text(), any_script(path):
        figure = new_figure(width, height)
        plot = figure.add_subplot()
        mesh = draw_cells(plot, grid, vmax=1.0)
        plot.set_xticks(np.arange(heads) + 0.5, labels=[str(h) for h in range(heads)])
        plot.set_yticks(np.arange(layers) + 0.5, labels=[str(layer) for layer in range(layers)])
        plot.set_xlabel("head")
        plot.set_ylabel("layer")
        if annotate if annotate is not None else grid.size <= 200:
            _annotate_cells(plot, grid, width / max(heads, 1))
        colour_bar(figure, plot, mesh, LABELS[statistic])
        sampled = f" sampled from {stats.requested}" if stats.sampled else ""
        plot.set_title(title or f"{LABELS[statistic]} · {stats.rows} rows{sampled}")
        save_figure(figure, path, dpi, provenance, f"Loupe attention statistics: {statistic}")
    return path


def check_attention_figure(path: Path, width: float, height: float, dpi: int) -> None:
    """Raise :class:`BadInputError` (one sentence) unless an attention figure of this format,
    size (inches) and resolution can be drawn."""
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise BadInputError(
            f"Cannot write a figure as {path.suffix or 'no extension'}: use .png, .svg or .pdf."
        )
    if not (1.0 <= width <= 50 and 1.0 <= height <= 50):
        raise BadInputError(f"A figure's width and height must be 1 to 50 inches, not {width} x {height}.")
    if not 30 <= dpi <= 1200:
        raise BadInputError(f"A figure's resolution must be 30 to 1200 dpi, not {dpi}.")


def draw_cells(
    plot: Any, values: npt.NDArray[np.float32], vmax: float, *, vmin: float = 0.0, cmap: str = "viridis"
) -> Any:
    """One vector patch per cell, row 0 at the top; NaN cells are left blank."""
    masked = np.ma.masked_invalid(values)
    mesh = plot.pcolormesh(masked, cmap=cmap, vmin=vmin, vmax=vmax, edgecolors="none", rasterized=False)
    rows, columns = values.shape
    plot.set_xlim(0, columns)
    plot.set_ylim(rows, 0)
    return mesh


def token_axis_labels(plot: Any, tokens: list[str], height: float) -> None:
    """Every token on both axes, as large as the cells allow (every k-th token when too small)."""
    count = max(len(tokens), 1)
    cell_points = 0.7 * height * 72 / count  # the axes take about 70 % of the figure's height
    size = min(10.0, 0.8 * cell_points)
    step = 1 if size >= MIN_LABEL_POINTS else int(np.ceil(MIN_LABEL_POINTS / size))
    size = max(size, MIN_LABEL_POINTS)
    shown = range(0, len(tokens), step)
    labels = [_plain_text(tokens[i]) for i in shown]
    ticks = [i + 0.5 for i in shown]
    plot.set_xticks(ticks, labels=labels, rotation=90, fontsize=size)
    plot.set_yticks(ticks, labels=labels, fontsize=size)
    plot.set_aspect("equal")
    plot.tick_params(length=0)


def _plain_text(token: str) -> str:
    """A token shown literally: matplotlib would read ``$...$`` as mathematics."""
    return token.replace("$", r"\$")


def _annotate_cells(plot: Any, grid: npt.NDArray[np.float32], cell_inches: float) -> None:
    size = max(4.0, min(9.0, cell_inches * 72 * 0.28))
    for (row, column), value in np.ndenumerate(grid):
        if np.isfinite(value):
            colour = "black" if value > 0.6 else "white"  # viridis is light at the top
            plot.text(
                column + 0.5, row + 0.5, f"{value:.2f}", ha="center", va="center", fontsize=size, color=colour
            )


def colour_bar(figure: Any, plot: Any, mesh: Any, label: str) -> None:
    """A colour bar for ``mesh`` beside ``plot`` (one axes, or a list of axes sharing the bar)."""
    bar = figure.colorbar(mesh, ax=plot, shrink=0.85, label=label)
    # matplotlib rasterises a colour bar of 50 or more steps; keep the SVG/PDF free of bitmaps.
    bar.solids.set_rasterized(False)
