"""Datasets: rows of text with optional labels, other columns and vectors, and a fingerprint.

A :class:`Dataset` is plain, immutable data that crosses threads freely. Its fingerprint
covers the texts and labels, so caches keyed by it survive renames, copies and a change of
format (the same rows as CSV, Parquet or JSONL have the same fingerprint).

:func:`load_dataset` reads every supported format (see :data:`SUPPORTED`); every failure a
user can cause is a :class:`BadInputError` with one sentence. Large tables stay in Arrow
buffers (:class:`~engine.dataset_arrow.ArrowSequence`), converted one row at a time on access.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.dataset_arrow import ArrowSequence
from engine.dataset_columns import (
    as_labels,
    as_text,
    blank_rows,
    guess_text_column,
    numbers_if_all_are,
    trimmed,
)
from engine.dataset_readers import READERS, RawTable, read_csv, read_hf_folder, read_text_folder, unique_names
from engine.errors import BadInputError

SUPPORTED = (
    ".csv, .tsv, .tab, .json, .jsonl, .ndjson, .parquet, .arrow, .txt, "
    "a folder of .txt files or a folder saved by Hugging Face datasets"
)
LABEL_NAMES = ("label", "labels", "category", "class")


@dataclass(frozen=True)
class Dataset:
    """Rows of text; ``labels[i]``, ``sources[i]``, ``vectors[i]``, ``columns[c][i]`` describe ``texts[i]``.

    ``columns`` holds every column that is neither the text nor the label (numbers as numbers,
    missing values as None); ``vectors`` are precomputed embeddings (float32, read-only) if a
    ``.npy`` came with the table; ``skipped_blank`` counts the rows dropped for a blank text.
    """

    name: str
    texts: Sequence[str]
    labels: Sequence[str]
    sources: Sequence[str] = field(default=())
    columns: Mapping[str, Sequence[Any]] = field(default_factory=dict, compare=False)
    text_column: str = "text"
    skipped_blank: int = 0
    vectors: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        rows = len(self.texts)
        if len(self.labels) != rows:
            raise ValueError("labels and texts must have the same length")
        if self.sources and len(self.sources) != rows:
            raise ValueError("sources and texts must have the same length")
        if any(len(column) != rows for column in self.columns.values()):
            raise ValueError("every column must have one value per text")
        if self.vectors is not None and self.vectors.shape[0] != rows:
            raise ValueError("vectors must have one row per text")

    def __len__(self) -> int:
        return len(self.texts)

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the content (texts and labels), independent of the file's name and format."""
        digest = hashlib.blake2b(digest_size=16)
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.update(text.encode("utf-8"))
            digest.update(b"\x1f")
            digest.update(label.encode("utf-8"))
            digest.update(b"\x1e")
        return digest.hexdigest()


def load_dataset(path: Path, *, text_column: str | None = None, label_column: str | None = None) -> Dataset:
    """Read a dataset from any supported file or folder, chosen by suffix or folder layout.

    The text column defaults to the text column with the longest texts, the label column to
    one named like :data:`LABEL_NAMES`. Blank texts are skipped and counted. A ``.npy`` with
    the table's stem beside it (``rows.csv`` + ``rows.npy``) gives ``vectors``: one row per
    row of the table, blank ones included. Raises :class:`BadInputError` with one sentence.
    """
    return _build(path, _read(path), text_column, label_column, guess_label=True)


def load_csv(path: Path, text_column: str | None = None, label_column: str | None = None) -> Dataset:
    """Read ``path`` as CSV whatever its suffix; no label unless ``label_column`` names one."""
    return _build(path, _read(path, csv=True), text_column, label_column, guess_label=False)


def guess_label_column(columns: Sequence[str]) -> str | None:
    """The first of ``columns`` named like :data:`LABEL_NAMES` (any case), else None."""
    by_name = {column.lower(): column for column in reversed(columns)}
    return next((by_name[name] for name in LABEL_NAMES if name in by_name), None)


def check_writable(path: Path, suffixes: tuple[str, ...]) -> None:
    """Raise :class:`BadInputError` unless ``path`` can be written as an output file now.

    Checks the suffix (one of ``suffixes``, any case), that ``path`` is not a folder, that its
    folder exists, and that a file can be created there (or the existing file opened for writing).
    """
    wanted = " or ".join(suffixes)
    if path.suffix.lower() not in {suffix.lower() for suffix in suffixes}:
        raise BadInputError(f"Cannot write {path}: the file name must end in {wanted}.")
    if path.is_dir():
        raise BadInputError(f"Cannot write {path}: it is a folder; give a file name ending in {wanted}.")
    if not path.parent.is_dir():
        raise BadInputError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    try:
        if path.exists():
            os.close(os.open(path, os.O_WRONLY))
        else:
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".loupe-write-check-"):
                pass
    except OSError as exc:
        raise BadInputError(f"Cannot write {path}: {exc.strerror or 'permission denied'}.") from exc


def _read(path: Path, *, csv: bool = False) -> RawTable:
    path = Path(path)
    if path.is_dir():
        if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
            return read_hf_folder(path)
        if any(p.suffix.lower() == ".txt" for p in path.iterdir()):
            return read_text_folder(path)
        raise BadInputError(f"{path} is a folder without .txt files or a saved Hugging Face dataset.")
    if not path.is_file():
        raise BadInputError(f"No such file or folder: {path}")
    reader = read_csv if csv else READERS.get(path.suffix.lower())
    if reader is None:
        raise BadInputError(f"Cannot read {path.suffix or 'files without a suffix'}: use {SUPPORTED}.")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path} is empty.")
    return reader(path)


def _build(
    path: Path, raw: RawTable, text_column: str | None, label_column: str | None, *, guess_label: bool
) -> Dataset:
    path = Path(path)
    table = raw.data
    names = unique_names(table.column_names)  # a Parquet file may repeat a name; CSV did already
    table = table.rename_columns(names)
    if table.num_rows == 0:
        raise BadInputError(f"{path} has no rows.")
    for wanted in (text_column, label_column):
        if wanted is not None and wanted not in names:
            raise BadInputError(f"{path} has no column {wanted!r}; its columns are {', '.join(names)}.")
    if label_column is None and guess_label:
        label_column = guess_label_column([name for name in names if name != text_column])
    if text_column is None:  # not the label column, unless it is the only text there is
        text_column = guess_text_column(table.drop_columns([label_column] if label_column else []))
        text_column = text_column or guess_text_column(table)
        if text_column is None:
            raise BadInputError(f"{path} has no column of text; its columns are {', '.join(names)}.")
        label_column = None if label_column == text_column else label_column
    texts = as_text(table[text_column])
    keep_mask = ~blank_rows(texts)
    kept = int(np.count_nonzero(keep_mask))
    if kept == 0:
        raise BadInputError(f"Column {text_column!r} of {path} holds only blank texts.")
    vectors = _vectors(path, keep_mask)
    rest = table.drop_columns([text_column])
    if kept < table.num_rows:
        texts, rest = texts.filter(keep_mask), rest.filter(keep_mask)
    texts = trimmed(texts)
    columns: dict[str, Sequence[Any]] = {
        name: ArrowSequence(numbers_if_all_are(rest[name]) if raw.textual else rest[name])
        for name in rest.column_names
        if name != label_column
    }
    kept_sources = [s for s, k in zip(raw.sources, keep_mask, strict=True) if k] if raw.sources else []
    return Dataset(
        name=path.stem if path.is_file() else path.name,
        texts=ArrowSequence(texts),
        labels=ArrowSequence(as_labels(rest[label_column])) if label_column else ("",) * kept,
        sources=tuple(kept_sources),
        columns=MappingProxyType(columns),
        text_column=text_column,
        skipped_blank=table.num_rows - kept,
        vectors=vectors,
        path=path,
    )


def _vectors(path: Path, keep: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32] | None:
    """The ``.npy`` beside ``path`` with its stem, less the skipped rows; None if there is none."""
    npy = path.with_name(f"{path.stem if path.is_file() else path.name}.npy")
    if not npy.is_file():
        return None
    try:
        array = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise BadInputError(f"Cannot read {npy} as a .npy array: {exc}.") from exc
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype.kind not in "iuf":
        raise BadInputError(f"{npy} must hold a [rows, dim] array of numbers.")
    rows = len(keep)
    if array.shape[0] != rows:
        raise BadInputError(f"{npy} has {array.shape[0]} rows but {path.name} has {rows}; they must match.")
    kept_rows = np.flatnonzero(keep)
    if len(kept_rows) < rows:
        array = array[kept_rows]
    vectors = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(vectors.sum(axis=1, dtype=np.float64))
    if not finite.all():
        row = int(kept_rows[np.argmin(finite)])
        raise BadInputError(f"{npy} holds a value that is not a finite number in row {row}.")
    vectors.flags.writeable = False
    return vectors
