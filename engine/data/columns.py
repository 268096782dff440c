"""Column operations on pyarrow tables: which column is the text, text as text, numbers as numbers.

All work on Arrow columns without turning rows into Python objects, so a 1M-row table is
inspected and cleaned in vectorised passes; pyarrow is imported inside each function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError

if TYPE_CHECKING:
    import pyarrow as pa

_GUESS_SAMPLE = 500  # rows looked at to guess the text column
# A column of categories, in :func:`guess_label_by_values`:
MAX_LABELS = 50  # distinct values at most (and at most half the rows)
MAX_LABEL_CHARS = 40  # characters in the longest value


def guess_text_column(table: pa.Table) -> str | None:
    """The string column with the longest texts in a sample, numbers-only columns last."""
    import pyarrow.compute as pc

    sample = table.slice(0, _GUESS_SAMPLE)

    def score(name: str) -> tuple[bool, float]:
        column = sample[name]
        lengths = pc.sum(pc.utf8_length(column)).as_py() or 0
        return (not _numeric(column), lengths / max(1, len(column)))

    return max((f.name for f in table.schema if _is_text(f.type)), key=score, default=None)


def guess_label_by_values(table: pa.Table, *, exclude: str, textual: bool) -> str | None:
    """The first column (in file order) that reads as a few short categories, else None.

    "A few short categories" (low cardinality): a text column other than ``exclude`` (the text
    column), not all numbers (``textual``: CSV's numbers are still strings), with at least 2
    and at most :data:`MAX_LABELS` distinct non-blank values and no more than half as many as
    the table has rows, none longer than :data:`MAX_LABEL_CHARS` characters. So ``lang`` (7
    languages) or ``section`` (40 sections) of 3,000 rows is a label; an id, a title or a
    sentence is not. Counted over every row, in vectorised passes.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for field in table.schema:
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if field.name == exclude or not _is_text(kind):
            continue
        column = as_text(table[field.name]) if kind != field.type else table[field.name]
        if textual and _numeric(column):
            continue
        values = pc.utf8_trim_whitespace(column).filter(~blank_rows(column))
        if len(values) == 0:
            continue
        distinct = pc.count_distinct(values).as_py()
        longest = pc.max(pc.utf8_length(values)).as_py() or 0
        if 2 <= distinct <= min(MAX_LABELS, table.num_rows // 2) and longest <= MAX_LABEL_CHARS:
            return field.name
    return None


def blank_rows(texts: pa.ChunkedArray[Any]) -> npt.NDArray[np.bool_]:
    """True where a text is missing, empty or white space only; found without copying a text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    space = pc.or_(pc.equal(texts, pa.scalar("", pa.string())), pc.utf8_is_space(texts))
    blank: npt.NDArray[np.bool_] = pc.or_kleene(pc.is_null(texts), space).to_numpy(zero_copy_only=False)
    return blank


def as_text(column: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
    """The column as text (no copy if it is text already); missing values stay missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if _is_text(column.type):
        return column
    try:
        return pc.cast(column, pa.string())
    except pa.ArrowException as exc:
        raise BadInputError(f"A column of {column.type} values cannot be read as text.") from exc


def as_labels(column: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
    """The column as text, missing values as ""."""
    import pyarrow as pa
    import pyarrow.compute as pc

    filled: pa.ChunkedArray[Any] = pc.if_else(pc.is_null(column), pa.scalar("", pa.string()), as_text(column))
    return filled


def trimmed(column: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
    """White space trimmed from both ends of each text, without a copy when none has any."""
    import pyarrow.compute as pc

    # A superset of what utf8_trim_whitespace trims, so a miss costs a copy, never a wrong text.
    if pc.any(pc.match_substring_regex(column, r"^[\s\p{Z}\p{Cc}]|[\s\p{Z}\p{Cc}]$")).as_py():
        return pc.utf8_trim_whitespace(column)
    return column


def numbers_if_all_are(column: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
    """A text column from CSV as integers or floats if every non-blank value is one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.utf8_trim_whitespace(column)
    values = pc.if_else(pc.equal(values, pa.scalar("", pa.string())), pa.scalar(None, pa.string()), values)
    if values.null_count == len(values):
        return column
    for number in (pa.int64(), pa.float64()):
        try:
            return cast("pa.ChunkedArray[Any]", pc.cast(values, number))
        except pa.ArrowException:
            continue
    return column


def _numeric(column: pa.ChunkedArray[Any]) -> bool:
    import pyarrow as pa

    return numbers_if_all_are(column).type in (pa.int64(), pa.float64())


def _is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))
