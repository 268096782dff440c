"""Datasets: rows of text with optional labels, other columns and vectors, and a fingerprint.

A :class:`Dataset` is plain, immutable data that crosses threads freely. Its fingerprint
covers the texts and labels, so caches keyed by it survive renames, copies and a change of
format (the same rows as CSV, Parquet or JSONL have the same fingerprint).

:func:`load_dataset` reads every supported format (see :data:`engine.data.readers.SUPPORTED`); every failure a
user can cause is a :class:`BadInputError` with one sentence. Large tables stay in Arrow
buffers (:class:`~engine.data.arrow.ArrowSequence`), converted one row at a time on access.

Choosing columns: ``load_dataset(path, text_column=..., label_column=...)`` overrides the
guesses (``label_column=NO_LABEL`` asks for none); ``Dataset.text_column``, ``label_column``
(None when the rows have no labels) and ``column_names`` say what was chosen and what else
could be. ``check_in_child=True`` reads a binary table in a child process first, so a reader
that crashes on a damaged file costs a sentence, not the caller's process (the window uses it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pyarrow as pa

from engine.data.arrow import ArrowSequence
from engine.data.columns import (
    as_labels,
    as_text,
    blank_rows,
    guess_label_by_values,
    guess_text_column,
    numbers_if_all_are,
    trimmed,
)
from engine.data.probe import BINARY_SUFFIXES, check_in_child_process
from engine.data.readers import RawTable, is_hf_folder, read_table, unique_names
from engine.errors import BadInputError

log = logging.getLogger(__name__)

LABEL_NAMES = ("label", "labels", "category", "class")
NO_LABEL = ""  # as ``label_column``: the rows have no label, and none is guessed


@dataclass(frozen=True)
class Dataset:
    """Rows of text; ``labels[i]``, ``sources[i]``, ``vectors[i]``, ``columns[c][i]`` describe ``texts[i]``.

    ``columns`` holds every column that is neither the text nor the label (numbers as numbers,
    missing values as None); ``vectors`` are precomputed embeddings (float32, read-only) if a
    ``.npy`` came with the table; ``skipped_blank`` counts the rows dropped for a blank text.
    ``label_column`` names the column the labels came from, or is None when the rows have no
    labels: ``labels`` then holds "" for every row, a placeholder that no view should show.
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
    label_column: str | None = field(default="label", compare=False)

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

    @property
    def has_labels(self) -> bool:
        """Whether ``labels`` came from a column (False: they are all "", made up)."""
        return self.label_column is not None

    @property
    def column_names(self) -> tuple[str, ...]:
        """Every column a user could choose as text or label: the text, the label, then the rest."""
        chosen = (self.text_column, *((self.label_column,) if self.label_column is not None else ()))
        return (*chosen, *(name for name in self.columns if name not in chosen))

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


def load_dataset(
    path: Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    check_in_child: bool = False,
) -> Dataset:
    """Read a dataset from any supported file or folder, chosen by suffix or folder layout.

    The text column defaults to the text column with the longest texts; the label column to
    one named like :data:`LABEL_NAMES`, else to a column of a few short categories
    (:func:`~engine.data.columns.guess_label_by_values`), else none; :data:`NO_LABEL` asks
    for none. Blank texts are skipped and counted. A ``.npy`` with the table's stem beside it
    (``rows.csv`` + ``rows.npy``) gives ``vectors``: one row per row of the table, blank ones
    included. Binary tables are fully validated before a value is read; ``check_in_child``
    also reads them in a short child process first, so that a native crash in the reader (a
    damaged file pyarrow does not catch) is a sentence here instead of the end of this
    process. Raises :class:`BadInputError` with one sentence.
    """
    path = Path(path)
    if check_in_child and (path.suffix.lower() in BINARY_SUFFIXES or is_hf_folder(path)):
        check_in_child_process(path)
    return _build(path, read_table(path), text_column, label_column, guess_label=True)


def load_csv(path: Path, text_column: str | None = None, label_column: str | None = None) -> Dataset:
    """Read ``path`` as CSV whatever its suffix; no label unless ``label_column`` names one."""
    return _build(path, read_table(path, csv=True), text_column, label_column, guess_label=False)


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


def _build(
    path: Path, raw: RawTable, text_column: str | None, label_column: str | None, *, guess_label: bool
) -> Dataset:
    path = Path(path)
    table = raw.data
    names = unique_names(table.column_names)  # a Parquet file may repeat a name; CSV did already
    table = table.rename_columns(names)
    if table.num_rows == 0:
        raise BadInputError(f"{path} has no rows.")
    text_column, label_column = pick_columns(
        table,
        text_column,
        label_column,
        textual=raw.textual,
        guess_label=guess_label,
        added_columns=raw.added_columns,
        where=str(path),
    )
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
        label_column=label_column,
    )


def pick_columns(
    table: pa.Table,
    text_column: str | None,
    label_column: str | None,
    *,
    textual: bool,
    guess_label: bool = True,
    added_columns: Sequence[str] = (),
    where: str = "the dataset",
) -> tuple[str, str | None]:
    """(text column, label column or None) as Loupe reads ``table``: named ones checked, the
    others guessed. A cluster job's driver calls it on a sample to embed the same column."""
    names = table.column_names
    # "" is a column name nobody has, except as NO_LABEL: "no label" (an empty text column is an error).
    for wanted in (text_column, None if label_column == NO_LABEL else label_column):
        if wanted is not None and wanted not in names:
            raise BadInputError(f"{where} has no column {wanted!r}; its columns are {', '.join(names)}.")
    guess = guess_label and label_column is None
    if guess:
        label_column = guess_label_column([name for name in names if name != text_column])
    if text_column is None:  # not the label column, unless it is the only text there is
        text_column = guess_text_column(table.drop_columns([label_column] if label_column else []))
        text_column = text_column or guess_text_column(table)
        if text_column is None:
            raise BadInputError(f"{where} has no column of text; its columns are {', '.join(names)}.")
        label_column = None if label_column == text_column else label_column
    if guess and label_column is None:
        # Not a column the reader made up (a saved DatasetDict's "split"): the file's own only.
        candidates = table.drop_columns([name for name in added_columns if name in names])
        label_column = guess_label_by_values(candidates, exclude=text_column, textual=textual)
        if label_column is not None:
            log.info("no column is named like a label: %r, with a few short values, is used", label_column)
    return text_column, label_column or None  # "" (NO_LABEL) → None


def _vectors(path: Path, keep: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32] | None:
    """The ``.npy`` beside ``path`` with its stem, less the skipped rows; None if there is none."""
    npy = path.with_name(f"{path.stem if path.is_file() else path.name}.npy")
    if not npy.is_file():
        return None
    rows = len(keep)
    _check_npy_header(npy, path, rows)  # before np.load allocates what the header claims
    try:
        array = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise BadInputError(f"Cannot read {npy} as a .npy array: {_first_line(exc)}.") from exc
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


def _check_npy_header(npy: Path, table: Path, rows: int) -> None:
    """Raise BadInputError unless ``npy`` holds a [rows, dim] array of numbers as big as the file.

    A header may claim any shape: one claiming 298 GiB in a 100-byte file made ``np.load``
    try to allocate it. The claim is checked against the file's real size first.
    """
    from numpy.lib import format as npy_format

    try:
        with npy.open("rb") as file:
            version = npy_format.read_magic(file)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, _, dtype = npy_format.read_array_header_2_0(file)
            else:
                raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
            data_bytes = npy.stat().st_size - file.tell()
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, TokenError, …
        raise BadInputError(f"Cannot read {npy} as a .npy array: {_first_line(exc)}.") from exc
    if len(shape) != 2 or shape[1] < 1 or dtype.kind not in "iuf" or dtype.hasobject:
        raise BadInputError(f"{npy} must hold a [rows, dim] array of numbers (dim at least 1).")
    if shape[0] != rows:
        raise BadInputError(f"{npy} has {shape[0]} rows but {table.name} has {rows}; they must match.")
    if shape[0] * shape[1] * dtype.itemsize != data_bytes:
        claim = f"{shape[0]} × {shape[1]} values of {dtype.itemsize} bytes"
        raise BadInputError(f"{npy} claims {claim} but holds {data_bytes:,} bytes.")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
