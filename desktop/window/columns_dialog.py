"""Dataset ▸ Columns…: which column the model reads as text, and which one labels the rows.

Loupe guesses both when a file opens (the longest text column; a label named like ``label``).
When it guesses wrong the user picks here, and the window reads the file again with those
columns: rows whose embeddings are in the cache come back at once. The dialog reads the
application model and calls back; it knows no window. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from desktop.model.document import AppModel
from desktop.panels.table_view import has_labels
from engine.data.datasets import NO_LABEL, Dataset
from engine.errors import LoupeError

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


Reopen = Callable[[Path, str, str | None], object]  # (file, text column, label column or None)


def open_columns_dialog(model: AppModel, reopen: Reopen, parent: QWidget | None = None) -> ColumnsDialog:
    """Open the dialog for the model's dataset file; on OK, ``reopen(path, text, label)`` opens the
    file again with the chosen columns. Window-modal and opened, not exec'd: jobs keep reporting
    meanwhile. :class:`LoupeError` (one sentence) when no dataset file is open."""
    dataset, source = model.dataset, model.source
    if dataset is None or source is None or source.path is None:
        raise LoupeError("Open a dataset file first: its columns can then be chosen.")
    path = source.path
    # The label column asked for, else the one the reader guessed (Dataset.label_column, where
    # engine.data.datasets records it), so that the list shows it and starts on it.
    guessed = dataset.label_column if has_labels(dataset.labels) else None
    asked = source.label_column
    dialog = ColumnsDialog(dataset, guessed if asked is None else asked, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def chosen() -> None:
        text, label = dialog.chosen()
        reopen(path, text, label)

    dialog.accepted.connect(chosen)
    dialog.open()
    return dialog
