"""The table's first sorts and searches on the interactive lane: the same answers as on the
spot, applied when they come, and a late answer to an older question dropped."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop.map import colours as map_colours
from desktop.operations.bridge import EngineBridge
from desktop.operations.operation import Operations
from desktop.panels.table_view import TableView
from desktop.panels.table_work import column_order, search_rows
from engine.data.arrow import ArrowSequence
from engine.data.datasets import Dataset
from engine.runtime.jobs import CancelToken, JobCancelled

# Accents, CJK, case and ties: what the window's search and sort must treat as before.
TEXTS = (
    "Café au lait",
    "cafe noir",
    "東京の天気",
    "Tokyo weather",
    "CAFÉ crème",
    "東京タワー",
    "straße",
    "Strasse",
    "Œuvre complète",
    "cafe noir",
) * 30
SCORES = tuple(float(x) for x in np.random.default_rng(3).normal(size=len(TEXTS)).round(1))


def dataset(arrow: bool, rows: int = len(TEXTS)) -> Dataset:
    texts, scores = TEXTS[:rows], SCORES[:rows]
    labels = tuple(["b", "a", "日本", None, "a"][i % 5] for i in range(rows))
    if arrow:
        import pyarrow as pa

        return Dataset(
            name="t",
            texts=ArrowSequence(pa.array(texts, pa.string())),
            labels=ArrowSequence(pa.array(labels, pa.string())),
            columns={"score": ArrowSequence(pa.array(scores, pa.float64()))},
        )
    return Dataset(name="t", texts=texts, labels=labels, columns={"score": scores})


@pytest.fixture
def operations(qtbot: QtBot) -> Iterator[Operations]:
    bridge = EngineBridge()
    yield Operations(bridge)
    bridge.shutdown()


def shown_rows(view: TableView) -> list[int]:
    model = view.model
    assert model is not None
    return [model.dataset_row(i) for i in range(model.rowCount())]


def on_the_spot(arrow: bool, qtbot: QtBot) -> TableView:
    view = TableView()
    qtbot.addWidget(view)
    view.set_dataset(dataset(arrow))
    return view


def in_background(arrow: bool, qtbot: QtBot, operations: Operations) -> TableView:
    view = TableView()
    qtbot.addWidget(view)
    view.use_operations(operations)
    view.set_dataset(dataset(arrow))
    return view


@pytest.mark.parametrize("arrow", [False, True], ids=["tuple", "arrow"])
def test_a_first_sort_in_the_background_orders_rows_as_on_the_spot(
    arrow: bool, qtbot: QtBot, operations: Operations
) -> None:
    spot, background = on_the_spot(arrow, qtbot), in_background(arrow, qtbot, operations)
    for column in (1, 2, 3):
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            spot.table.sortByColumn(column, order)
            background.table.sortByColumn(column, order)
            qtbot.waitUntil(lambda: not background.busy)
            assert shown_rows(background) == shown_rows(spot), (column, order)
    background.set_visible_rows(np.arange(0, len(TEXTS), 4))  # a filter keeps the sort
    spot.set_visible_rows(np.arange(0, len(TEXTS), 4))
    assert shown_rows(background) == shown_rows(spot)


def test_the_count_says_sorting_until_the_order_comes(qtbot: QtBot, operations: Operations) -> None:
    view = in_background(True, qtbot, operations)
    before = shown_rows(view)
    view.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    if view.busy:  # the lane may have answered already; until it does, the rows stay as they were
        assert view.count.text().endswith("Sorting…") and shown_rows(view) == before
    qtbot.waitUntil(lambda: not view.busy)
    assert view.count.text() == f"{len(TEXTS):,} rows"
    assert shown_rows(view) == column_order(view.model.column_values(1)).tolist()  # type: ignore[union-attr]


def test_the_newest_column_asked_for_is_the_one_shown(qtbot: QtBot, operations: Operations) -> None:
    view, spot = in_background(True, qtbot, operations), on_the_spot(True, qtbot)
    view.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    view.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: not view.busy)
    qtbot.wait(50)  # a late answer for column 1, had it not been dropped, would land now
    spot.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    assert shown_rows(view) == shown_rows(spot)


def test_an_answer_for_a_replaced_dataset_is_dropped(qtbot: QtBot, operations: Operations) -> None:
    view, spot = in_background(True, qtbot, operations), on_the_spot(True, qtbot)
    for table in (view, spot):
        table.search.setText("café")
        table.start_search()
        table.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
        table.set_dataset(dataset(False, rows=20))  # the search goes on, over the new rows
    qtbot.waitUntil(lambda: not view.busy)
    qtbot.wait(100)  # the old rows' answers, had they not been dropped, would land now
    assert np.array_equal(view.matches, spot.matches)  # type: ignore[arg-type]
    assert shown_rows(view) == shown_rows(spot) and max(shown_rows(view)) < 20


@pytest.mark.parametrize("arrow", [False, True], ids=["tuple", "arrow"])
@pytest.mark.parametrize(
    ("query", "regex"),
    [("café", False), ("CAFE", False), ("東京", False), ("STRASSE", False), ("œuvre", False),
     (r"^caf[eé]\b", True), ("東京(の|タ)", True), (r"stra(ss|ß)e", True)],
)  # fmt: skip
def test_a_search_in_the_background_finds_what_one_on_the_spot_finds(
    arrow: bool, query: str, regex: bool, qtbot: QtBot, operations: Operations
) -> None:
    spot, background = on_the_spot(arrow, qtbot), in_background(arrow, qtbot, operations)
    seen: list[object] = []
    background.matches_changed.connect(seen.append)
    for view in (spot, background):
        view.regex.setChecked(regex)
        view.search.setText(query)
    spot.flush_search()
    background.start_search()
    qtbot.waitUntil(lambda: not background.busy)
    assert spot.matches is not None and len(spot.matches)
    assert np.array_equal(background.matches, spot.matches)  # type: ignore[arg-type]
    assert np.array_equal(seen[-1], spot.matches)  # type: ignore[arg-type]
    assert shown_rows(background) == shown_rows(spot) and background.count.text() == spot.count.text()


def test_a_newer_search_supersedes_a_running_one(qtbot: QtBot, operations: Operations) -> None:
    view = in_background(True, qtbot, operations)
    seen: list[object] = []
    view.matches_changed.connect(seen.append)
    view.regex.setChecked(True)
    view.search.setText("caf")
    view.start_search()
    view.search.setText("東京")
    view.start_search()
    qtbot.waitUntil(lambda: not view.busy)
    qtbot.wait(50)
    expected = search_rows(TEXTS, "東京", regex=True)
    assert np.array_equal(view.matches, expected)  # type: ignore[arg-type]
    assert np.array_equal(seen[-1], expected)  # type: ignore[arg-type]
    assert view.count.text() == f"{len(expected):,} of {len(TEXTS):,} rows"


def test_a_bad_regular_expression_is_said_beside_the_box(qtbot: QtBot, operations: Operations) -> None:
    view = in_background(True, qtbot, operations)
    view.regex.setChecked(True)
    view.search.setText("([")
    view.start_search()
    assert not view.busy and view.error.text().startswith("Not a regular expression:")


def test_a_cancelled_regex_search_stops_between_chunks() -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        search_rows(TEXTS, "caf", regex=True, token=token)
    assert search_rows(TEXTS * 100, "東京", regex=True).tolist() == [
        i for i, text in enumerate(TEXTS * 100) if "東京" in text
    ]


def test_value_shades_are_those_of_the_plain_formula() -> None:
    rng = np.random.default_rng(5)
    for values in (
        rng.normal(size=10_000),
        np.r_[rng.random(500), np.nan, np.inf, -np.inf, 0.5],
        np.array([np.nan, np.nan]),
        np.full(4, 3.0),
        np.arange(1001) / 1000 * 7,
    ):
        finite = values[np.isfinite(values)]
        low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        plain = np.round(np.clip(np.nan_to_num((values - low) / ((high - low) or 1.0)), 0, 1) * 255)
        levels, table, got_low, got_high = map_colours.value_shades(values)
        assert levels.tolist() == plain.astype(np.intp).tolist() and (got_low, got_high) == (low, high)
        table[:] = 0  # the caller's copy: the cached table stays as it was
        assert map_colours.value_shades(values)[1].any()


def test_a_search_as_the_window_closes_starts_nothing(qtbot: QtBot) -> None:
    bridge = EngineBridge()
    view = TableView()
    qtbot.addWidget(view)
    view.use_operations(Operations(bridge))
    view.set_dataset(dataset(True))
    bridge.shutdown()  # the window closed its lanes; the typing pause ends after
    view.search.setText("café")
    view.start_search()
    assert not view.busy and view.matches is None
