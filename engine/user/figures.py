"""The map as a figure (PNG/SVG/PDF), and what every Loupe figure shares: the fonts that
draw any script, text kept as text in vector files, the page layout and the atomic save.

matplotlib draws the figures because its SVG and PDF backends write real vector marks (one
per point, sharing one marker definition), which is what a paper needs, and because it runs
without any display. The attention figures (:mod:`engine.user.attention_figures`) draw with
the helpers here.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.maps.palette import label_colors
from engine.runtime.atomic import atomic_path
from engine.user.data_files import writable_folder

log = logging.getLogger(__name__)

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
# The metadata key that carries a one-line description inside each format.
_DESCRIPTION_KEY = {".png": "Description", ".svg": "Description", ".pdf": "Subject"}


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
    inside the file; :func:`engine.user.export.write_sidecar` writes the whole record beside it.
    """
    check_map_figure(path, size, dpi)
    if len(coords) != len(labels):
        raise ValueError(f"{len(coords)} points but {len(labels)} labels")
    with any_script(path):
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
    marker = marker_size(len(labels))
    scatter_by_label(plot, coords, labels, colors, marker, alpha=0.85)
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
    writable_folder(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, metadata=_map_metadata(path, provenance))


def marker_size(rows: int) -> float:
    """Points per marker: smaller as the map fills up, between 2 and 12."""
    return max(2.0, min(12.0, 6000.0 / max(rows, 1)))


def scatter_by_label(
    plot: Any,
    coords: npt.NDArray[np.floating],
    labels: Sequence[str],
    colors: Mapping[str, Any],
    marker: float,
    *,
    alpha: float,
) -> None:
    """One vector mark per point, one scatter (and legend entry) per label, in ``colors``' order."""
    label_array = np.asarray(labels, dtype=object)
    for label, color in colors.items():
        mask = label_array == label
        plot.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=marker,
            color=color,
            label=label or "(no label)",
            linewidths=0,
            alpha=alpha,
            rasterized=False,
        )


def _map_metadata(path: Path, provenance: Mapping[str, Any] | None) -> dict[str, str] | None:
    """A one-line description inside the file too (PNG text chunk, SVG/PDF metadata)."""
    if provenance is None:
        return None
    summary = f"Loupe map: {provenance.get('method')} of {provenance.get('dataset', {}).get('fingerprint')}"
    return {_DESCRIPTION_KEY[path.suffix.lower()]: summary}


# -- what every figure shares ------------------------------------------------------------------


def figure_fonts() -> list[str]:
    """``font.family`` for Loupe's figures: DejaVu Sans, then the installed :data:`FALLBACK_FONTS`."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in FALLBACK_FONTS if name in installed)]


@contextmanager
def any_script(path: Path) -> Iterator[None]:
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


@contextmanager
def vector_text() -> Iterator[None]:
    """Text as text in SVG (``<text>``) and PDF (embedded TrueType), not outlines: editable, searchable."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    with matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        yield


def new_figure(width: float, height: float) -> Any:
    """An empty page of ``width`` x ``height`` inches (a matplotlib ``Figure``)."""
    from matplotlib.figure import Figure

    # Constrained layout fits labels inside the page without changing its size, so a PNG
    # keeps exactly width * dpi by height * dpi pixels (bbox_inches="tight" would not).
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(
    figure: Any, path: Path, dpi: int, provenance: Mapping[str, Any] | None, summary: str
) -> None:
    """Write ``figure`` to ``path`` atomically, with ``summary`` (and the dataset's fingerprint,
    when ``provenance`` has one) as the file's one-line description."""
    writable_folder(path)
    metadata = None
    if provenance is not None:
        fingerprint = provenance.get("dataset", {}).get("fingerprint")
        description = f"{summary} of {fingerprint}" if fingerprint else summary
        metadata = {_DESCRIPTION_KEY[path.suffix.lower()]: description}
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, metadata=metadata)
