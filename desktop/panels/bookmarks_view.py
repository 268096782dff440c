"""Bookmarks: rows the user wants to come back to, each with a short note of their own.

A dock with one line per bookmark: the row number, the note (double-click or F2 to edit) and
the start of the row's text. Double-click or Enter on a line emits :attr:`row_chosen` (the
window then shows that row as if it were clicked on the map); Delete removes the bookmark.
The bookmarks live in the application model (``model.bookmarks``, row -> note in the order they
were added, which is what a session saves); :meth:`BookmarksView.bind` shows them and writes
the notes edited and the bookmarks removed here back into it. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QTreeWidget, QTreeWidgetItem, QWidget

from desktop.model.document import AppModel

ROW, NOTE, PREVIEW = range(3)
PREVIEW_CHARS = 120


class BookmarksView(QDockWidget):
    """The bookmarks dock; ``row_chosen(row)`` when a bookmark is opened."""

    row_chosen = Signal(int)
    changed = Signal()  # a bookmark added, removed or its note edited

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Bookmarks", parent)
        self.setObjectName("bookmarks")  # saveState() needs a name to restore the dock
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Row", "Note", "Text"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setEditTriggers(
            QAbstractItemView.EditTrigger.EditKeyPressed | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.tree.setColumnWidth(ROW, 60)
        self.tree.setColumnWidth(NOTE, 180)
        self.tree.setToolTip("Double-click or Enter: show the row · F2: edit the note · Delete: remove")
        self.setWidget(self.tree)
        self._items: dict[int, QTreeWidgetItem] = {}
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.installEventFilter(self)

    def bind(self, model: AppModel) -> None:
        """Show ``model.bookmarks``; edits and removals here go back into it."""

        def show(marks: dict[int, str]) -> None:
            if list(marks.items()) != self.bookmarks():
                texts = model.dataset.texts if model.dataset is not None else ()
                self.set_bookmarks(marks.items(), {row: texts[row] for row in marks if row < len(texts)})

        model.bookmarks_changed.connect(show)
        self.changed.connect(lambda: model.set_bookmarks(dict(self.bookmarks())))

    def add(self, row: int, preview: str, note: str = "") -> None:
        """Bookmark ``row`` (again: its preview is refreshed, and its note replaced if one is given)."""
        item = self._items.get(row)
        self.tree.blockSignals(True)
        if item is None:
            item = QTreeWidgetItem([str(row), note, ""])
            item.setData(ROW, Qt.ItemDataRole.UserRole, row)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.tree.addTopLevelItem(item)
            self._items[row] = item
        elif note:
            item.setText(NOTE, note)
        text = " ".join(preview.split())
        item.setText(PREVIEW, text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…")
        item.setToolTip(PREVIEW, preview[:1000])
        self.tree.blockSignals(False)
        self.changed.emit()

    def remove(self, row: int) -> None:
        item = self._items.pop(row, None)
        if item is not None:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
            self.changed.emit()

    def clear(self) -> None:
        self.tree.clear()
        self._items = {}
        self.changed.emit()

    def bookmarks(self) -> list[tuple[int, str]]:
        """``(row, note)`` for each bookmark, in the order they were added."""
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [(int(item.data(ROW, Qt.ItemDataRole.UserRole)), item.text(NOTE)) for item in items if item]

    def set_bookmarks(self, items: Iterable[tuple[int, str]], previews: Mapping[int, str]) -> None:
        """Replace the bookmarks (a session opened); ``previews[row]`` is each row's text."""
        self.tree.clear()
        self._items = {}
        self.blockSignals(True)  # one "changed" for the whole list, not one per bookmark
        try:
            for row, note in items:
                self.add(row, previews.get(row, ""), note)
        finally:
            self.blockSignals(False)
        self.changed.emit()

    def is_bookmarked(self, row: int) -> bool:
        return row in self._items

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == NOTE:  # the only column the user can edit
            self.changed.emit()

    def _on_double_click(self, item: QTreeWidgetItem, column: int) -> None:
        self.row_chosen.emit(int(item.data(ROW, Qt.ItemDataRole.UserRole)))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        """Enter opens the current bookmark, Delete removes the selected ones (not while editing a note)."""
        if watched is self.tree and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            editing = self.tree.state() == QAbstractItemView.State.EditingState
            current = self.tree.currentItem()
            if not editing and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and current is not None:
                self.row_chosen.emit(int(current.data(ROW, Qt.ItemDataRole.UserRole)))
                return True
            if not editing and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
                chosen = self.tree.selectedItems() or ([current] if current is not None else [])
                for item in chosen:
                    self.remove(int(item.data(ROW, Qt.ItemDataRole.UserRole)))
                return True
        return super().eventFilter(watched, event)
