"""Dataset ▸ Columns…: which column the model reads as text, and which one labels the rows.

Loupe guesses both when a file opens (the longest text column; a label named like ``label``).
When it guesses wrong the user picks here, and the window reads the file again with those
columns: rows whose embeddings are in the cache come back at once. GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from desktop.panels.table_view import has_labels
from engine.data.datasets import NO_LABEL, Dataset

if TYPE_CHECKING:
    from desktop.window.main_window import MainWindow

GUESSED = None  # the label entry that lets Loupe guess, as when the file was opened


class ColumnsDialog(QDialog):
    """Two lists: the text column and the label column, Loupe's guess or "(no label)" (the rows
    are read without labels: :data:`engine.data.datasets.NO_LABEL`). ``chosen()`` after ``accepted``.
    ``label_column`` is the label column to start on: the one the window asked for (NO_LABEL
    included) or the one Loupe guessed; None starts on the guess."""

    def __init__(self, dataset: Dataset, label_column: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Columns")
        others = [name for name in dataset.columns if name != label_column]
        self.text = QComboBox()
        for name in [dataset.text_column, *others]:
            self.text.addItem(name, name)
        self.label = QComboBox()
        self.label.addItem("(Loupe's guess)" if has_labels(dataset.labels) else "(none found)", GUESSED)
        self.label.addItem("(no label)", NO_LABEL)
        for name in ([label_column] if label_column else []) + others:
            self.label.addItem(name, name)
        self.label.setCurrentIndex(max(self.label.findData(label_column), 0))
        note = QLabel("The file is read again with these columns; embeddings in the cache are reused.")
        note.setWordWrap(True)
        ok_cancel = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        buttons = QDialogButtonBox(ok_cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c62828")
        layout = QFormLayout(self)
        layout.addRow("Text the model reads:", self.text)
        layout.addRow("Label of each row:", self.label)
        layout.addRow(note)
        layout.addRow(self.error)
        layout.addRow(buttons)

    def chosen(self) -> tuple[str, str | None]:
        """(text column, label column: None for Loupe's guess, NO_LABEL for none)."""
        label = self.label.currentData()
        return str(self.text.currentData()), None if label is None else str(label)

    def _accept(self) -> None:
        text, label = self.chosen()
        if text == label:
            self.error.setText("The text and the label must be different columns.")
            return
        self.accept()


def choose_columns(window: MainWindow) -> ColumnsDialog | None:
    """Open the dialog for the window's dataset file; on OK the file is opened again with the
    chosen columns. Window-modal and opened, not exec'd: jobs keep reporting meanwhile."""
    dataset, path = window.dataset, window.dataset_path
    if dataset is None or path is None:
        window.status_label.setText("Open a dataset file first: its columns can then be chosen.")
        return None
    # The label column asked for, else the one the reader guessed (Dataset.label_column, where
    # engine.data.datasets records it), so that the list shows it and starts on it.
    guessed = getattr(dataset, "label_column", None) if has_labels(dataset.labels) else None
    asked = window.dataset_columns[1]
    dialog = ColumnsDialog(dataset, guessed if asked is None else asked, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def reopen() -> None:
        text, label = dialog.chosen()
        window.open_path(path, text_column=text, label_column=label)

    dialog.accepted.connect(reopen)
    dialog.open()
    return dialog
