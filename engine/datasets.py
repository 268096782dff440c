"""Datasets: rows of text with optional labels, and a content fingerprint.

A :class:`Dataset` is plain, immutable data that crosses threads freely. Its fingerprint
covers the texts and labels, so caches keyed by it survive renames and copies.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BadInputError


@dataclass(frozen=True)
class Dataset:
    """Rows of text; ``labels[i]`` and ``sources[i]`` describe ``texts[i]``."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    sources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.texts):
            raise ValueError("labels and texts must have the same length")
        if self.sources and len(self.sources) != len(self.texts):
            raise ValueError("sources and texts must have the same length")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def fingerprint(self) -> str:
        """A digest of the content (texts and labels), independent of the file's name."""
        digest = hashlib.blake2b(digest_size=16)
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.update(text.encode("utf-8"))
            digest.update(b"\x1f")
            digest.update(label.encode("utf-8"))
            digest.update(b"\x1e")
        return digest.hexdigest()


def load_csv(path: Path, text_column: str | None = None, label_column: str | None = None) -> Dataset:
    """Read a CSV file; the text column defaults to the one with the longest texts.

    Blank texts are skipped. Raises :class:`BadInputError` with one sentence for a missing
    or unreadable file, a file without rows, or a column that does not exist.
    """
    if not path.is_file():
        raise BadInputError(f"No such file: {path}")
    try:
        raw = path.read_bytes()
        try:
            content = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            content = raw.decode("latin-1")
        # newline="": quoted fields keep their line breaks (str.splitlines would split them).
        rows = list(csv.DictReader(io.StringIO(content, newline="")))
    except (OSError, csv.Error) as exc:
        raise BadInputError(f"Cannot read {path} as CSV: {exc}") from exc
    if not rows:
        raise BadInputError(f"{path} has no rows below its header.")
    columns = list(rows[0].keys())
    text_column = text_column or _longest_text_column(rows, columns)
    for wanted in (text_column, label_column):
        if wanted is not None and wanted not in columns:
            raise BadInputError(f"{path} has no column {wanted!r}; its columns are {', '.join(columns)}.")
    texts: list[str] = []
    labels: list[str] = []
    for row in rows:
        text = (row.get(text_column) or "").strip()
        if text:
            texts.append(text)
            labels.append((row.get(label_column) or "") if label_column else "")
    if not texts:
        raise BadInputError(f"Column {text_column!r} of {path} holds only blank texts.")
    return Dataset(name=path.stem, texts=tuple(texts), labels=tuple(labels))


def _longest_text_column(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> str:
    sample = rows[:500]

    def mean_length(column: str) -> float:
        return sum(len(row.get(column) or "") for row in sample) / len(sample)

    return max(columns, key=mean_length)
