"""Choosing the text and label columns in the window (issue 14, item 17): Dataset ▸ Columns…
reads the file again with them, and ``open_path`` takes them as ``loupe open`` passes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from desktop.window.columns_dialog import ColumnsDialog
from desktop.window.main_window import MainWindow
from engine.maps.projection import ProjectionParams

WAIT_MS = 240_000
SECTIONS = ("Küche", "Путешествия", "音楽")


def _notes(path: Path) -> Path:
    """Rows whose label column is named ``section`` (no known label name) and a short ``title``."""
    lines = ["title,body,section"]
    for row in range(24):
        section = SECTIONS[row % 3]
        body = f"Ein längerer Text Nummer {row} über {section}, mit „Zitaten“."
        lines.append(f'"Note {row}","{body}",{section}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _shown_method(window: MainWindow) -> str | None:
    """The method of the real map on show (None: none yet, or only the PCA preview)."""
    shown = window.model.shown
    return None if shown is None or shown.preview else shown.map.params.method


def _wait_for_map(qtbot: QtBot, window: MainWindow, failures: list[str]) -> None:
    qtbot.waitUntil(lambda: bool(failures) or _shown_method(window) == "pca", timeout=WAIT_MS)
    assert not failures, failures


def choose_columns(window: MainWindow) -> ColumnsDialog | None:
    """Dataset ▸ Columns… as the menu runs it; the dialog it opened (None: it said why instead)."""
    window.choose_columns()
    shown = [dialog for dialog in window.findChildren(ColumnsDialog) if dialog.isVisible()]
    return shown[-1] if shown else None


def test_the_window_reads_the_file_again_with_the_chosen_columns(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    path = _notes(tmp_path / "notes.csv")
    failures: list[str] = []
    window.job_failed.connect(failures.append)
    window.model.set_params(ProjectionParams(method="pca"))  # quick; a real map all the same
    window.open_path(path, text_column="title")  # as `loupe open --text-column title` passes it
    _wait_for_map(qtbot, window, failures)
    assert window.model.dataset is not None and window.model.dataset.texts[3] == "Note 3"

    # Dataset ▸ Columns…: the body as text, the section as label.
    dialog = choose_columns(window)
    assert dialog is not None
    offered = [dialog.text.itemData(i) for i in range(dialog.text.count())]
    assert offered[0] == "title" and "body" in offered  # the current text column first
    dialog.text.setCurrentIndex(dialog.text.findData("body"))
    dialog.label.setCurrentIndex(dialog.label.findData("section"))
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert window.model.shown is None  # the file is read again: its map follows
    _wait_for_map(qtbot, window, failures)
    dataset = window.model.dataset
    assert dataset is not None and dataset.text_column == "body"
    assert dataset.texts[0].startswith("Ein längerer Text") and tuple(dataset.labels[:3]) == SECTIONS
    shown_again = choose_columns(window)
    assert shown_again is not None
    assert (shown_again.text.currentData(), shown_again.label.currentData()) == ("body", "section")
    shown_again.reject()
    qtbot.waitUntil(lambda: not shown_again.isVisible())
    legend = window.map_view.legend
    qtbot.waitUntil(lambda: sorted(label.text for _, label in legend.items) == sorted(SECTIONS))
    model = window.table_view.model
    assert model is not None
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers == ["row", "text", "label", "title"]

    # The same column twice is refused in the dialog, in one sentence.
    again = choose_columns(window)
    assert again is not None
    again.text.setCurrentIndex(again.text.findData("title"))
    again.label.setCurrentIndex(again.label.findData("title"))
    again.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert again.isVisible() and again.error.text() == "The text and the label must be different columns."
    again.reject()


def test_columns_need_a_dataset_file(window: MainWindow) -> None:
    assert choose_columns(window) is None
    assert window.status_label.text() == "Open a dataset file first: its columns can then be chosen."


def test_the_dialog_reads_the_model_and_calls_back_without_a_window(qtbot: QtBot, tmp_path: Path) -> None:
    from desktop.model.document import AppModel, Source
    from desktop.window.columns_dialog import open_columns_dialog
    from engine.api.types import OpenedDataset
    from engine.data.datasets import load_dataset
    from engine.errors import LoupeError

    model = AppModel()
    with pytest.raises(LoupeError, match=r"Open a dataset file first: its columns can then be chosen\."):
        open_columns_dialog(model, lambda *chosen: None)
    path = _notes(tmp_path / "notes.csv")
    model.open(Source(path.name, path, text_column="title"))
    model.set_dataset(OpenedDataset("d", load_dataset(path, text_column="title")))
    chosen: list[tuple[Path, str, str | None]] = []
    dialog = open_columns_dialog(model, lambda *args: chosen.append(args))
    qtbot.addWidget(dialog)
    assert dialog.text.currentData() == "title" and dialog.label.currentData() == "section"  # the guess
    dialog.text.setCurrentIndex(dialog.text.findData("body"))
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert chosen == [(path, "body", "section")]
