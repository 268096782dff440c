"""Whether a dataset's rows have labels: a question every view asks (the table's columns, the
filter's columns, the colourings offered), answered once here, below the views, without Qt."""

from __future__ import annotations

from collections.abc import Sequence

from engine.data.arrow import ArrowSequence


def has_labels(labels: Sequence[str]) -> bool:
    """Whether any row has a label: a dataset read without a label column has "" in every row.

    An Arrow column is asked in Arrow (a million labels in a few milliseconds)."""
    if isinstance(labels, ArrowSequence):
        import pyarrow as pa
        import pyarrow.compute as pc

        column = labels.arrow
        blank = pa.scalar("", pa.string())
        return len(column) > 0 and bool(pc.any(pc.not_equal(column, blank)).as_py())  # null: no label
    return any(labels)
