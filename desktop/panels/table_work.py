"""The table's heavy questions, Qt-free: a column's sort order and the rows a search matches.

At a million rows each takes 60-170 ms (an Arrow or numpy sort, an Arrow substring match,
a regular expression per text), more than a GUI-thread turn may (50 ms): the table asks
them on the interactive lane (:mod:`desktop.operations`) and applies the answer, an array
of row numbers, in one cheap step. Without the operations machinery (a table on its own, in
tests) it asks them on the spot, with the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.data.column_codes import as_numbers, rows_containing, text_order
from engine.data.row_filter import is_numeric_column
from engine.runtime.jobs import CancelToken

Rows = npt.NDArray[np.intp]
_REGEX_CHUNK = 20_000  # texts matched between two looks at the cancel token (~10 ms of Python)


def column_order(values: Sequence[Any]) -> Rows:
    """Every row in ascending order of ``values``, a stable sort: numbers as numbers (NaN and
    empty cells last), anything else by its text. numpy and Arrow sort without the GIL."""
    if is_numeric_column(values):
        return np.argsort(as_numbers(values), kind="stable").astype(np.intp, copy=False)
    return text_order(values)


def compile_search(query: str) -> re.Pattern[str]:
    """The pattern a regular-expression search uses (case ignored); re.error when it is not one."""
    return re.compile(query, re.IGNORECASE)


def search_rows(texts: Sequence[str], query: str, *, regex: bool, token: CancelToken | None = None) -> Rows:
    """The rows (ascending) whose text holds ``query`` (case ignored as ``str.casefold`` does),
    or, with ``regex``, where the regular expression ``query`` matches (case ignored).

    A substring search runs in Arrow where it can (:func:`rows_containing`); a regular
    expression is Python's ``re`` on each text, in chunks, so that a newer search cancels it.
    """
    if not regex:
        return rows_containing(texts, query)
    pattern = compile_search(query)
    hits: list[int] = []
    for start in range(0, len(texts), _REGEX_CHUNK):
        if token is not None:
            token.raise_if_cancelled()
        chunk = texts[start : start + _REGEX_CHUNK]
        hits.extend(start + i for i, text in enumerate(chunk) if pattern.search(text) is not None)
    return np.array(hits, dtype=np.intp)
