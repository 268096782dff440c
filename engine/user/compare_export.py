"""A comparison of two embeddings as files: one row per dataset row (both aligned positions,
displacement, neighbour overlap, label, text) and a JSON sidecar that says how both sides were
made and what the whole-space scores were.

``loupe compare`` and the window's comparison export both write through here, so the two
files a reader gets are the same whoever made them.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import BadInputError
from engine.runtime.atomic import atomic_path
from engine.user.data_files import writable_folder
from engine.user.export import write_sidecar

if TYPE_CHECKING:
    from engine.api.types import ComparedSide, Comparison
    from engine.data.datasets import Dataset

COMPARISON_FORMATS = (".csv", ".parquet")
COLUMNS = (
    "row",
    "base_x",
    "base_y",
    "against_x",
    "against_y",
    "displacement",
    "neighbour_overlap",
    "label",
    "text",
)


def side_summary(side: ComparedSide) -> dict[str, Any]:
    """One side as a reader needs it: which model (its content identity too), layer, pooling,
    and how many rows were embedded now or read from the cache."""
    identity = side.identity
    layers = identity.layers
    layer = side.run.layer
    return {
        "model": identity.model_name,
        "model_identity": identity.model_identity,
        "display_name": identity.display_name,
        "layer": layer,
        # -1 is "the last layer": say which one it was, where the config tells.
        "layer_index": layers + 1 + layer if layer < 0 and layers is not None else layer,
        "pooling": identity.pooling,  # the pooling of the engine that embedded this side
        "width": side.run.width,
        "device": identity.device,
        "max_length": identity.max_length,
        "embedded": side.run.computed,
        "from_cache": side.run.from_cache,
        "truncated": side.run.truncated,
    }


def comparison_summary(comparison: Comparison) -> dict[str, Any]:
    """The whole-space scores (what ``loupe compare`` prints and the sidecar records)."""
    return {
        "rows": len(comparison.overlap),
        "k": comparison.k,
        "mean_overlap": _number(comparison.mean_overlap),
        "cka": _number(comparison.cka),
        "overlap_by_label": {label: _number(value) for label, value in comparison.overlap_by_label.items()},
        "mean_displacement": _number(float(np.mean(comparison.displacement)))
        if len(comparison.displacement)
        else None,
        "exact_neighbours": comparison.exact_neighbours,
        "from_cache": comparison.from_cache,
        "base": side_summary(comparison.base),
        "against": side_summary(comparison.against),
    }


def comparison_provenance(
    comparison: Comparison, *, dataset_source: str | None, dataset_fingerprint: str | None
) -> dict[str, Any]:
    """How a comparison was made: both sides' model identity, layer and pooling, the projection
    method and its parameters, k, the dataset and the library versions (the sidecar's record)."""
    from importlib.metadata import PackageNotFoundError, version

    import engine as loupe

    versions: dict[str, str] = {}
    for name in ("numpy", "scikit-learn", "umap-learn", "matplotlib", "torch", "transformers"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    params = comparison.params
    return {
        "loupe": loupe.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "what": "comparison",
        "dataset": {
            "path": dataset_source,
            "fingerprint": dataset_fingerprint,
            "rows": len(comparison.overlap),
        },
        "base": side_summary(comparison.base),
        "against": side_summary(comparison.against),
        "method": params.method,
        "parameters": params.settings(),
        "seed": params.seed,
        "alignment": "orthogonal Procrustes of the against map onto the base map",
        "k": comparison.k,
        "neighbours": "cosine, exact" if comparison.exact_neighbours else "cosine, approximate index",
        "displacement_unit": "the base map's spread (root-mean-square distance from its centre)",
        "versions": versions,
    }


def write_comparison_rows(
    path: Path, dataset: Dataset, comparison: Comparison, provenance: Mapping[str, Any]
) -> Path:
    """``path`` (CSV, or Parquet with the record in its schema metadata) with :data:`COLUMNS`,
    one row per dataset row in dataset order, and its JSON sidecar (``path + ".json"``).

    The sidecar is ``provenance`` plus the whole-space scores (under ``scores``, unless
    ``provenance`` already has them). Returns ``path``; the sidecar is written after it.
    """
    suffix = path.suffix.lower()
    if suffix not in COMPARISON_FORMATS:
        raise BadInputError(
            f"Cannot write a comparison as {path.suffix or 'no extension'}: use .csv or .parquet."
        )
    rows = len(comparison.overlap)
    if len(dataset.texts) != rows:
        raise ValueError(f"the dataset has {len(dataset.texts)} rows, the comparison {rows}")
    record = dict(provenance)
    record.setdefault("scores", comparison_summary(comparison))
    base = np.asarray(comparison.base.map.coords, dtype=np.float64)
    against = np.asarray(comparison.against.map.coords, dtype=np.float64)
    columns: dict[str, Sequence[Any]] = {
        "row": range(rows),
        "base_x": base[:, 0].tolist(),
        "base_y": base[:, 1].tolist(),
        "against_x": against[:, 0].tolist(),
        "against_y": against[:, 1].tolist(),
        "displacement": np.asarray(comparison.displacement, dtype=np.float64).tolist(),
        "neighbour_overlap": np.asarray(comparison.overlap, dtype=np.float64).tolist(),
        # A dataset without labels holds "" placeholders: an empty column, as the map export writes.
        "label": list(dataset.labels),
        "text": dataset.texts,
    }
    writable_folder(path)
    if suffix == ".csv":
        _write_csv(path, columns, rows)
    else:
        _write_parquet(path, columns, record)
    write_sidecar(path, record)
    return path


def _write_csv(path: Path, columns: Mapping[str, Sequence[Any]], rows: int) -> None:
    # Written beside ``path`` and renamed into place: a failure never leaves part of a file.
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        values = [columns[name] for name in COLUMNS]
        for row in range(rows):
            writer.writerow([_cell(column[row]) for column in values])


def _write_parquet(path: Path, columns: Mapping[str, Sequence[Any]], record: Mapping[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.data.arrow import ArrowSequence

    data: dict[str, Any] = {name: list(columns[name]) for name in COLUMNS if name != "text"}
    texts = columns["text"]
    # An Arrow-backed dataset's texts go in as they are: no Python string per row.
    data["text"] = texts.arrow if isinstance(texts, ArrowSequence) else list(texts)
    metadata = {b"loupe": json.dumps(record, default=str).encode()}
    table = pa.table(data).replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _cell(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def _number(value: float) -> float | None:
    """A score for JSON: NaN (a degenerate space, where CKA says nothing) becomes null."""
    return None if not math.isfinite(value) else float(value)
