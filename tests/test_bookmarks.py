"""The bookmarks dock: add, note, choose, remove, and the plain list a session saves."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from desktop.panels.bookmarks_view import NOTE, PREVIEW, BookmarksView


def _view(qtbot: QtBot) -> BookmarksView:
    view = BookmarksView()
    qtbot.addWidget(view)
    view.show()
    return view


def test_bookmarks_keep_their_order_notes_and_previews(qtbot: QtBot) -> None:
    view = _view(qtbot)
    view.add(12, "The refund never   arrived.\nTwice!", "angry")
    view.add(3, "x" * 500)
    view.add(12, "The refund never arrived.")  # again, without a note: the note stays
    assert view.bookmarks() == [(12, "angry"), (3, "")]
    assert view.is_bookmarked(3) and not view.is_bookmarked(4)
    first = view.tree.topLevelItem(0)
    assert first is not None and first.text(PREVIEW) == "The refund never arrived."
    long = view.tree.topLevelItem(1)
    assert long is not None and len(long.text(PREVIEW)) == 120 and long.text(PREVIEW).endswith("…")

    # Editing a note in place is what bookmarks() returns.
    with qtbot.waitSignal(view.changed):
        long.setText(NOTE, "too long")
    assert view.bookmarks() == [(12, "angry"), (3, "too long")]

    view.set_bookmarks([(7, "from a session"), (99, "")], {7: "seven"})
    assert view.bookmarks() == [(7, "from a session"), (99, "")]
    view.remove(99)
    view.remove(1234)  # not bookmarked: nothing happens
    assert view.bookmarks() == [(7, "from a session")]


def test_double_click_or_enter_chooses_and_delete_removes(qtbot: QtBot) -> None:
    view = _view(qtbot)
    for row in (4, 8, 15):
        view.add(row, f"row {row}")
    second = view.tree.topLevelItem(1)
    assert second is not None
    with qtbot.waitSignal(view.row_chosen) as chosen:
        view.tree.itemDoubleClicked.emit(second, 0)
    assert chosen.args == [8]

    view.tree.setFocus()
    third = view.tree.topLevelItem(2)
    assert third is not None
    view.tree.setCurrentItem(third)
    with qtbot.waitSignal(view.row_chosen) as chosen:
        QTest.keyClick(view.tree, Qt.Key.Key_Return)
    assert chosen.args == [15]

    with qtbot.waitSignal(view.changed):
        QTest.keyClick(view.tree, Qt.Key.Key_Delete)
    assert view.bookmarks() == [(4, ""), (8, "")]


def test_the_dock_shows_the_models_bookmarks_and_writes_back_what_changes(qtbot: QtBot) -> None:
    import numpy as np

    from desktop.model.document import AppModel, Source
    from engine.api.types import OpenedDataset
    from engine.data.datasets import Dataset

    model = AppModel()
    model.open(Source("t"))
    model.set_dataset(OpenedDataset("d", Dataset("t", [f"text {i}" for i in range(10)], [""] * 10)))
    view = _view(qtbot)
    view.bind(model)
    model.bookmark(4, "four")
    model.bookmark(2)
    assert view.bookmarks() == [(4, "four"), (2, "")]
    first = view.tree.topLevelItem(0)
    assert first is not None and first.text(PREVIEW) == "text 4"
    first.setText(NOTE, "edited")  # the user edits a note
    assert model.bookmarks == {4: "edited", 2: ""}
    view.tree.setFocus()
    view.tree.setCurrentItem(view.tree.topLevelItem(1))
    QTest.keyClick(view.tree, Qt.Key.Key_Delete)
    assert model.bookmarks == {4: "edited"}
    model.select(np.array([1]))
    model.open(Source("next"))  # a new dataset: no bookmarks
    assert view.bookmarks() == []
