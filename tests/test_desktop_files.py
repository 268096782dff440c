"""Opening data in the window: drag and drop, File ▸ Open (Ctrl+O) and recent files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QKeySequence
from pytestqt.qtbot import QtBot

from desktop.window.main_window import MainWindow
from engine.user.settings import RECENT_FILES, load_settings


def write_rows(path: Path, count: int = 12) -> Path:
    lines = [
        f'"Row {i} talks about {"cats" if i % 2 else "taxes"} at some length.",{"a" if i % 2 else "b"}'
        for i in range(count)
    ]
    path.write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_dropping_a_file_opens_it_and_remembers_it(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "dropped.csv")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    shown: list[str] = []
    window.map_ready.connect(shown.append)
    window.dropEvent(event)
    assert event.isAccepted()
    assert window.windowTitle() == "Loupe — dropped.csv"
    qtbot.waitUntil(lambda: bool(shown), timeout=120_000)
    assert window.model.dataset is not None and len(window.model.dataset) == 12
    assert load_settings().recent_files[0] == str(path.resolve())


def test_recent_files_are_newest_first_without_repeats(window: MainWindow, tmp_path: Path) -> None:
    settings = load_settings()
    for i in range(RECENT_FILES + 3):
        settings = settings.with_recent(f"/data/{i}.csv")
    settings = settings.with_recent("/data/5.csv")
    assert settings.recent_files[0] == "/data/5.csv"
    assert len(settings.recent_files) == RECENT_FILES == len(set(settings.recent_files))
    window.fill_recent_menu()
    assert [a.text() for a in window.recent_menu.actions()] == ["(none yet)"]


def test_open_has_the_platform_shortcut(window: MainWindow) -> None:
    assert window.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    assert window.acceptDrops()


def test_colour_by_a_numeric_or_a_text_column(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "scored.csv"
    rows = [
        f'"Row {i} is about {"cats" if i % 2 else "taxes"} and more.",{i % 3},{i * 1.5},{"ab"[i % 2]}'
        for i in range(12)
    ]
    # A label column by name, so that `kind` (two short values) stays a column and is not
    # taken for the label.
    path.write_text("text,label,score,kind\n" + "\n".join(rows) + "\n", encoding="utf-8")
    shown: list[str] = []
    window.map_ready.connect(shown.append)
    window.open_path(path)
    qtbot.waitUntil(lambda: "umap" in shown, timeout=120_000)
    combo = window.map_controls.colouring
    combo.setCurrentIndex(combo.findData("column:score"))
    window.map_view.draw_pending()
    [item] = window.map_view._items
    assert len({brush.color().name() for brush in item.data["brush"]}) > 5  # a colour scale
    combo.setCurrentIndex(combo.findData("column:kind"))
    assert len(window.map_view._items) == 2  # categories a and b
