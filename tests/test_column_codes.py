"""Column codes give what a plain Python pass over the rows gives, whichever way they are computed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from engine.data.arrow import ArrowSequence
from engine.data.column_codes import (
    as_numbers,
    is_numeric,
    rows_containing,
    text_codes,
    text_order,
    value_codes,
)


def arrow(*chunks: list[Any], kind: pa.DataType | None = None) -> ArrowSequence[Any]:
    """An Arrow-backed column in several chunks, as a large Parquet file reads."""
    return ArrowSequence(pa.chunked_array([pa.array(chunk, kind) for chunk in chunks], kind))


COLUMNS: list[Sequence[Any]] = [
    arrow(["b", "a", None, ""], ["c", "b", None, "a", ""]),
    arrow([3, None, 1], [3, 2**60 + 1, None], kind=pa.int64()),
    arrow([0.5, math.nan, None, -0.0], [0.0, math.nan, 0.5], kind=pa.float64()),
    arrow([True, None], [False, True], kind=pa.bool_()),
    arrow([None, None], kind=pa.null()),
    arrow([], kind=pa.string()),
    ["noise", "cluster 1", "noise", "cluster 2", "cluster 1"],  # the window's cluster names
    ("x", None, "y", "x"),
    np.array(["noise", "c1", "noise", "c2"], dtype=object)[[0, 1, 2, 3, 1, 0]],  # names looked up by number
    np.array(["b", "a", "b"]),  # fixed-width numpy text
    ["a", 1, True, 1.0, None, ""],  # mixed: the Python pass
    (1, 2.5, None, 2),
    (),
]


def plain_text(value: Any) -> str:
    return "" if value is None else str(value)


def plain_float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


@pytest.mark.parametrize("values", COLUMNS)
def test_text_codes_are_the_texts_of_the_rows_in_order_of_first_appearance(values: Sequence[Any]) -> None:
    texts, codes = text_codes(values)
    rows = [plain_text(v) for v in values]
    assert texts == list(dict.fromkeys(rows))
    assert [texts[c] for c in codes] == rows
    assert codes.dtype == np.intp


# Not the floats: NaN is one value to Arrow, and -0.0 == 0.0 merges two in a dict.
@pytest.mark.parametrize(
    "values", [c for c in COLUMNS if not isinstance(c, ArrowSequence) or c.arrow.type != pa.float64()]
)
def test_value_codes_number_each_distinct_value_in_order_of_first_appearance(values: Sequence[Any]) -> None:
    distinct, codes = value_codes(values)
    assert distinct == list(dict.fromkeys(values))
    assert [distinct[c] for c in codes] == list(values)


def test_value_codes_tell_floats_apart_as_their_text_does() -> None:
    distinct, codes = value_codes(COLUMNS[2])
    assert [str(distinct[c]) for c in codes] == [str(v) for v in COLUMNS[2]]  # -0.0 is not 0.0


@pytest.mark.parametrize("values", COLUMNS)
def test_numbers_and_numeric_columns_match_a_python_pass(values: Sequence[Any]) -> None:
    expected = np.array([plain_float(v) for v in values], np.float64)
    assert np.array_equal(as_numbers(values), expected, equal_nan=True)
    present = [v for v in values if v is not None]
    numeric = bool(present) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
    assert is_numeric(values) is numeric


@pytest.mark.parametrize("values", COLUMNS)
def test_text_order_is_a_stable_sort_by_the_text_of_each_value(values: Sequence[Any]) -> None:
    expected = sorted(range(len(values)), key=lambda row: str(values[row]))
    assert text_order(values).tolist() == expected


SEARCHED = [
    "Straße",
    "STRASSE",
    "café",
    "CAFE",
    "\u212a (kelvin)",
    "ſome",
    "A.B",
    "a (b",
    "İstanbul",
    "plain",
]


@pytest.mark.parametrize("needle", ["ss", "SS", "straße", "café", "k", "s", "a.b", "(", "i̇", "İ", "x", "e"])
@pytest.mark.parametrize("arrow_backed", [False, True], ids=["tuple", "arrow"])
def test_rows_containing_ignore_case_as_casefold_does(needle: str, arrow_backed: bool) -> None:
    texts: Sequence[str] = arrow(SEARCHED[:4], SEARCHED[4:]) if arrow_backed else tuple(SEARCHED)
    expected = [row for row, text in enumerate(SEARCHED) if needle.casefold() in text.casefold()]
    assert rows_containing(texts, needle).tolist() == expected
