"""The map's tools in the window, with the real model: column filter, size, density, the
mouse tools and their keys, a group selection's attention statistics, and the shortcut list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from desktop.window.main_window import MainWindow
from engine.maps.projection import ProjectionParams
from tests.conftest import exported, shown_method

WAIT_MS = 240_000
ROWS = 60


@pytest.fixture
def mapped_csv(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> MainWindow:
    """A 60-row CSV (text, label, score) mapped with PCA, which is quick."""
    return _open_rows(qtbot, window, tmp_path)


def _open_rows(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> MainWindow:
    lines = ["text,label,score"]
    for row in range(ROWS):
        topic = ("cats and their naps", "taxes and forms", "rivers and boats")[row % 3]
        lines.append(f'"Row {row} is about {topic}.",{("pets", "money", "water")[row % 3]},{row / 10}')
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    window.model.set_params(ProjectionParams(method="pca"))
    window.open_path(path)
    # With its scores: nothing else is left to finish (and rewrite the status line) meanwhile.
    qtbot.waitUntil(
        lambda: shown_method(window) == "pca" and window.model.scores is not None, timeout=WAIT_MS
    )
    return window


def test_a_column_filter_narrows_the_map_and_the_table(qtbot: QtBot, mapped_csv: MainWindow) -> None:
    win = mapped_csv
    assert win.filter_bar.set_filter("score", "2..3")
    kept = np.arange(20, 31)
    assert win.model.filter is not None and (win.model.filter.column, win.model.filter.condition) == (
        "score",
        "2..3",
    )
    assert win.map_view.visible_rows.tolist() == kept.tolist()
    assert win.table_view.model is not None and win.table_view.model.rowCount() == len(kept)
    assert win.status_label.text() == "Filter score: 2..3: 11 of 60 rows shown."
    assert win.filter_bar.set_filter("label", "!= money")
    assert len(win.map_view.visible_rows) == 40
    win.filter_bar.clear()
    assert len(win.map_view.visible_rows) == ROWS and win.model.filter is None


def test_the_tool_keys_choose_box_lasso_and_pan(qtbot: QtBot, mapped_csv: MainWindow) -> None:
    win = mapped_csv
    win.activateWindow()
    win.map_view.setFocus()
    for key, tool in ((Qt.Key.Key_L, "lasso"), (Qt.Key.Key_B, "box"), (Qt.Key.Key_P, "pan")):
        qtbot.keyClick(win.map_view, key)
        assert win.map_controls.tool == tool
        assert win.map_view.tool == tool
    win.table_view.search.setFocus()
    qtbot.keyClick(win.table_view.search, Qt.Key.Key_L)  # typing in a field is typing, not a tool
    assert win.map_controls.tool == "pan" and win.table_view.search.text() == "l"


def test_a_selected_group_gets_its_attention_statistics(qtbot: QtBot, mapped_csv: MainWindow) -> None:
    win = mapped_csv
    group = np.arange(0, ROWS, 3)  # the "pets" rows
    win.map_view.set_selection(group)
    win.map_view.rows_selected.emit(group)  # what a lasso or box emits
    assert win.table_view.selected_rows().tolist() == group.tolist()
    assert win.attention_tabs.currentWidget() is win.group_view
    qtbot.waitUntil(lambda: win.group_view.shown_values().size > 0, timeout=WAIT_MS)
    assert win.group_view.shown_values().shape == (6, 12)  # MiniLM: 6 layers x 12 heads
    assert "20 rows ready" in win.status_label.text()
    win.clear_selection()
    win.start_group_statistics()  # Ctrl+G with nothing selected: says what to do
    assert win.status_label.text().startswith("Select a group of rows first")


def test_every_shortcut_is_listed_and_none_is_taken_twice(qtbot: QtBot, window: MainWindow) -> None:
    shortcuts = window.shortcuts()
    keys = [key for key, _ in shortcuts]
    assert len(keys) == len(set(keys)), sorted(keys)
    listed = dict(shortcuts)
    expected = ("Ctrl+O", "Ctrl+S", "Ctrl+E", "Ctrl+Shift+E", "Ctrl+F", "Ctrl+G", "Ctrl+J", "Ctrl+L")
    for key in (*expected, "Ctrl+,", "B", "L", "P", "D", "F1", "Esc"):
        assert key in listed, key
    window.show_shortcuts()
    box = window.findChild(QMessageBox)
    assert box is not None and "Attention statistics of the selection" in box.text()
    box.close()


def test_export_draws_the_kept_rows_and_marks_them_in_the_data(
    qtbot: QtBot, mapped_csv: MainWindow, tmp_path: Path
) -> None:
    import json

    import pyarrow.parquet as pq

    win = mapped_csv
    everything, _ = exported(qtbot, win, "map", tmp_path / "all.svg")
    win.filter_bar.set_filter("label", "water")
    win.select_rows([2, 5])
    figure, sidecar = exported(qtbot, win, "map", tmp_path / "map.svg")
    marks = [path.read_text(encoding="utf-8").count("<use ") for path in (everything, figure)]
    assert marks[0] - marks[1] >= ROWS - ROWS // 3  # one mark per point: the filtered-out ones are gone
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert record["filter"] == "label: water" and record["selection"] == [2, 5]
    data, _ = exported(qtbot, win, "data", tmp_path / "map.parquet")
    table = pq.read_table(data).to_pydict()
    assert sum(table["kept"]) == ROWS // 3 and table["kept"][2] and not table["kept"][0]
    assert [row for row, chosen in enumerate(table["selected"]) if chosen] == [2, 5]


def test_a_colouring_chosen_before_the_map_is_drawn_when_it_lands(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    from dataclasses import replace

    window.model.set_view(replace(window.model.view, colouring="faithfulness"))
    _open_rows(qtbot, window, tmp_path)
    assert window.map_controls.colouring.currentData() == "faithfulness"
    qtbot.waitUntil(lambda: window.model.faithfulness is not None, timeout=WAIT_MS)
    shown = window.model.shown
    assert shown is not None and window.model.faithfulness.map_id == shown.map.map_id  # type: ignore[union-attr]
    window.map_view.draw_pending()
    [item] = window.map_view._items  # one item, a colour per point
    assert len({brush.color().name() for brush in item.data["brush"]}) > 3
