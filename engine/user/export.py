"""Figures and data files without a window: the map as PNG/SVG/PDF, coordinates as CSV.

matplotlib draws the figures because its SVG and PDF backends write real vector marks (one
per point, sharing one marker definition), which is what a paper needs, and because it runs
without any display.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engine.data.arrow import ArrowSequence
from engine.errors import BadInputError
from engine.maps.palette import label_colors
from engine.model.attention import merge_words, rollout, word_groups, words_of
from engine.model.attention_stats import LABELS, AttentionStatistics
from engine.model.inference import AttentionMaps
from engine.runtime.atomic import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from engine.api.types import EngineIdentity
    from engine.data.datasets import Dataset
    from engine.maps.projection import ProjectionParams

FIGURE_FORMATS = (".png", ".svg", ".pdf")
# Below 30 dpi points blur into each other; above 1200 no printer gains, and a PNG's memory
# grows with the square (``loupe export --dpi 100000`` asked matplotlib for terabytes).
MIN_DPI, MAX_DPI = 30, 1200
# A PNG side in pixels: a 16,384-pixel square is 1 GiB of RGBA while it is drawn (matplotlib's
# own limit, 65,536, would be 16 GiB).
MAX_PIXELS = 16_384
# Figures draw labels and tokens in any script. matplotlib (>= 3.6) takes each glyph from the
# first family in ``font.family`` that has it, so DejaVu Sans (bundled: Latin, Greek, Cyrillic,
# some Arabic) comes first and common CJK/Arabic fonts follow; only the installed ones are
# listed, since matplotlib logs a warning for every family it cannot find.
FALLBACK_FONTS = (
    "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR",
    "Source Han Sans", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback",
    "IPAexGothic", "IPAGothic", "TakaoGothic", "Hiragino Sans", "PingFang SC", "Microsoft YaHei",
    "Yu Gothic", "Meiryo", "Malgun Gothic", "Apple SD Gothic Neo", "SimHei", "Noto Sans Arabic",
    "Noto Naskh Arabic", "Noto Sans Hebrew", "Noto Sans Devanagari", "Noto Sans Thai",
    "Arial Unicode MS", "Segoe UI", "Tahoma", "Noto Sans Symbols2", "Symbola",
)  # fmt: skip
_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from font")


def check_map_figure(path: Path, size: tuple[float, float], dpi: int) -> None:
    """Raise :class:`BadInputError` (one sentence) unless a map figure of this format, size
    (inches) and dpi can be drawn; ``loupe export`` calls it before any work starts."""
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise BadInputError(
            f"Cannot write a figure as {path.suffix or 'no extension'}: use .png, .svg or .pdf."
        )
    if not (0.5 <= size[0] <= 100 and 0.5 <= size[1] <= 100):
        raise BadInputError(
            f"A figure's width and height must be 0.5 to 100 inches, not {size[0]} x {size[1]}."
        )
    if not MIN_DPI <= dpi <= MAX_DPI:
        raise BadInputError(f"A figure's resolution must be {MIN_DPI} to {MAX_DPI} dpi, not {dpi}.")
    pixels = max(size) * dpi
    if path.suffix.lower() == ".png" and pixels > MAX_PIXELS:
        raise BadInputError(
            f"A {size[0]} x {size[1]} inch PNG at {dpi} dpi is {pixels:,.0f} pixels on its long side, "
            f"more than {MAX_PIXELS:,}: lower the dpi or the size, or write an SVG or PDF."
        )


def save_map_figure(
    path: Path,
    coords: npt.NDArray[np.float32],
    labels: Sequence[str],
    title: str = "",
    dpi: int = 200,
    *,
    size: tuple[float, float] = (8.0, 6.5),
    legend: bool = True,
    axes: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write the map (points coloured by label) to ``path`` (.png/.svg/.pdf).

    ``size`` is in inches and ``dpi`` applies to PNG. ``provenance`` adds a one-line summary
    inside the file; :func:`write_sidecar` writes the whole record beside it.
    """
    check_map_figure(path, size, dpi)
    if len(coords) != len(labels):
        raise ValueError(f"{len(coords)} points but {len(labels)} labels")
    with _any_script(path):
        _draw_map(path, coords, labels, title, dpi, size, legend, axes, provenance)
    return path


def _draw_map(
    path: Path,
    coords: npt.NDArray[np.float32],
    labels: Sequence[str],
    title: str,
    dpi: int,
    size: tuple[float, float],
    legend: bool,
    axes: bool,
    provenance: Mapping[str, Any] | None,
) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    plot = figure.add_subplot()
    colors = label_colors(labels)
    label_array = np.asarray(labels)
    marker = max(2.0, min(12.0, 6000.0 / max(len(labels), 1)))
    for label, color in colors.items():
        mask = label_array == label
        plot.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=marker,
            color=color,
            label=label or "(no label)",
            linewidths=0,
            alpha=0.85,
            rasterized=False,
        )
    if not axes:
        plot.set_xticks([])
        plot.set_yticks([])
    plot.set_aspect("equal", adjustable="datalim")
    if title:
        plot.set_title(title)
    if legend and len(colors) > 1:
        plot.legend(
            loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, markerscale=max(1.0, 24 / marker)
        )
    _writable(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, metadata=_figure_metadata(path, provenance))


DATA_FORMATS = (".csv", ".parquet")


def write_data(
    path: Path,
    coords: npt.NDArray[np.float32],
    labels: Sequence[str],
    *,
    texts: Sequence[str] | None = None,
    extra: Mapping[str, Sequence[Any]] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """The map's data as CSV or Parquet: ``row, x, y, label``, the ``extra`` columns, then
    ``text`` (each row's text, last because it can be long) when ``texts`` is given.

    ``loupe export --data`` and the window's Export data… both give the texts, so a reader can
    tell which text each point is without the dataset. Parquet also carries ``provenance`` in
    its schema metadata (key ``loupe``)."""
    if path.suffix.lower() == ".csv":
        write_coords_csv(path, coords, labels, texts, extra=extra)
    elif path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        _writable(path)
        columns: dict[str, Any] = {
            "row": np.arange(len(coords)),
            "x": coords[:, 0],
            "y": coords[:, 1],
            "label": list(labels),
            **{name: list(values) for name, values in (extra or {}).items()},
        }
        if texts is not None:
            if len(texts) != len(coords):
                raise ValueError(f"{len(texts)} texts for {len(coords)} rows")
            # An Arrow-backed dataset's texts go in as they are: no Python string per row.
            columns["text"] = texts.arrow if isinstance(texts, ArrowSequence) else list(texts)
        metadata = {b"loupe": json.dumps(provenance or {}, default=str).encode()}
        table = pa.table(columns).replace_schema_metadata(metadata)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    else:
        raise BadInputError(f"Cannot write data as {path.suffix or 'no extension'}: use .csv or .parquet.")
    return path


def provenance(
    identity: EngineIdentity,
    dataset: Dataset,
    params: ProjectionParams,
    layer: int,
    trustworthiness: float | None = None,
) -> dict[str, Any]:
    """What a figure or data file shows and how it was made (the JSON sidecar's content).

    ``identity`` is what the engine said it computes with (``api.identify(Identify())``), asked
    through the engine's API whichever engine the CLI or the window holds.
    """
    from importlib.metadata import version

    import engine as loupe

    record: dict[str, Any] = {
        "loupe": loupe.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": {
            "path": str(Path(dataset.path).resolve()) if dataset.path else None,
            "fingerprint": dataset.fingerprint,
            "rows": len(dataset),
            "text_column": dataset.text_column,
        },
        "model": "precomputed vectors" if dataset.vectors is not None else identity.model_identity,
        "layer": layer,
        "method": params.method,
        "parameters": params.settings(),
        "seed": params.seed,
        "versions": {name: version(name) for name in ("numpy", "scikit-learn", "umap-learn", "matplotlib")},
    }
    if trustworthiness is not None:
        record["trustworthiness"] = trustworthiness
    if dataset.vectors is None:
        record["pooling"] = identity.pooling
    return record


def dataset_files(path: Path) -> list[Path]:
    """The files a map of the dataset at ``path`` is made from, which no output may replace: the
    dataset and the vectors ``.npy`` beside it (see :func:`engine.data.datasets.load_dataset`)."""
    return [path, path.with_name(f"{path.stem if path.is_file() else path.name}.npy")]


def sidecar_path(path: Path) -> Path:
    """Where :func:`write_sidecar` writes the record of the file at ``path``: ``path + ".json"``."""
    return path.with_name(path.name + ".json")


def write_sidecar(path: Path, provenance: Mapping[str, Any]) -> Path:
    """``path + ".json"``: the provenance record of the file at ``path``."""
    sidecar = sidecar_path(path)
    write_text_atomic(sidecar, json.dumps(provenance, indent=2, default=str) + "\n")
    return sidecar


def _figure_metadata(path: Path, provenance: Mapping[str, Any] | None) -> dict[str, str] | None:
    """A one-line description inside the file too (PNG text chunk, SVG/PDF metadata)."""
    if provenance is None:
        return None
    summary = f"Loupe map: {provenance.get('method')} of {provenance.get('dataset', {}).get('fingerprint')}"
    key = {".png": "Description", ".svg": "Description", ".pdf": "Subject"}[path.suffix.lower()]
    return {key: summary}


def write_coords_csv(
    path: Path,
    coords: npt.NDArray[np.float32],
    labels: Sequence[str],
    texts: Sequence[str] | None = None,
    *,
    extra: Mapping[str, Sequence[Any]] | None = None,
) -> Path:
    """Write ``row,x,y,label[,extra columns...][,text]`` for every row, in dataset order (the
    layout :func:`write_data` writes to Parquet too).

    ``extra`` adds named columns (clusters, faithfulness); floats are written with 6
    significant digits.
    """
    _writable(path)
    extra = dict(extra or {})
    columns = {"label": labels, **({"text": texts} if texts is not None else {}), **extra}
    for name, values in columns.items():
        if len(values) != len(coords):
            raise ValueError(f"column {name!r} has {len(values)} values for {len(coords)} rows")
    # Written beside ``path`` and renamed into place: a failure never leaves part of a file.
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
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


# -- attention figures -------------------------------------------------------------------------

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
        maps = words_of(maps)
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
    _check_attention_figure(path, width, height, dpi)
    matrix, tokens = attention_matrix(
        maps, layer=layer, head=head, view=view, hide_special=hide_special, unit=unit
    )
    thing = "word" if unit == "words" else "token"
    with _vector_text(), _any_script(path):
        figure = _new_figure(width, height)
        plot = figure.add_subplot()
        mesh = _cells(plot, matrix, vmax=float(matrix.max()) or 1.0)
        _token_axis_labels(plot, tokens, height)
        plot.set_xlabel(f"input {thing}" if view == "rollout" else f"key {thing}")
        plot.set_ylabel(f"output {thing}" if view == "rollout" else f"query {thing}")
        _colour_bar(figure, plot, mesh, "rollout weight" if view == "rollout" else "attention")
        if title:
            plot.set_title(title)
        summary = f"Loupe attention {view}: layer {layer}, head {'mean' if head is None else head}, {unit}"
        _save(figure, path, dpi, provenance, summary)
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
    _check_attention_figure(path, width, height, dpi)
    grid = stats.values(statistic)
    layers, heads = grid.shape
    with _vector_text(), _any_script(path):
        figure = _new_figure(width, height)
        plot = figure.add_subplot()
        mesh = _cells(plot, grid, vmax=1.0)
        plot.set_xticks(np.arange(heads) + 0.5, labels=[str(h) for h in range(heads)])
        plot.set_yticks(np.arange(layers) + 0.5, labels=[str(layer) for layer in range(layers)])
        plot.set_xlabel("head")
        plot.set_ylabel("layer")
        if annotate if annotate is not None else grid.size <= 200:
            _annotate_cells(plot, grid, width / max(heads, 1))
        _colour_bar(figure, plot, mesh, LABELS[statistic])
        sampled = f" sampled from {stats.requested}" if stats.sampled else ""
        plot.set_title(title or f"{LABELS[statistic]} · {stats.rows} rows{sampled}")
        _save(figure, path, dpi, provenance, f"Loupe attention statistics: {statistic}")
    return path


def attention_provenance(
    base: Mapping[str, Any], *, view: str, layer: int | None, head: int | None, **fields: Any
) -> dict[str, Any]:
    """``base`` (the dataset and model, from the window) plus what an attention figure shows.

    ``view`` goes in as ``method`` too, replacing a map's projection method, and ``layer`` is
    the attention layer shown (None for rollout and statistics over every layer).
    """
    from importlib.metadata import PackageNotFoundError, version

    versions = dict(base.get("versions", {}))
    for name in ("numpy", "matplotlib", "torch", "transformers"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    record = {**base, "method": f"attention {view}", "view": view, "layer": layer, "head": head, **fields}
    record["versions"] = versions
    record.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return record


def _check_attention_figure(path: Path, width: float, height: float, dpi: int) -> None:
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise BadInputError(
            f"Cannot write a figure as {path.suffix or 'no extension'}: use .png, .svg or .pdf."
        )
    if not (1.0 <= width <= 50 and 1.0 <= height <= 50):
        raise BadInputError(f"A figure's width and height must be 1 to 50 inches, not {width} x {height}.")
    if not 30 <= dpi <= 1200:
        raise BadInputError(f"A figure's resolution must be 30 to 1200 dpi, not {dpi}.")


@contextmanager
def _vector_text() -> Iterator[None]:
    """Text as text in SVG (``<text>``) and PDF (embedded TrueType), not outlines: editable, searchable."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    with matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        yield


def figure_fonts() -> list[str]:
    """``font.family`` for Loupe's figures: DejaVu Sans, then the installed :data:`FALLBACK_FONTS`."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in FALLBACK_FONTS if name in installed)]


@contextmanager
def _any_script(path: Path) -> Iterator[None]:
    """Draw with :func:`figure_fonts`; characters no installed font has (drawn as boxes) are one
    logged line for the figure, not a Python warning per glyph and per draw."""
    import matplotlib

    missing: set[str] = set()
    # The filters are the process's while this runs: only the glyph warnings are kept here,
    # every other warning is issued again below, under the caller's filters.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with matplotlib.rc_context({"font.family": figure_fonts()}):
            yield
    for warning in caught:
        glyph = _MISSING_GLYPH.search(str(warning.message))
        if glyph is not None and issubclass(warning.category, UserWarning):
            missing.add(chr(int(glyph.group(1))))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if missing:
        shown = "".join(sorted(missing)[:12]) + ("…" if len(missing) > 12 else "")
        log.warning(
            "%s: %d characters have no glyph in the installed fonts and are drawn as boxes (%s); "
            "installing a font such as Noto Sans CJK or Noto Sans Arabic draws them",
            path.name,
            len(missing),
            shown,
        )


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    # Constrained layout fits labels inside the page without changing its size, so a PNG
    # keeps exactly width * dpi by height * dpi pixels (bbox_inches="tight" would not).
    return Figure(figsize=(width, height), layout="constrained")


def _cells(plot: Any, values: npt.NDArray[np.float32], vmax: float) -> Any:
    """One vector patch per cell, row 0 at the top; NaN cells are left blank."""
    masked = np.ma.masked_invalid(values)
    mesh = plot.pcolormesh(masked, cmap="viridis", vmin=0.0, vmax=vmax, edgecolors="none", rasterized=False)
    rows, columns = values.shape
    plot.set_xlim(0, columns)
    plot.set_ylim(rows, 0)
    return mesh


def _token_axis_labels(plot: Any, tokens: list[str], height: float) -> None:
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


def _colour_bar(figure: Any, plot: Any, mesh: Any, label: str) -> None:
    bar = figure.colorbar(mesh, ax=plot, shrink=0.85, label=label)
    # matplotlib rasterises a colour bar of 50 or more steps; keep the SVG/PDF free of bitmaps.
    bar.solids.set_rasterized(False)


def _save(figure: Any, path: Path, dpi: int, provenance: Mapping[str, Any] | None, summary: str) -> None:
    _writable(path)
    metadata = None
    if provenance is not None:
        key = {".png": "Description", ".svg": "Description", ".pdf": "Subject"}[path.suffix.lower()]
        fingerprint = provenance.get("dataset", {}).get("fingerprint")
        metadata = {key: f"{summary} of {fingerprint}" if fingerprint else summary}
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, metadata=metadata)
