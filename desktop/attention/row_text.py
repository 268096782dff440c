"""The row's text under the attention views, where hovering a token highlights its characters."""

from __future__ import annotations

from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextEdit

HIGHLIGHT = QColor(255, 214, 64)
KEY_HIGHLIGHT = QColor(140, 200, 255)


class RowText(QTextEdit):
    """A read-only text box that highlights character spans of its text (GUI thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.setReadOnly(True)
        self.setMaximumHeight(90)
        self.setPlaceholderText("The row's text; hover a token to see its characters.")
        self.text = ""  # as given: the spans index it, whatever Qt makes of its line breaks

    def set_text(self, text: str) -> None:
        """Show ``text``, with nothing highlighted."""
        self.text = text
        self.setPlainText(text)

    def highlight(self, query: tuple[int, int] | None, key: tuple[int, int] | None = None) -> None:
        """Highlight the characters ``query`` spans, and ``key``'s in blue; None for neither.

        Spans are ``[start, end)`` offsets into the text in Python characters; the box scrolls
        to the last one highlighted.
        """
        selections = []
        if key is not None:
            selections.append(self._selection(key, KEY_HIGHLIGHT))
        if query is not None:
            selections.append(self._selection(query, HIGHLIGHT))
        self.setExtraSelections(selections)
        if selections:
            self.setTextCursor(QTextCursor(selections[-1].cursor.block()))
            self.ensureCursorVisible()

    def _utf16(self, offset: int) -> int:
        """A character offset in the text as Qt counts it: in UTF-16 units (an emoji is two)."""
        return len(self.text[:offset].encode("utf-16-le")) // 2

    def _selection(self, span: tuple[int, int], colour: QColor) -> QTextEdit.ExtraSelection:
        selection = QTextEdit.ExtraSelection()
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._utf16(span[0]))
        cursor.setPosition(self._utf16(span[1]), QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        fmt.setBackground(colour)
        selection.cursor = cursor
        selection.format = fmt
        return selection
