"""Column filters typed the way people type them: numbers, ranges, values, and their errors."""

from __future__ import annotations

import math
from collections import Counter

import pyarrow as pa
import pytest
from pytestqt.qtbot import QtBot

from desktop.map.filter_bar import FilterBar, most_common
from desktop.panels.table_view import TableView
from engine.data.arrow import ArrowSequence
from engine.data.datasets import Dataset
from engine.data.row_filter import is_numeric_column, matching_rows, parse_condition
from engine.errors import BadInputError

SCORES = (3.5, 10.0, -1.0, None, 2.0, math.nan)


@pytest.mark.parametrize(
    ("phrase", "rows"),
    [
        ("> 2", [0, 1]),
        (">= 2", [0, 1, 4]),
        ("< 2", [2]),
        ("<=2", [2, 4]),
        ("= 10", [1]),
        ("10", [1]),
        ("!= 10", [0, 2, 4]),  # empty cells match no comparison, not even !=
        ("-1..3.5", [0, 2, 4]),
        ("1e1..1e1", [1]),
    ],
)
def test_numeric_conditions(phrase: str, rows: list[int]) -> None:
    assert matching_rows(SCORES, parse_condition(phrase, numeric=True)).tolist() == rows


@pytest.mark.parametrize(
    ("phrase", "rows"),
    [("pets", [0, 2]), ("pets, money", [0, 1, 2]), ("!= pets", [1, 3]), ("!= pets, money", [3]), ("= x", [])],
)
def test_text_conditions(phrase: str, rows: list[int]) -> None:
    labels = ("pets", "money", "pets", None)
    assert matching_rows(labels, parse_condition(phrase, numeric=False)).tolist() == rows


@pytest.mark.parametrize(
    ("phrase", "numeric", "says"),
    [
        ("", True, "Type a condition"),
        ("> lots", True, "not a condition on numbers"),
        ("5..1", True, "is empty"),
        ("= nan", True, "NaN"),
        ("!=", False, "names no value"),
        (" , ", False, "names no value"),
    ],
)
def test_bad_conditions_are_one_sentence(phrase: str, numeric: bool, says: str) -> None:
    with pytest.raises(BadInputError, match=says):
        parse_condition(phrase, numeric=numeric)


def test_numeric_columns_are_numbers_only() -> None:
    assert is_numeric_column((1, 2.5, None))
    assert not is_numeric_column((True, False))  # yes/no is a category
    assert not is_numeric_column(("1", 2))
    assert not is_numeric_column((None, None))


def _dataset() -> Dataset:
    return Dataset(
        name="t",
        texts=("Cats sleep.", "Taxes are due.", "A cat chased a mouse.", "Tax forms, again!"),
        labels=("pets", "money", "pets", "money"),
        columns={"score": (3.5, 10.0, -1.0, 2.0)},
    )


def test_filter_bar_narrows_the_table_and_search_works_inside_it(qtbot: QtBot) -> None:
    bar, table = FilterBar(), TableView()
    qtbot.addWidget(bar)
    qtbot.addWidget(table)
    table.set_dataset(_dataset())
    bar.set_dataset(_dataset())
    bar.filter_changed.connect(table.set_visible_rows)
    assert [bar.column.itemText(i) for i in range(bar.column.count())] == ["label", "score"]

    with qtbot.waitSignal(bar.filter_changed) as kept:
        assert bar.set_filter("score", ">= 2")
    assert kept.args[0].tolist() == [0, 1, 3]
    assert table.model.rowCount() == 3
    assert bar.count.text() == "3 of 4 rows kept"
    assert bar.description == "score: >= 2"

    matches: list[object] = []
    table.matches_changed.connect(matches.append)
    table.search.setText("tax")
    table.flush_search()
    assert matches[-1].tolist() == [1, 3]  # type: ignore[attr-defined]
    table.select_rows([3, 2])  # row 2 is filtered out: it stays selected, only 3 is listed
    assert table.selected_rows().tolist() == [2, 3]
    assert [index.row() for index in table.table.selectionModel().selectedRows()] == [1]

    table.search.clear()
    table.flush_search()
    qtbot.keyClicks(bar.condition, "x")
    bar.condition.selectAll()
    qtbot.keyClicks(bar.condition, "pets")
    bar.column.setCurrentIndex(0)
    with qtbot.waitSignal(bar.filter_changed) as kept:
        qtbot.keyClick(bar.condition, "\r")  # Enter applies the typed condition
    assert kept.args[0].tolist() == [0, 2]
    assert table.model.rowCount() == 2


def test_a_bad_condition_is_shown_and_keeps_the_previous_filter(qtbot: QtBot) -> None:
    bar = FilterBar()
    qtbot.addWidget(bar)
    bar.set_dataset(_dataset())
    assert bar.set_filter("score", "< 3")
    assert not bar.set_filter("score", "< three")
    assert "not a condition on numbers" in bar.error.text()
    assert bar.rows is not None and bar.rows.tolist() == [2, 3]
    assert not bar.set_filter("colour", "red")
    with qtbot.waitSignal(bar.filter_changed) as cleared:
        bar.clear_button.click()
    assert cleared.args[0] is None and bar.description is None


def _arrow_column(values: list[object], kind: pa.DataType) -> ArrowSequence[object]:
    half = len(values) // 2
    return ArrowSequence(
        pa.chunked_array([pa.array(values[:half], kind), pa.array(values[half:], kind)], kind)
    )


@pytest.mark.parametrize(
    ("values", "kind", "phrase"),
    [
        (["pets", None, "money", "", "pets", "x"], pa.string(), "pets, x"),
        (["pets", None, "money", "", "pets", "x"], pa.string(), "!= pets, money"),
        ([True, None, False, True], pa.bool_(), "True"),
        ([3, None, 10, -1, 2**60 + 1], pa.int64(), "> 2"),
        ([3.5, None, math.nan, -0.0, 2.0], pa.float64(), "-1..3"),
        ([3.5, None, math.nan, -0.0, 2.0], pa.float64(), "!= 2"),
    ],
)
def test_arrow_columns_match_as_their_python_values_do(
    values: list[object], kind: pa.DataType, phrase: str
) -> None:
    """Loaded datasets hold Arrow columns, filtered without a loop per row: the same rows as a
    plain Python pass over the same values."""
    column = _arrow_column(values, kind)
    numeric = is_numeric_column(column)
    assert numeric == is_numeric_column(tuple(values))
    condition = parse_condition(phrase, numeric=numeric)
    assert matching_rows(column, condition).tolist() == matching_rows(tuple(values), condition).tolist()


def test_completions_are_the_most_common_values_first() -> None:
    values = ["b", None, "a", "", "c", "a", "b", 7]
    expected = [value for value, _ in Counter("" if v is None else str(v) for v in values).most_common(3)]
    assert most_common(values, 3) == expected == ["b", "", "a"]
    column = _arrow_column(["b", None, "a", "", "c", "a", "b"], pa.string())
    assert most_common(column, 10) == ["b", "", "a", "c"]
