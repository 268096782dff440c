"""The dataset table: every row with its text, label and other columns, sortable and searchable.

The model (:mod:`desktop.panels.table_model`) reads the dataset lazily, and lists rows in an
order held as one numpy array: the column filter, the search and "selected only" intersect
into it, and sorting reorders it.

Selection is held by the application model as row numbers (the map's lasso can pick 100k
rows): the table tints those rows, and mirrors small selections into Qt's own selection so
keyboard navigation works. Search is a substring or a regular expression over the text; its
matches go into the model (:meth:`TableView.bind`), where the map rings them too.

A column's first sort and a search cost 60-170 ms at a million rows: with the operations
machinery bound they run on the interactive lane (:mod:`desktop.panels.table_work`), the
count says "Sorting…" or "Searching…" meanwhile, and the answer is applied in one turn of
~10 ms. A newer search supersedes a running one; an answer for a replaced dataset, an older
query or a column no longer asked for is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QTimer,
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

from desktop.model.document import AppModel, RowFilter, Search
from desktop.model.labels import has_labels
from desktop.operations.operation import Operation, Operations
from desktop.panels.table_model import DatasetTableModel
from desktop.panels.table_work import column_order, compile_search, search_rows
from engine.data.datasets import Dataset

__all__ = ["DatasetTableModel", "TableView", "has_labels"]  # has_labels: where callers found it

Rows = npt.NDArray[np.intp]
_QT_SELECTION_LIMIT = 2000  # larger groups are tinted, not put in Qt's (slow) selection model
_SEARCH_DELAY_MS = 200  # typing pauses this long before the search runs
_SORT_KEY, _SEARCH_KEY = "table-sort", "table-search"  # one of each runs; a newer one supersedes


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
        self._operations: Operations | None = None
        self._sorting_column = -1  # the column being sorted on the interactive lane
        self._searching = False  # a search runs on the interactive lane
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

    def bind(self, model: AppModel, operations: Operations | None = None) -> None:
        """Follow ``model``'s dataset, selection, filter and search; write the search here into it.
        (The rows chosen here are :attr:`selection_changed`: the window decides what a click does.)
        With ``operations``, first sorts and searches run off the GUI thread (:meth:`use_operations`)."""
        if operations is not None:
            self.use_operations(operations)
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

    def use_operations(self, operations: Operations) -> None:
        """Sort columns and search on the interactive lane of ``operations`` from now on."""
        self._operations = operations
        if self.model is not None:
            self.model.order_in_background = self._order_in_background

    @property
    def busy(self) -> bool:
        """Whether a sort or a search runs in the background (its answer not applied yet)."""
        return self._searching or (self.model is not None and self.model.sort_pending)

    def set_dataset(self, dataset: Dataset) -> None:
        if self._operations is not None:  # their answers are about the old rows
            self._operations.cancel(_SORT_KEY, _SEARCH_KEY)
        self._searching = False
        self.model = DatasetTableModel(dataset)
        if self._operations is not None:
            self.model.order_in_background = self._order_in_background
        self.table.setModel(self.model)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.setColumnWidth(1, 480)
        self._filter, self.matches, self._group = None, None, np.zeros(0, dtype=np.intp)
        self._apply_search()

    def start_search(self) -> None:
        """Start the search the box asks for now, without the typing pause (on the lane when bound)."""
        self._search_timer.stop()
        self._apply_search()

    def flush_search(self) -> None:
        """Run a pending search now, here (tests, and before reading the matches)."""
        if self._search_timer.isActive() or self._searching:
            self._search_timer.stop()
            self._apply_search(in_background=False)

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

    def _apply_search(self, *_: object, in_background: bool = True) -> None:
        """Search for the box's text; on the interactive lane when bound to operations
        (``in_background``), the matches applied when they come, if the query is still this one."""
        text, regex = self.search.text(), self.regex.isChecked()
        self.error.setText("")
        if self.model is None:
            return
        if self._operations is not None:
            self._operations.cancel(_SEARCH_KEY)  # a newer query supersedes it; its answer is dropped
        self._searching = False
        if text and regex:
            try:
                compile_search(text)
            except re.error as exc:
                self.error.setText(f"Not a regular expression: {exc}.")
                self._refresh_rows()
                return
        model, texts = self.model, self.model.dataset.texts
        if not text:
            self._take_matches(model, text, regex, None)
        elif self._operations is None or not in_background:
            self._take_matches(model, text, regex, search_rows(texts, text, regex=regex))
        else:
            search = Operation(
                "Search the table",
                lambda token, report: search_rows(texts, text, regex=regex, token=token),
                lane="interactive",
                key=_SEARCH_KEY,
                busy=False,
            )
            search.success(lambda rows: self._take_matches(model, text, regex, rows))
            try:
                search.failure(self._search_failed).run(self._operations)
            except RuntimeError:  # the lanes are shut: the window is closing as the typing pause ends
                return
            self._searching = True
            self._refresh_rows()  # the count says "Searching…"

    def _take_matches(self, model: DatasetTableModel, text: str, regex: bool, matches: Rows | None) -> None:
        """Show ``matches`` of a search for ``text``, unless the dataset or the query changed since."""
        if model is not self.model or text != self.search.text() or regex != self.regex.isChecked():
            return  # a late answer to an older question
        self._searching = False
        self.matches = matches
        self._refresh_rows()
        self.matches_changed.emit(None if self.matches is None else self.matches.copy())

    def _search_failed(self, message: str) -> bool:
        self._searching = False
        self.error.setText(message)
        self._refresh_rows()
        return True  # said beside the box: no dialog for a search

    def _order_in_background(self, column: int) -> None:
        """Sort ``column`` on the interactive lane; the model reorders its rows when it comes."""
        assert self.model is not None and self._operations is not None
        model, values = self.model, self.model.column_values(column)
        if self._sorting_column == column and self._operations.running(_SORT_KEY):
            self._refresh_count()  # the same column the other way round: its order is on its way
            return
        self._sorting_column = column

        def take(ascending: Rows) -> None:
            if model is self.model:  # not a replaced dataset's
                model.add_order(column, ascending)
                self._refresh_count()

        def failed(message: str) -> None:
            if model is self.model:
                model.drop_wanted_sort()
                self._refresh_count()

        Operation(
            "Sort the table",
            lambda token, report: column_order(values),
            lane="interactive",
            key=_SORT_KEY,  # another column asked for supersedes it
            busy=False,
        ).success(take).failure(failed).run(self._operations)
        self._refresh_count()

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
        self._refresh_count()

    def _refresh_count(self) -> None:
        if self.model is None:
            return
        total = len(self.model.dataset) if self._filter is None else len(self._filter)
        shown = self.model.rowCount()
        narrowed = self.matches is not None or self.only_selected.isChecked()
        text = f"{shown:,} of {total:,} rows" if narrowed else f"{total:,} rows"
        work = [w for w, on in (("Searching", self._searching), ("Sorting", self.model.sort_pending)) if on]
        self.count.setText(text + "".join(f" · {w}…" for w in work))


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
