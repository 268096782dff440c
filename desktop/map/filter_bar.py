"""The filter bar: keep only the rows whose column meets a condition, in the map and the table.

The condition is typed the way :mod:`engine.data.row_filter` reads it (``> 3``, ``2..10``,
``positive, neutral``, ``!= negative``); the most common values of a text column are offered
as completions. A bad condition is one sentence under the bar, never an exception.

The filter lives in the application model: :meth:`FilterBar.bind` makes the bar write each
filter there as a :class:`~desktop.model.document.RowFilter` (column, condition, rows: nothing to
parse back) and show the model's filter, whoever set it (a session).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import QComboBox, QCompleter, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from desktop.model.document import AppModel, RowFilter
from desktop.panels.table_view import has_labels
from engine.data.column_codes import text_codes
from engine.data.datasets import Dataset
from engine.data.row_filter import is_numeric_column, matching_rows, parse_condition
from engine.errors import BadInputError

_COMPLETIONS = 200  # the most common values of a text column offered while typing


class FilterBar(QWidget):
    """Emits :attr:`filter_changed` with the kept rows (ascending), or None for no filter."""

    filter_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.column = QComboBox()
        self.column.setToolTip("The column to filter on")
        self.condition = QLineEdit()
        self.condition.setClearButtonEnabled(True)
        self.condition.setPlaceholderText("filter: > 3, 2..10, positive, != negative …")
        self.condition.setToolTip(
            "Numbers: > 3, >= 0.5, < 10, = 4, != 4 or a range 2..10.\n"
            "Text: a value, several separated by commas, or != value(s). Enter applies."
        )
        self._completions = QStringListModel(self)
        completer = QCompleter(self._completions, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.condition.setCompleter(completer)
        self.clear_button = QPushButton("Clear filter")
        self.clear_button.setEnabled(False)
        self.count = QLabel("")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00020")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.column, self.condition, self.clear_button, self.count):
            layout.addWidget(widget)
        layout.addWidget(self.error, 1)
        self._columns: dict[str, Sequence[object]] = {}
        self._model: AppModel | None = None
        self.rows: npt.NDArray[np.intp] | None = None
        self.condition.returnPressed.connect(self.apply)
        self.condition.textChanged.connect(self._on_text_changed)
        self.column.currentIndexChanged.connect(self._on_column_changed)
        self.clear_button.clicked.connect(self.clear)

    def bind(self, model: AppModel) -> None:
        """Follow ``model``'s dataset and filter, and write the filters typed here into it."""
        self._model = model
        model.dataset_changed.connect(lambda opened: self.set_dataset(opened.dataset) if opened else None)
        model.filter_changed.connect(self._show_filter)

    def set_dataset(self, dataset: Dataset) -> None:
        """Offer the label (if the rows have one) and every other column; drops any filter of
        the previous dataset."""
        self._columns = {"label": dataset.labels} if has_labels(dataset.labels) else {}
        self._columns.update({name: values for name, values in dataset.columns.items() if name != "text"})
        self.column.blockSignals(True)
        self.column.clear()
        self.column.addItems(list(self._columns))
        self.column.blockSignals(False)
        self.condition.blockSignals(True)
        self.condition.clear()
        self.condition.blockSignals(False)
        self._on_column_changed()
        self._set_rows(None)

    def set_filter(self, column: str, condition: str) -> bool:
        """Apply ``condition`` to ``column`` as if typed (sessions); False when it did not apply."""
        index = self.column.findText(column)
        if index < 0:
            self.error.setText(f"There is no column {column!r} in this dataset.")
            return False
        self.column.setCurrentIndex(index)
        self.condition.setText(condition)
        return self.apply()

    @property
    def description(self) -> str | None:
        """``column: condition`` while a filter is on, else None."""
        if self.rows is None:
            return None
        return f"{self.column.currentText()}: {self.condition.text().strip()}"

    def apply(self) -> bool:
        """Filter by the typed condition (Enter); an empty condition clears the filter."""
        name = self.column.currentText()
        if not self.condition.text().strip():
            self.clear()
            return True
        values = self._columns.get(name)
        if values is None:
            return False
        try:
            condition = parse_condition(self.condition.text(), numeric=is_numeric_column(values))
        except BadInputError as exc:
            self.error.setText(str(exc))
            return False
        self.error.setText("")
        self._set_rows(matching_rows(values, condition))
        return True

    def clear(self) -> None:
        self.condition.blockSignals(True)
        self.condition.clear()
        self.condition.blockSignals(False)
        self.error.setText("")
        self._set_rows(None)

    def _set_rows(self, rows: npt.NDArray[np.intp] | None) -> None:
        self._show_rows(rows)
        if self._model is not None:
            condition = self.condition.text().strip()
            made = None if rows is None else RowFilter(self.column.currentText(), condition, rows)
            self._model.set_filter(made)
        self.filter_changed.emit(rows)

    def _show_rows(self, rows: npt.NDArray[np.intp] | None) -> None:
        self.rows = rows
        self.clear_button.setEnabled(rows is not None)
        total = len(next(iter(self._columns.values()), ()))
        self.count.setText("" if rows is None else f"{len(rows):,} of {total:,} rows kept")

    def _show_filter(self, row_filter: RowFilter | None) -> None:
        """The model's filter (a session's, or this bar's own coming back): shown, not applied again."""
        if row_filter is not None:
            for widget in (self.column, self.condition):
                widget.blockSignals(True)
            self.column.setCurrentIndex(max(self.column.findText(row_filter.column), 0))
            self.condition.setText(row_filter.condition)
            for widget in (self.column, self.condition):
                widget.blockSignals(False)
            self._on_column_changed()
        elif self.rows is not None:
            self.condition.blockSignals(True)
            self.condition.clear()
            self.condition.blockSignals(False)
        self._show_rows(None if row_filter is None else row_filter.rows)

    def _on_text_changed(self, text: str) -> None:
        if not text.strip() and self.rows is not None:
            self.clear()  # the line edit's clear button removes the filter

    def _on_column_changed(self) -> None:
        values = self._columns.get(self.column.currentText(), ())
        if is_numeric_column(values):
            self._completions.setStringList([])
            self.condition.setPlaceholderText("filter: > 3, <= 0.5, = 4, 2..10 …")
            return
        common = most_common(values, _COMPLETIONS)
        self._completions.setStringList(common)
        self.condition.setPlaceholderText("filter: " + ", ".join(common[:3]) + " …")


def most_common(values: Sequence[object], count: int) -> list[str]:
    """The ``count`` most common values as text, ties in order of first appearance (as
    :meth:`collections.Counter.most_common` orders them), counted without a loop per row."""
    texts, codes = text_codes(values)
    counts = np.bincount(codes, minlength=len(texts))
    return [texts[i] for i in np.argsort(-counts, kind="stable")[:count]]
