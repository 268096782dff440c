"""The dataset table: every row with its text, label and other columns, sortable and searchable.

The model reads the dataset lazily (a million Arrow-backed rows cost nothing until shown).
Which rows it lists, and in which order, is one numpy array: the column filter, the search
and "selected only" intersect into it, and sorting reorders it. No per-row Python runs inside
Qt's sort/filter proxy, which took seconds at 200k rows.

Selection is held by the application model as row numbers (the map's lasso can pick 100k
rows): the table tints those rows, and mirrors small selections into Qt's own selection so
keyboard navigation works. Search is a substring or a regular expression over the text; its
matches go into the model (:meth:`TableView.bind`), where the map rings them too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor
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

from desktop.model.document import AppModel, RowFilter, Search
from engine.data.arrow import ArrowSequence
from engine.data.column_codes import as_numbers, rows_containing, text_order
from engine.data.datasets import Dataset
from engine.data.row_filter import is_numeric_column

Index = QModelIndex | QPersistentModelIndex
Rows = npt.NDArray[np.intp]
_SHOWN_CHARACTERS = 300  # a cell shows the start of a long text; the tooltip shows more
_QT_SELECTION_LIMIT = 2000  # larger groups are tinted, not put in Qt's (slow) selection model
_SEARCH_DELAY_MS = 200  # typing pauses this long before the search runs
_GROUP_TINT = QBrush(QColor(255, 150, 0, 70))  # readable on light and dark palettes


def has_labels(labels: Sequence[str]) -> bool:
    """Whether any row has a label: a dataset read without a label column has "" in every row.

    An Arrow column is asked in Arrow (a million labels in a few milliseconds)."""
    if isinstance(labels, ArrowSequence):
        import pyarrow as pa
        import pyarrow.compute as pc

        column = labels.arrow
        blank = pa.scalar("", pa.string())
        return len(column) > 0 and bool(pc.any(pc.not_equal(column, blank)).as_py())  # null: no label
    return any(labels)


class DatasetTableModel(QAbstractTableModel):
    """Columns: row, text, label (unless no row has one), then the dataset's other columns.

    ``order`` lists the dataset rows shown, in display order (None: every row, in order).
    """

    def __init__(self, dataset: Dataset) -> None:
        super().__init__()
        self.dataset = dataset
        self.order: Rows | None = None
        self._position: Rows | None = None  # dataset row -> display row (-1: not shown)
        self._group = np.zeros(len(dataset), dtype=bool)  # the window's selection, tinted
        self._columns: list[tuple[str, Sequence[Any]]] = [
            ("row", range(len(dataset))),
            ("text", dataset.texts),
            *((("label", dataset.labels),) if has_labels(dataset.labels) else ()),
            *((name, values) for name, values in dataset.columns.items() if name not in ("text", "label")),
        ]
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._orders: dict[int, Rows] = {}  # column -> every row in ascending order, once sorted

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 (Qt's name)
        if parent.isValid():
            return 0
        return len(self.dataset) if self.order is None else len(self.order)

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
        row = self.dataset_row(index.row())
        if role == Qt.ItemDataRole.BackgroundRole:
            return _GROUP_TINT if self._group[row] else None
        value = self._columns[index.column()][1][row]
        if role == Qt.ItemDataRole.DisplayRole:
            text = str(value)
            return text if len(text) <= _SHOWN_CHARACTERS else text[:_SHOWN_CHARACTERS] + "…"
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 1:
            return str(value)[:2000]
        return None

    def show_rows(self, rows: Rows | None) -> None:
        """List only dataset ``rows`` (None: all), in the current sort order."""
        self.beginResetModel()
        self.order = None if rows is None else np.asarray(rows, dtype=np.intp)
        if self._sort is not None:
            self.order = self._sorted(self._all_rows(), *self._sort)
        self._index_positions()
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Numbers as numbers, text as text, empty cells last; a stable sort, done in numpy."""
        self.layoutAboutToBeChanged.emit()
        self._sort = (column, order)
        self.order = self._sorted(self._all_rows(), column, order)
        self._index_positions()
        self.layoutChanged.emit()

    def set_group(self, rows: Rows) -> None:
        """Tint ``rows`` (the window's selection)."""
        self._group[:] = False
        self._group[rows] = True
        if self.rowCount():
            last = self.index(self.rowCount() - 1, self.columnCount() - 1)
            self.dataChanged.emit(self.index(0, 0), last, [Qt.ItemDataRole.BackgroundRole])

    def dataset_row(self, model_row: int) -> int:
        return model_row if self.order is None else int(self.order[model_row])

    def model_row(self, dataset_row: int) -> int:
        """The display row of ``dataset_row``, or -1 when it is not listed."""
        if not 0 <= dataset_row < len(self.dataset):
            return -1
        return dataset_row if self._position is None else int(self._position[dataset_row])

    def model_rows(self, dataset_rows: Rows) -> Rows:
        """The display rows of ``dataset_rows`` that are listed, ascending."""
        if self._position is None:
            return np.sort(dataset_rows)
        shown = self._position[dataset_rows]
        return np.sort(shown[shown >= 0])

    def _all_rows(self) -> Rows:
        return np.arange(len(self.dataset), dtype=np.intp) if self.order is None else self.order

    def _index_positions(self) -> None:
        if self.order is None:
            self._position = None
            return
        self._position = np.full(len(self.dataset), -1, dtype=np.intp)
        self._position[self.order] = np.arange(len(self.order), dtype=np.intp)

    def _sorted(self, rows: Rows, column: int, order: Qt.SortOrder) -> Rows:
        rows = np.sort(rows)  # a fixed starting order, so equal keys keep row order
        if column == 0:
            ranked = rows
        elif len(rows) == len(self.dataset):
            ranked = self._order(column)
        else:  # the whole column's order, less the rows not listed (O(n), no sort)
            whole = self._order(column)
            listed = np.zeros(len(self.dataset), dtype=bool)
            listed[rows] = True
            ranked = whole[listed[whole]]
        return ranked[::-1].copy() if order == Qt.SortOrder.DescendingOrder else ranked

    def _order(self, column: int) -> Rows:
        """Every dataset row in ascending order of ``column``, sorted once per column (stable).

        Vectorised (a Python key per row took 0.4 s at 200k rows, 2.5 s at 1M), and kept:
        a filter or search only drops rows from it.
        """
        if column not in self._orders:
            values = self._columns[column][1]
            if is_numeric_column(values):
                self._orders[column] = np.argsort(as_numbers(values), kind="stable")  # NaN sorts last
            else:
                self._orders[column] = text_order(values)
        return self._orders[column]


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
        self.only_selected = QCheckBox("selected only")
        self.only_selected.setToolTip("List only the selected rows (a lasso on the map, for example)")
        self.count = QLabel("")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00020")
        self.table = QTableView()
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)  # no empty band right of the columns
        self.model: DatasetTableModel | None = None
        self.matches: Rows | None = None
        self._filter: Rows | None = None
        self._group: Rows = np.zeros(0, dtype=np.intp)
        self._updating = False
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(_SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._apply_search)
        bar = QHBoxLayout()
        for widget in (self.search, self.regex, self.only_selected, self.count, self.error):
            bar.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self.search.textChanged.connect(lambda _: self._search_timer.start())
        self.regex.toggled.connect(self._apply_search)
        self.only_selected.toggled.connect(self._refresh_rows)

    def bind(self, model: AppModel) -> None:
        """Follow ``model``'s dataset, selection, filter and search; write the search here into it.
        (The rows chosen here are :attr:`selection_changed`: the window decides what a click does.)"""
        model.dataset_changed.connect(lambda opened: self.set_dataset(opened.dataset) if opened else None)
        model.selection_changed.connect(self.select_rows)
        model.filter_changed.connect(lambda row_filter: self.set_visible_rows(_rows_of(row_filter)))
        model.search_changed.connect(self._show_search)
        self.matches_changed.connect(lambda matches: model.set_search(Search(self.search.text(), matches)))

    def _show_search(self, search: Search) -> None:
        """The model's search (a session's, or this table's own coming back)."""
        if search.query == self.search.text() and _same(search.matches, self.matches):
            return
        self.search.blockSignals(True)
        self.search.setText(search.query)
        self.search.blockSignals(False)
        self.matches = search.matches
        self._refresh_rows()

    def set_dataset(self, dataset: Dataset) -> None:
        self.model = DatasetTableModel(dataset)
        self.table.setModel(self.model)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.setColumnWidth(1, 480)
        self._filter, self.matches, self._group = None, None, np.zeros(0, dtype=np.intp)
        self._apply_search()

    def flush_search(self) -> None:
        """Run a pending search now (tests, and before reading the matches)."""
        if self._search_timer.isActive():
            self._search_timer.stop()
            self._apply_search()

    def select_rows(self, rows: Rows | Sequence[int]) -> None:
        """The window's selection (from the map): tinted, scrolled to, no signal back."""
        if self.model is None:
            return
        # Each dataset row once, ascending, as np.unique gives them, but in O(rows): np.unique
        # took 0.1 s for a third of a million rows.
        chosen = np.asarray(rows, dtype=np.intp)
        listed = np.zeros(len(self.model.dataset), dtype=bool)
        listed[chosen[(chosen >= 0) & (chosen < len(listed))]] = True
        self._group = np.flatnonzero(listed)
        self.model.set_group(self._group)
        if self.only_selected.isChecked():
            self._refresh_rows()
        self._mirror_selection(rows)

    def selected_rows(self) -> Rows:
        """The selection, as dataset rows (ascending)."""
        return self._group.copy()

    def set_visible_rows(self, rows: Rows | None) -> None:
        """A column filter: the table lists only ``rows`` (None: all); the search applies within them."""
        self._filter = rows
        self._refresh_rows()

    # -- internals -----------------------------------------------------------------------

    def _mirror_selection(self, rows: Rows | Sequence[int]) -> None:
        """Put a small selection into Qt's selection model too (keyboard navigation, the
        highlight colour); a large one stays a tint, which costs nothing."""
        assert self.model is not None
        model = self.model
        display = model.model_rows(self._group)
        selection = QItemSelection()
        if len(display) <= _QT_SELECTION_LIMIT:
            for start, end in _runs(display.tolist()):
                selection.select(model.index(start, 0), model.index(end, model.columnCount() - 1))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self._updating = True
        try:
            self.table.selectionModel().select(selection, flags)
            first = model.model_row(int(rows[0])) if len(rows) else -1
            if first >= 0:
                self.table.scrollTo(model.index(first, 0))
        finally:
            self._updating = False

    def _on_selection(self, *_: object) -> None:
        if self._updating or self.model is None:
            return
        model = self.model
        chosen = {model.dataset_row(index.row()) for index in self.table.selectionModel().selectedRows()}
        self._group = np.array(sorted(chosen), dtype=np.intp)
        model.set_group(self._group)
        self.selection_changed.emit(self._group.copy())

    def _apply_search(self) -> None:
        text = self.search.text()
        self.error.setText("")
        if self.model is None:
            return
        texts = self.model.dataset.texts
        if not text:
            self.matches = None
        elif not self.regex.isChecked():
            self.matches = rows_containing(texts, text)  # in Arrow where it can: 40 -> 16 ms at 200k rows
        else:
            matcher = self._regex_matcher(text)
            if matcher is None:
                return
            self.matches = np.array([i for i, t in enumerate(texts) if matcher(t)], dtype=np.intp)
        self._refresh_rows()
        self.matches_changed.emit(None if self.matches is None else self.matches.copy())

    def _regex_matcher(self, text: str) -> Callable[[str], bool] | None:
        try:
            pattern = re.compile(text, re.IGNORECASE)
        except re.error as exc:
            self.error.setText(f"Not a regular expression: {exc}.")
            return None
        return lambda value: pattern.search(value) is not None

    def _refresh_rows(self) -> None:
        """List the rows that pass the filter, the search and "selected only", together."""
        if self.model is None:
            return
        kept: Rows | None = None
        parts = (self._filter, self.matches, self._group if self.only_selected.isChecked() else None)
        for part in parts:
            if part is not None:
                kept = part if kept is None else np.intersect1d(kept, part, assume_unique=True)
        self.model.show_rows(kept)
        self._mirror_selection(self._group)
        total = len(self.model.dataset) if self._filter is None else len(self._filter)
        shown = self.model.rowCount()
        narrowed = self.matches is not None or self.only_selected.isChecked()
        self.count.setText(f"{shown:,} of {total:,} rows" if narrowed else f"{total:,} rows")


def _rows_of(row_filter: RowFilter | None) -> Rows | None:
    return None if row_filter is None else row_filter.rows


def _same(a: Rows | None, b: Rows | None) -> bool:
    if a is None or b is None:
        return a is b
    return bool(np.array_equal(a, b))


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Consecutive display rows as (first, last) pairs: one selection range per run."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs
