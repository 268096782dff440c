"""Figures and data files without a window: the map as PNG/SVG/PDF, coordinates as CSV.

matplotlib draws the figures because its SVG and PDF backends write real vector marks (one
per point, sharing one marker definition), which is what a paper needs, and because it runs
without any display.
"""

from __future__ import annotations

import csv
import json
import time
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
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise BadInputError(
            f"Cannot write a figure as {path.suffix or 'no extension'}: use .png, .svg or .pdf."
        )
    if not (0.5 <= size[0] <= 100 and 0.5 <= size[1] <= 100):
        raise BadInputError(
            f"A figure's width and height must be 0.5 to 100 inches, not {size[0]} x {size[1]}."
        )
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
    figure.savefig(path, dpi=dpi, metadata=_figure_metadata(path, provenance))
    return path


DATA_FORMATS = (".csv", ".parquet")


def write_data(
    path: Path,
    coords: npt.NDArray[np.float32],
    labels: Sequence[str],
    *,
    extra: Mapping[str, Sequence[Any]] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """The map's data as CSV or Parquet (``row, x, y, label`` and ``extra`` columns).

    Parquet also carries ``provenance`` in its schema metadata (key ``loupe``)."""
    if path.suffix.lower() == ".csv":
        write_coords_csv(path, coords, labels, extra=extra)
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
        metadata = {b"loupe": json.dumps(provenance or {}, default=str).encode()}
        table = pa.table(columns).replace_schema_metadata(metadata)
        pq.write_table(table, path)
    else:
        raise BadInputError(f"Cannot write data as {path.suffix or 'no extension'}: use .csv or .parquet.")
    return path


def provenance(
    engine: Any, dataset: Any, params: Any, layer: int, trustworthiness: float | None = None
) -> dict[str, Any]:
    """What a figure or data file shows and how it was made (the JSON sidecar's content)."""
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
        "model": "precomputed vectors" if dataset.vectors is not None else engine.spec.identity,
        "layer": layer,
        "method": params.method,
        "parameters": params.settings(),
        "seed": params.seed,
        "versions": {name: version(name) for name in ("numpy", "scikit-learn", "umap-learn", "matplotlib")},
    }
    if trustworthiness is not None:
        record["trustworthiness"] = trustworthiness
    if dataset.vectors is None:
        record["pooling"] = engine.spec.pooling
    return record


def write_sidecar(path: Path, provenance: Mapping[str, Any]) -> Path:
    """``path + ".json"``: the provenance record of the file at ``path``."""
    sidecar = path.with_name(path.name + ".json")
    sidecar.write_text(json.dumps(provenance, indent=2, default=str) + "\n", encoding="utf-8")
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
