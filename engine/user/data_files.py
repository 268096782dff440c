"""The map's data as files: coordinates, labels and extra columns as CSV or Parquet, and the
files a map is made from, which no output may replace."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.data.arrow import ArrowSequence
from engine.errors import BadInputError
from engine.runtime.atomic import atomic_path

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

        writable_folder(path)
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
    writable_folder(path)
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


def dataset_files(path: Path) -> list[Path]:
    """The files a map of the dataset at ``path`` is made from, which no output may replace: the
    dataset and the vectors ``.npy`` beside it (see :func:`engine.data.datasets.load_dataset`)."""
    return [path, path.with_name(f"{path.stem if path.is_file() else path.name}.npy")]


def writable_folder(path: Path) -> None:
    """Create the folder ``path`` goes into; a folder that cannot be made is one sentence.

    Every writer of figures and data calls it before drawing or writing anything."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"Cannot create the folder {path.parent}: {exc.strerror}.") from exc
    if path.parent.exists() and not path.parent.is_dir():
        raise BadInputError(f"{path.parent} is not a folder.")


def _cell(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float | np.floating) else value
