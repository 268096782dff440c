"""One row's attention under two models, side by side, and its difference (PNG/SVG/PDF).

:func:`paired_attention` decides what the two panels show, for the paired attention view
(:mod:`desktop.attention.pair_view`) and the figure alike: one layer and head choice drives
both sides, each side's matrix comes from :func:`engine.user.attention_figures.attention_matrix`,
both share one colour scale, and the difference (against − base) exists only when both sides
have the same rows and columns. Two models of different depth are matched by relative depth
(the picked layer is a position in the deeper model; the shallower one shows the layer at the
same fraction of its depth), and a head number past a model's last head shows its last head:
heads have no correspondence across models anyway, and the panel titles say what each side shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.model.attention import words_of
from engine.model.inference import AttentionMaps
from engine.user.attention_figures import (
    ATTENTION_UNITS,
    attention_matrix,
    check_attention_figure,
    colour_bar,
    draw_cells,
    token_axis_labels,
)
from engine.user.export import attention_provenance, write_sidecar
from engine.user.figures import any_script, new_figure, save_figure, vector_text

SPLIT_DIFFERENTLY = "The two tokenizers split this row differently: no difference view."
WORDS_DIFFER = "The two tokenizers split this row into different words: no difference view."
WORDS_AGREE_HINT = " Their words agree: show words to see the difference."
DIFFERENCE_COLOURS = "RdBu_r"  # diverging, white at 0: blue where against attends less, red more


@dataclass(frozen=True)
class PairedAttention:
    """What the two panels (and the difference, when there is one) show for one choice.

    ``scale`` is the top of the colour scale both sides share (their largest value), so the two
    compare by eye; ``difference_limit`` is the largest absolute difference (1.0 when the two
    are identical, so that an all-zero difference is drawn in the scale's middle colour).
    ``note`` says in plain sentences what is not a like-for-like comparison ("" when all is).
    """

    base: npt.NDArray[np.float32]
    against: npt.NDArray[np.float32]
    base_labels: list[str]
    against_labels: list[str]
    base_layer: int
    against_layer: int
    base_head: int | None
    against_head: int | None
    difference: npt.NDArray[np.float32] | None  # against − base; None when the grids differ
    scale: float
    difference_limit: float
    note: str

    @property
    def identical(self) -> bool:
        """Both sides show exactly the same values (a model compared with itself)."""
        return self.difference is not None and not np.any(self.difference)


def pair_ranges(base: AttentionMaps, against: AttentionMaps) -> tuple[int, int]:
    """How many layers and heads the shared pickers offer: the deeper and the wider model's."""
    return max(base.layers, against.layers), max(base.heads, against.heads)


def side_layer(picked: int, deepest: int, layers: int) -> int:
    """The layer a model of ``layers`` layers shows for layer ``picked`` of ``deepest``: the
    same relative depth (first to first, last to last), itself when the depths agree."""
    if layers == deepest or deepest <= 1:
        return min(picked, layers - 1)
    return round(picked * (layers - 1) / (deepest - 1))


def paired_attention(
    base: AttentionMaps,
    against: AttentionMaps,
    *,
    layer: int,
    head: int | None = None,
    hide_special: bool = True,
    unit: str = "tokens",
) -> PairedAttention:
    """Both sides' matrices for ``layer`` and ``head`` of :func:`pair_ranges` (head None: the
    mean of each model's heads), over tokens or words, and their difference when the grids agree.

    Tokens agree when the two tokenizers gave identical token lists for the row; words agree when
    the shown word lists are identical (two tokenizers that split words into different pieces
    can still agree on the words). Raises :class:`BadInputError` for a layer or head out of range.
    """
    if unit not in ATTENTION_UNITS:
        raise BadInputError(f"Attention is shown over tokens or words, not {unit!r}.")
    deepest, widest = pair_ranges(base, against)
    if not 0 <= layer < deepest:
        raise BadInputError(f"Layer {layer} is out of range: the layers are 0..{deepest - 1}.")
    if head is not None and not 0 <= head < widest:
        raise BadInputError(f"Head {head} is out of range: the heads are 0..{widest - 1}.")
    choices = []
    for maps in (base, against):
        side_head = None if head is None else min(head, maps.heads - 1)
        choices.append((side_layer(layer, deepest, maps.layers), side_head))
    (base_layer, base_head), (against_layer, against_head) = choices
    base_matrix, base_labels = attention_matrix(
        base, layer=base_layer, head=base_head, hide_special=hide_special, unit=unit
    )
    against_matrix, against_labels = attention_matrix(
        against, layer=against_layer, head=against_head, hide_special=hide_special, unit=unit
    )
    agree = base_labels == against_labels and (unit == "words" or base.tokens == against.tokens)
    difference = None
    limit = 1.0
    if agree:
        difference = np.ascontiguousarray(against_matrix - base_matrix, dtype=np.float32)
        limit = float(np.abs(difference).max(initial=0.0)) or 1.0
    scale = max(float(base_matrix.max(initial=0.0)), float(against_matrix.max(initial=0.0))) or 1.0
    notes = [] if agree else [_disagreement(base, against, unit, hide_special)]
    if base.layers != against.layers or base.heads != against.heads:
        notes.append(
            f"The models differ in size ({base.layers} layers × {base.heads} heads against "
            f"{against.layers} × {against.heads}): layers are matched by relative depth, and a head "
            "past a model's last head shows its last head."
        )
    if difference is not None and not np.any(difference):
        # The usual case for two layers or poolings of one model: attention does not depend on them.
        notes.append(
            "Both sides give this row the same attention (one model, compared at two layers or "
            "poolings, which do not change attention): the difference is 0 everywhere."
        )
    return PairedAttention(
        base_matrix,
        against_matrix,
        base_labels,
        against_labels,
        base_layer,
        against_layer,
        base_head,
        against_head,
        difference,
        scale,
        limit,
        " ".join(notes),
    )


def _disagreement(base: AttentionMaps, against: AttentionMaps, unit: str, hide_special: bool) -> str:
    """Why there is no difference view, and whether showing words would give one."""
    if unit == "words":
        return WORDS_DIFFER
    # The labels only: one head merged, not every layer's (see attention_matrix).
    base_words, against_words = (
        words_of(replace(m, attentions=m.attentions[:1, :1])) for m in (base, against)
    )
    keep = [[w for w, s in zip(m.tokens, m.special, strict=True) if not (hide_special and s)]
            for m in (base_words, against_words)]  # fmt: skip
    return SPLIT_DIFFERENTLY + (WORDS_AGREE_HINT if keep[0] == keep[1] else "")


def side_caption(title: str, layer: int, head: int | None) -> str:
    """A panel's title: the model's name, and the layer and head it shows."""
    return f"{title}\nlayer {layer} · {'mean of heads' if head is None else f'head {head}'}"


def save_attention_pair_figure(
    path: Path,
    base: AttentionMaps,
    against: AttentionMaps,
    *,
    layer: int,
    head: int | None = None,
    hide_special: bool = True,
    unit: str = "tokens",
    titles: tuple[str, str] = ("base", "against"),
    width: float = 12.0,
    height: float = 4.8,
    dpi: int = 200,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Both sides' attention for one row side by side, on one colour scale, and the difference
    (against − base, diverging colours centred on 0) when the grids agree; written to ``path``.

    ``path`` ends in .png, .svg or .pdf; SVG and PDF keep every cell a vector patch and every
    token a real text (any script's fonts: :func:`engine.user.figures.any_script`). The file's
    own description names both models (with their identities, when ``provenance`` holds them
    under ``base``/``against``). Raises :class:`BadInputError`.
    """
    check_attention_figure(path, width, height, dpi)
    pair = paired_attention(base, against, layer=layer, head=head, hide_special=hide_special, unit=unit)
    panels = 3 if pair.difference is not None else 2
    thing = "word" if unit == "words" else "token"
    sides = (
        (pair.base, pair.base_labels, side_caption(titles[0], pair.base_layer, pair.base_head)),
        (pair.against, pair.against_labels, side_caption(titles[1], pair.against_layer, pair.against_head)),
    )
    with vector_text(), any_script(path):
        figure = new_figure(width, height)
        plots = list(figure.subplots(1, panels))
        label_room = min(height, width / panels)  # each panel is about this square
        mesh = None
        for plot, (matrix, labels, caption) in zip(plots, sides, strict=False):
            mesh = draw_cells(plot, matrix, vmax=pair.scale)
            token_axis_labels(plot, labels, label_room)
            plot.set_title(caption, fontsize=10)
            plot.set_xlabel(f"key {thing}")
        plots[0].set_ylabel(f"query {thing}")
        colour_bar(figure, plots[:2], mesh, "attention")
        if pair.difference is not None:
            plot = plots[2]
            limit = pair.difference_limit
            spread = draw_cells(plot, pair.difference, vmax=limit, vmin=-limit, cmap=DIFFERENCE_COLOURS)
            token_axis_labels(plot, pair.base_labels, label_room)
            identical = "\nidentical: 0 everywhere" if pair.identical else ""
            plot.set_title(f"difference (against − base){identical}", fontsize=10)
            plot.set_xlabel(f"key {thing}")
            colour_bar(figure, plot, spread, f"{titles[1]} − {titles[0]}")
        figure.suptitle(f"{titles[0]}  vs  {titles[1]}")
        if pair.note:
            figure.supxlabel(pair.note, fontsize=8, wrap=True)
        save_figure(figure, path, dpi, provenance, _summary(pair, titles, unit, provenance))
    return path


def _summary(
    pair: PairedAttention, titles: tuple[str, str], unit: str, provenance: Mapping[str, Any] | None
) -> str:
    """The file's one-line description: both models, and what each side shows."""
    described = []
    for name, title, layer, head in (
        ("base", titles[0], pair.base_layer, pair.base_head),
        ("against", titles[1], pair.against_layer, pair.against_head),
    ):
        known = (provenance or {}).get(name)
        identity = (known.get("model") or known.get("identity")) if isinstance(known, Mapping) else None
        named = f"{title} ({identity})" if identity and identity != title else title
        described.append(f"{named} layer {layer} head {'mean' if head is None else head}")
    difference = "with" if pair.difference is not None else "without"
    return f"Loupe attention pair: {described[0]} vs {described[1]}, {unit}, {difference} difference"


def attention_pair_provenance(
    window_record: Mapping[str, Any],
    base: AttentionMaps,
    against: AttentionMaps,
    *,
    row: int,
    layer: int,
    head: int | None,
    hide_special: bool,
    unit: str,
    titles: tuple[str, str],
) -> dict[str, Any]:
    """The sidecar's record: ``window_record`` (the dataset and, under ``base``/``against``, each
    side's model record when the window has them) completed with what each side shows."""
    pair = paired_attention(base, against, layer=layer, head=head, hide_special=hide_special, unit=unit)
    sides: dict[str, dict[str, Any]] = {}
    for name, title, maps, side_layer_shown, side_head in (
        ("base", titles[0], base, pair.base_layer, pair.base_head),
        ("against", titles[1], against, pair.against_layer, pair.against_head),
    ):
        known = window_record.get(name)
        side = dict(known) if isinstance(known, Mapping) else {}
        side.update(
            title=title,
            attention_layer=side_layer_shown,
            attention_head=side_head,
            model_layers=maps.layers,
            model_heads=maps.heads,
            tokens=len(maps.tokens),
        )
        sides[name] = side
    record = attention_provenance(
        window_record,
        view="attention pair",
        layer=None,  # each side's own layer is under base/against
        head=None,
        picked_layer=layer,
        picked_head=head,
        row=row,
        text=base.text,
        hide_special=hide_special,
        unit=unit,
        tokenizers_agree=pair.difference is not None,
        difference="against - base" if pair.difference is not None else None,
        note=pair.note,
    )
    record.update(sides)  # attention_provenance's first parameter is called base: set them here
    return record


def write_attention_pair(
    path: Path,
    base: AttentionMaps,
    against: AttentionMaps,
    window_record: Mapping[str, Any] | None,
    *,
    row: int,
    layer: int,
    head: int | None,
    hide_special: bool,
    unit: str,
    titles: tuple[str, str],
    size: tuple[float, float],
    dpi: int,
) -> list[Path]:
    """Write the pair figure to ``path`` and its provenance sidecar beside it; returns both.
    Safe on any thread. Raises :class:`BadInputError`."""
    record = attention_pair_provenance(
        window_record or {},
        base,
        against,
        row=row,
        layer=layer,
        head=head,
        hide_special=hide_special,
        unit=unit,
        titles=titles,
    )
    figure = save_attention_pair_figure(
        path,
        base,
        against,
        layer=layer,
        head=head,
        hide_special=hide_special,
        unit=unit,
        titles=titles,
        width=size[0],
        height=size[1],
        dpi=dpi,
        provenance=record,
    )
    return [figure, write_sidecar(figure, record)]
