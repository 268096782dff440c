"""The dataset table: lazy model, numeric sorting, substring/regex search, shared selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop.map.filter_bar import FilterBar
from desktop.panels.table_view import TableView
from engine.data.datasets import Dataset

TEXTS = ("Cats sleep all day.", "Taxes are due in April.", "A cat chased the mouse.", "Tax forms, again!")


def dataset() -> Dataset:
    return Dataset(
        name="t",
        texts=TEXTS,
        labels=("pets", "money", "pets", "money"),
        columns={"score": (3.5, 10.0, -1.0, 2.0)},
    )


def test_columns_and_numeric_sorting(qtbot: QtBot) -> None:
    view = TableView()
    qtbot.addWidget(view)
    view.set_dataset(dataset())
    model = view.model
    assert model is not None
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers == ["row", "text", "label", "score"]
    view.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    rows = [model.index(i, 0).data() for i in range(model.rowCount())]
    assert rows == ["2", "3", "0", "1"]  # -1.0 < 2.0 < 3.5 < 10.0 as numbers, not as strings


def test_search_by_substring_and_regex_reports_matching_rows(qtbot: QtBot) -> None:
    view = TableView()
    qtbot.addWidget(view)
    view.set_dataset(dataset())
    seen: list[object] = []
    view.matches_changed.connect(seen.append)
    view.search.setText("cat")
    view.flush_search()
    assert list(seen[-1]) == [0, 2] and view.count.text() == "2 of 4 rows"  # type: ignore[call-overload]
    view.regex.setChecked(True)
    view.search.setText(r"^tax(es)? ")
    view.flush_search()
    assert list(seen[-1]) == [1, 3]  # type: ignore[call-overload]
    view.search.setText("([")
    view.flush_search()
    assert view.error.text().startswith("Not a regular expression:")
    view.search.setText("")
    view.flush_search()
    assert seen[-1] is None and view.count.text() == "4 rows"


def test_selection_goes_both_ways_without_echo(qtbot: QtBot) -> None:
    view = TableView()
    qtbot.addWidget(view)
    view.set_dataset(dataset())
    emitted: list[object] = []
    view.selection_changed.connect(emitted.append)
    view.select_rows([1, 3])  # from the map: no signal back
    assert list(view.selected_rows()) == [1, 3] and not emitted
    view.table.selectRow(0)  # a user's click: the map hears about it
    assert list(emitted[-1]) == [0]  # type: ignore[call-overload]


def test_a_large_arrow_dataset_opens_at_once(qtbot: QtBot, tmp_path: object) -> None:
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.data.datasets import load_dataset

    path = Path(str(tmp_path)) / "big.parquet"
    rows = 200_000
    pq.write_table(pa.table({"text": [f"row number {i} of the table" for i in range(rows)]}), path)
    big = load_dataset(path)
    view = TableView()
    qtbot.addWidget(view)
    view.set_dataset(big)
    view.resize(800, 400)
    view.show()
    qtbot.wait(10)
    assert view.model.rowCount() == rows
    assert view.model.index(rows - 1, 1).data() == f"row number {rows - 1} of the table"
    assert np.array_equal(view.selected_rows(), np.zeros(0, np.intp))


def test_descending_sort_and_a_filtered_search_keep_dataset_rows(qtbot: QtBot) -> None:
    view = TableView()
    qtbot.addWidget(view)
    view.set_dataset(dataset())
    assert view.model is not None
    view.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    assert [view.model.index(i, 0).data() for i in range(4)] == ["1", "0", "3", "2"]
    view.set_visible_rows(np.array([0, 1, 2]))
    view.search.setText("ta")
    view.flush_search()
    assert [view.model.index(i, 0).data() for i in range(view.model.rowCount())] == ["1"]
    assert view.count.text() == "1 of 3 rows"


def test_a_large_group_from_the_map_is_tinted_and_listable(qtbot: QtBot) -> None:
    """A lasso of thousands of rows: tinted through the model (instant), 'selected only' lists it."""
    rows = 50_000
    big = Dataset(name="big", texts=[f"text {i}" for i in range(rows)], labels=["x"] * rows)
    view = TableView()
    qtbot.addWidget(view)
    view.set_dataset(big)
    assert view.model is not None
    group = np.arange(1, rows, 3)
    view.select_rows(group)
    assert np.array_equal(view.selected_rows(), group)
    assert view.model.index(1, 1).data(Qt.ItemDataRole.BackgroundRole) is not None
    assert view.model.index(0, 1).data(Qt.ItemDataRole.BackgroundRole) is None
    assert not view.table.selectionModel().selectedRows()  # too many for Qt's selection model
    view.only_selected.setChecked(True)
    assert view.model.rowCount() == len(group)
    assert view.model.index(0, 0).data() == "1"
    view.select_rows([4, 7])  # small: Qt's selection too, as one range of display rows
    assert [i.row() for i in view.table.selectionModel().selectedRows()] == [0, 1]
    view.only_selected.setChecked(False)
    assert view.model.rowCount() == rows


def _python_order(values: list[object], rows: list[int], numeric: bool) -> list[int]:
    """How a sort by a Python key per row orders ``rows``: stable, NaN and empty numbers last."""
    if numeric:
        keys = np.array([np.nan if values[r] is None else values[r] for r in rows], dtype=np.float64)
        return [rows[i] for i in np.argsort(keys, kind="stable")]
    return sorted(rows, key=lambda r: str(values[r]))


def test_sorting_a_loaded_dataset_orders_rows_as_a_python_key_would(qtbot: QtBot, tmp_path: object) -> None:
    """Loaded columns are Arrow-backed and sorted in Arrow and numpy: the order (ties, empty
    cells, accents, descending, within a filter) is the one a Python key per row gives."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.data.datasets import load_dataset

    rng = np.random.default_rng(3)
    rows = 3_000
    words = ["b", "a", "é", "B", "a b", "None", "Z", "😀", "\uffff"]
    table = {
        "text": [f"{words[i % len(words)]} {rng.integers(0, 50)}" for i in range(rows)],
        "label": [words[i] for i in rng.integers(0, len(words), rows)],
        "note": [None if i % 7 == 0 else words[i % len(words)] for i in range(rows)],
        "score": [None if i % 11 == 0 else float(rng.integers(0, 20)) for i in range(rows)],
        "count": pa.array(
            [None if i % 5 == 0 else int(rng.integers(-3, 3)) for i in range(rows)], pa.int64()
        ),
        "flag": [None if i % 9 == 0 else bool(i % 2) for i in range(rows)],
    }
    path = Path(str(tmp_path)) / "sortable.parquet"
    pq.write_table(pa.table(table), path, row_group_size=1_000)  # several chunks
    view = TableView()
    qtbot.addWidget(view)
    view.set_dataset(load_dataset(path))
    model = view.model
    assert model is not None
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers == ["row", "text", "label", "note", "score", "count", "flag"]
    kept = sorted(rng.choice(rows, rows // 3, replace=False).tolist())
    for visible in (None, kept):
        view.set_visible_rows(None if visible is None else np.array(visible))
        listed = list(range(rows)) if visible is None else visible
        for column, name in enumerate(headers[1:], start=1):
            values = table[name].to_pylist() if isinstance(table[name], pa.Array) else table[name]
            expected = _python_order(values, listed, numeric=name in ("score", "count"))
            view.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
            assert model.order is not None and model.order.tolist() == expected, (name, visible is None)
            view.table.sortByColumn(column, Qt.SortOrder.DescendingOrder)
            assert model.order.tolist() == expected[::-1], (name, "descending")


def test_a_selection_is_each_listed_row_once_in_order(qtbot: QtBot) -> None:
    view = TableView()
    qtbot.addWidget(view)
    view.set_dataset(dataset())
    view.select_rows([3, -1, 1, 3, 99, 1])  # unsorted, repeated and beyond the dataset
    assert view.selected_rows().tolist() == [1, 3]
    view.select_rows(np.array([2]))
    assert view.selected_rows().tolist() == [2]


def test_a_dataset_without_labels_shows_no_made_up_label_column(qtbot: QtBot, tmp_path: Path) -> None:
    from engine.data.datasets import load_dataset

    path = tmp_path / "notes.csv"
    rows = ["body,section,n", "Été à Paris,travel,1", "Зима в Москве,travel,2", "東京の春,travel,3"]
    path.write_text("\n".join(rows) + "\n", "utf-8")
    view = TableView()
    qtbot.addWidget(view)
    for unlabelled in (load_dataset(path), Dataset(name="t", texts=TEXTS, labels=("",) * 4)):
        assert set(unlabelled.labels) == {""}
        view.set_dataset(unlabelled)
        model = view.model
        assert model is not None
        headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
        assert "label" not in headers and headers[:2] == ["row", "text"]
        bar = FilterBar()
        qtbot.addWidget(bar)
        bar.set_dataset(unlabelled)
        assert "label" not in [bar.column.itemText(i) for i in range(bar.column.count())]
    view.set_dataset(load_dataset(path, label_column="section"))
    model = view.model
    assert model is not None
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())] == [
        "row",
        "text",
        "label",
        "n",
    ]
    assert model.index(1, 2).data() == "travel"
