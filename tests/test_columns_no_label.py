"""Dataset ▸ Columns… offers "(no label)": the file is read again without labels (the former
label column stays a column), and the map is then not coloured by a made-up label."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from desktop.window.main_window import MainWindow
from engine.data.datasets import NO_LABEL
from engine.maps.projection import ProjectionParams
from tests.test_colouring_without_labels import legend_entries, offered
from tests.test_desktop_columns import SECTIONS, _notes, _wait_for_map, choose_columns


def test_no_label_in_the_columns_dialog_reads_the_file_without_labels(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    path = _notes(tmp_path / "notes.csv")  # section is guessed as the label
    failures: list[str] = []
    window.job_failed.connect(failures.append)
    window.model.set_params(ProjectionParams(method="pca"))  # quick; a real map all the same
    window.open_path(path)
    _wait_for_map(qtbot, window, failures)
    assert window.model.dataset is not None and window.model.dataset.label_column == "section"
    assert window.map_controls.colouring.currentData() == "label"
    qtbot.waitUntil(lambda: sorted(legend_entries(window)) == sorted(SECTIONS))

    dialog = choose_columns(window)
    assert dialog is not None
    dialog.label.setCurrentIndex(dialog.label.findText("(no label)"))
    assert dialog.chosen() == ("body", NO_LABEL)
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert window.model.shown is None  # the file is read again: its map follows
    _wait_for_map(qtbot, window, failures)
    dataset = window.model.dataset
    assert dataset is not None and not dataset.has_labels and "section" in dataset.columns
    source = window.model.source
    assert source is not None and (source.text_column, source.label_column) == ("body", NO_LABEL)
    # Item 4: no "label" colouring, "none" chosen, and no legend entry for labels nobody wrote.
    assert "label" not in offered(window.map_controls) and "column:section" in offered(window.map_controls)
    assert window.map_controls.colouring.currentData() == "none"
    assert legend_entries(window) == []
    model = window.table_view.model
    assert model is not None
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers == ["row", "text", "title", "section"]
    shown_again = choose_columns(window)  # starts on what was chosen
    assert shown_again is not None and shown_again.label.currentText() == "(no label)"
    shown_again.reject()
