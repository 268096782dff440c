"""The "Log" dock: the engine's log records in a table, filtered by level, text and job.

Records come from :func:`engine.logs.records.add_listener`, whose callback runs on whatever thread
logged. That callback only emits a Qt signal; the queued connection carries the
:class:`~engine.logs.records.LogEntry` to the GUI thread, where it waits in a short list and joins
the table in one batch every ``BATCH_MS``, so a log storm costs one model update per tick
rather than one per record. Everything else here runs on the GUI thread.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QCloseEvent, QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.logs.records import LogEntry, add_listener, recent_entries

MAX_ROWS = 10_000  # the oldest rows go first; the engine's ring buffer keeps the history
HISTORY_ROWS = 2_000
BATCH_MS = 100
SEARCH_DEBOUNCE_MS = 150
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
COLUMNS = ("Time", "Level", "Logger", "Message")
_LEVEL_COLOURS = {"WARNING": QColor(160, 100, 0), "ERROR": QColor(190, 0, 0), "CRITICAL": QColor(190, 0, 0)}

AnyIndex = QModelIndex | QPersistentModelIndex


def level_number(level: str) -> int:
    """``"WARNING"`` → 30; a level name logging does not know counts as INFO."""
    number = logging.getLevelName(level)
    return number if isinstance(number, int) else logging.INFO


class LogTableModel(QAbstractTableModel):
    """The newest ``max_rows`` entries, oldest first; :data:`ENTRY_ROLE` gives the entry itself."""

    ENTRY_ROLE = Qt.ItemDataRole.UserRole

    def __init__(self, max_rows: int = MAX_ROWS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.max_rows = max_rows
        self._entries: list[LogEntry] = []

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: N802, B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> object:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: AnyIndex, role: int = 0) -> object:
        if not index.isValid():
            return None
        entry = self._entries[index.row()]
        column = index.column()
        if role == self.ENTRY_ROLE:
            return entry
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                millis = int(entry.time * 1000) % 1000
                return f"{time.strftime('%H:%M:%S', time.localtime(entry.time))}.{millis:03d}"
            text = (entry.level, entry.logger, entry.message)[column - 1]
            return text + "  ⚠ traceback" if column == 3 and entry.exc_text else text
        if role == Qt.ItemDataRole.ToolTipRole and column == 3:
            fields = "\n".join(f"{key}: {value}" for key, value in sorted(entry.fields.items()))
            return f"{entry.message}\n\n{fields}" if fields else entry.message
        if role == Qt.ItemDataRole.ForegroundRole and entry.level in _LEVEL_COLOURS:
            return QBrush(_LEVEL_COLOURS[entry.level])
        return None

    def entry(self, row: int) -> LogEntry:
        return self._entries[row]

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Add entries at the end, then drop the oldest beyond ``max_rows``."""
        entries = entries[-self.max_rows :]
        if not entries:
            return
        excess = len(self._entries) + len(entries) - self.max_rows
        if excess > 0:
            self.beginRemoveRows(QModelIndex(), 0, excess - 1)
            del self._entries[:excess]
            self.endRemoveRows()
        first = len(self._entries)
        self.beginInsertRows(QModelIndex(), first, first + len(entries) - 1)
        self._entries.extend(entries)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._entries.clear()
        self.endResetModel()


class LogFilterProxy(QSortFilterProxyModel):
    """Keeps rows at or above a level, containing a text (any case) and, if set, from one job."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.min_level = logging.INFO
        self.search = ""
        self.job_id: int | None = None

    def set_filter(self, *, min_level: int | None = None, search: str | None = None) -> None:
        self.beginFilterChange()
        if min_level is not None:
            self.min_level = min_level
        if search is not None:
            self.search = search.casefold()
        self.endFilterChange()

    def set_job(self, job_id: int | None) -> None:
        self.beginFilterChange()
        self.job_id = job_id
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:  # noqa: N802
        model = self.sourceModel()
        assert isinstance(model, LogTableModel)
        entry = model.entry(source_row)
        if level_number(entry.level) < self.min_level:
            return False
        if self.job_id is not None and entry.fields.get("job_id") != self.job_id:
            return False
        return not self.search or self.search in f"{entry.logger}\n{entry.message}".casefold()


class LogView(QDockWidget):
    """The "Log" dock. Subscribes to the engine's log on construction and again when shown
    after a close; unsubscribes on close and on destruction, so no callback reaches a
    deleted view. All methods are for the GUI thread.
    """

    # Emitted on the logging thread, delivered (queued) on the GUI thread: the one thread hop.
    _entry_arrived = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, max_rows: int = MAX_ROWS) -> None:
        super().__init__("Log", parent)
        self.setObjectName("log_dock")
        self.model = LogTableModel(max_rows, self)
        self.proxy = LogFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._pending: list[LogEntry] = []
        self._history_ids: set[int] = set()
        self._unsubscribe: Callable[[], None] | None = None

        self.level_box = QComboBox()
        self.level_box.addItems(LEVELS)
        self.level_box.setCurrentText("INFO")
        self.level_box.currentTextChanged.connect(
            lambda name: self.proxy.set_filter(min_level=level_number(name))
        )
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search the log…")
        self.search_box.setClearButtonEnabled(True)
        # Refiltering 10,000 rows per keystroke stutters; wait until typing pauses.
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(lambda: self.proxy.set_filter(search=self.search_box.text()))
        self.search_box.textChanged.connect(self._search_timer.start)
        self.job_chip = QToolButton()
        self.job_chip.setToolTip("Show every job's lines")
        self.job_chip.clicked.connect(lambda: self.show_job(None))
        self.job_chip.hide()

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self.details: QDialog | None = None

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Level ≥"))
        bar.addWidget(self.level_box)
        bar.addWidget(self.search_box, 1)
        bar.addWidget(self.job_chip)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self.setWidget(body)

        self._flush_timer = QTimer(self, singleShot=True, interval=BATCH_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._entry_arrived.connect(self._on_entry_arrived, Qt.ConnectionType.QueuedConnection)
        self._subscribe()

    @property
    def subscribed(self) -> bool:
        return self._unsubscribe is not None

    def show_job(self, job_id: int | None) -> None:
        """Show only the lines logged inside job ``job_id``; ``None`` shows every line again."""
        self.proxy.set_job(job_id)
        self.job_chip.setText(f"job {job_id} ✕")
        self.job_chip.setVisible(job_id is not None)
        self.table.scrollToBottom()

    # -- subscription ------------------------------------------------------------------

    def _subscribe(self) -> None:
        """Listen first, then load the history, so no record falls in between; a record in
        both arrives later through the queue and is dropped by identity in ``_flush``."""
        emit = self._entry_arrived.emit

        def on_entry(entry: LogEntry) -> None:  # any thread
            # RuntimeError: the view's C++ half went away between the last unsubscribe and now.
            with contextlib.suppress(RuntimeError):
                emit(entry)

        remove = add_listener(on_entry)
        done = False

        def unsubscribe() -> None:  # once only: from close, then maybe again from destroyed
            nonlocal done
            if not done:
                done = True
                remove()

        self._unsubscribe = unsubscribe
        # Not a bound method: the closure must not need the (then dead) Python wrapper.
        self.destroyed.connect(lambda *_: unsubscribe())
        history = recent_entries(HISTORY_ROWS)
        self._history_ids = {id(entry) for entry in history}
        self.model.clear()
        self.model.append(history)
        self.table.scrollToBottom()

    def _detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._flush_timer.stop()
        self._pending.clear()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Closed (not merely hidden): stop listening; showing it again reloads the history."""
        self._detach()
        super().closeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        if not self.subscribed:
            self._subscribe()
        super().showEvent(event)

    # -- GUI thread --------------------------------------------------------------------

    def _on_entry_arrived(self, entry: LogEntry) -> None:
        if self._unsubscribe is None:
            return  # queued before the close
        self._pending.append(entry)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush(self) -> None:
        batch = [entry for entry in self._pending if id(entry) not in self._history_ids]
        self._pending.clear()
        self._history_ids.clear()  # anything queued before the history load has arrived by now
        scrolled_down = self.table.verticalScrollBar().value() == self.table.verticalScrollBar().maximum()
        self.model.append(batch)
        if scrolled_down:  # follow the tail, unless the user scrolled up to read
            self.table.scrollToBottom()

    def _on_double_clicked(self, index: QModelIndex) -> None:
        entry = self.proxy.data(index, LogTableModel.ENTRY_ROLE)
        if not isinstance(entry, LogEntry) or not entry.exc_text:
            return
        dialog = QDialog(self)
        dialog.setWindowTitle(f"{entry.level} · {entry.logger}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        text = QPlainTextEdit(f"{entry.message}\n\n{entry.exc_text}")
        text.setReadOnly(True)
        text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        QVBoxLayout(dialog).addWidget(text)
        dialog.resize(800, 400)
        dialog.show()  # not modal: the log keeps scrolling behind it
        self.details = dialog
