"""The dataset table: every row with its text, label and other columns, sortable and searchable.

The model reads the dataset lazily (a million Arrow-backed rows cost nothing until shown).
Search is a substring or a regular expression over the text; the window highlights the
matches on the map too. Selection is held by the window as row numbers, so the table and the
map always show the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QRegularExpression,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.datasets import Dataset

Index = QModelIndex | QPersistentModelIndex
_SHOWN_CHARACTERS = 300  # a cell shows the start of a long text; the tooltip shows more


class DatasetTableModel(QAbstractTableModel):
    """Columns: row, text, label, then the dataset's other columns.

    A column filter narrows the model itself to the kept dataset rows (``rows``, ascending),
    so the text search above it still runs in Qt's C++ proxy, fast at a million rows.
    """

    def __init__(self, dataset: Dataset) -> None:
        super().__init__()
        self.dataset = dataset
        self.rows: npt.NDArray[np.intp] | None = None  # None: every row
        self._columns: list[tuple[str, Sequence[Any]]] = [
            ("row", range(len(dataset))),
            ("text", dataset.texts),
            ("label", dataset.labels),
            *((name, values) for name, values in dataset.columns.items() if name not in ("text", "label")),
        ]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 (Qt's name)
        if parent.isValid():
            return 0
        return len(self.dataset) if self.rows is None else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 (Qt's name)
        return 0 if parent.isValid() else len(self._columns)

    def headerData(  # noqa: N802 (Qt's name)
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self._columns[section][0]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self._columns[index.column()][1][self.dataset_row(index.row())]
        if role == Qt.ItemDataRole.DisplayRole:
            text = str(value)
            return text if len(text) <= _SHOWN_CHARACTERS else text[:_SHOWN_CHARACTERS] + "…"
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 1:
            return str(value)[:2000]
        if role == Qt.ItemDataRole.UserRole:  # sorting: numbers as numbers
            return value if isinstance(value, int | float) else str(value)
        return None

    def set_rows(self, rows: npt.NDArray[np.intp] | None) -> None:
        """Show only dataset ``rows`` (ascending), or every row with None."""
        self.beginResetModel()
        self.rows = None if rows is None else np.asarray(rows, dtype=np.intp)
        self.endResetModel()

    def dataset_row(self, model_row: int) -> int:
        return model_row if self.rows is None else int(self.rows[model_row])

    def model_row(self, dataset_row: int) -> int:
        """The model row showing ``dataset_row``, or -1 when the filter hides it."""
        if self.rows is None:
            return dataset_row if 0 <= dataset_row < len(self.dataset) else -1
        position = int(np.searchsorted(self.rows, dataset_row))
        found = position < len(self.rows) and self.rows[position] == dataset_row
        return position if found else -1


class TableView(QWidget):
    """Search box plus table. Emits the selected dataset rows and the search's matching rows."""

    selection_changed = Signal(object)  # np.ndarray of dataset rows
    matches_changed = Signal(object)  # np.ndarray of dataset rows, or None when the search is empty

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search texts (Ctrl+F)…")
        self.search.setClearButtonEnabled(True)
        self.regex = QCheckBox("regex")
        self.count = QLabel("")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00020")
        self.table = QTableView()
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.proxy.setFilterKeyColumn(1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table.setModel(self.proxy)
        self.model: DatasetTableModel | None = None
        self._updating = False
        bar = QHBoxLayout()
        for widget in (self.search, self.regex, self.count, self.error):
            bar.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self.search.textChanged.connect(self._apply_search)
        self.regex.toggled.connect(self._apply_search)

    def set_dataset(self, dataset: Dataset) -> None:
        self.model = DatasetTableModel(dataset)
        self.proxy.setSourceModel(self.model)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.setColumnWidth(1, 480)
        self._apply_search()

    def select_rows(self, rows: npt.NDArray[np.intp] | Sequence[int]) -> None:
        """Select dataset ``rows`` (from the map) without echoing the change back."""
        if self.model is None:
            return
        selection = QItemSelection()
        for row in rows:
            index = self.proxy.mapFromSource(self.model.index(self.model.model_row(int(row)), 0))
            if index.isValid():
                selection.select(index, index)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self._updating = True
        try:
            self.table.selectionModel().select(selection, flags)
            if len(rows):
                first = self.proxy.mapFromSource(self.model.index(self.model.model_row(int(rows[0])), 0))
                if first.isValid():
                    self.table.scrollTo(first)
        finally:
            self._updating = False

    def selected_rows(self) -> npt.NDArray[np.intp]:
        if self.model is None:
            return np.zeros(0, dtype=np.intp)
        model = self.model
        selected = self.table.selectionModel().selectedRows()
        rows = {model.dataset_row(self.proxy.mapToSource(index).row()) for index in selected}
        return np.array(sorted(rows), dtype=np.intp)

    def set_visible_rows(self, rows: npt.NDArray[np.intp] | None) -> None:
        """A column filter: the table lists only ``rows`` (None: all); the search applies within them."""
        if self.model is None:
            return
        self.model.set_rows(rows)
        self._apply_search()

    def _on_selection(self, *_: object) -> None:
        if not self._updating:
            self.selection_changed.emit(self.selected_rows())

    def _apply_search(self) -> None:
        text = self.search.text()
        self.error.setText("")
        if self.regex.isChecked():
            try:
                re.compile(text)
            except re.error as exc:
                self.error.setText(f"Not a regular expression: {exc}.")
                return
            self.proxy.setFilterRegularExpression(
                QRegularExpression(text, QRegularExpression.PatternOption.CaseInsensitiveOption)
            )
        else:
            self.proxy.setFilterFixedString(text)
        shown = self.proxy.rowCount()
        total = self.model.rowCount() if self.model is not None else 0  # within the column filter
        self.count.setText(f"{shown:,} of {total:,} rows" if text else f"{total:,} rows")
        if not text or self.model is None:
            self.matches_changed.emit(None)
            return
        proxy, model = self.proxy, self.model
        matches = [model.dataset_row(proxy.mapToSource(proxy.index(i, 0)).row()) for i in range(shown)]
        self.matches_changed.emit(np.array(sorted(matches), dtype=np.intp))
