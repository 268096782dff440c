"""The window's menus and keyboard shortcuts, in one place, so Help ▸ Keyboard shortcuts can
list them from the actions themselves and never drift from what the keys do.

Single-letter keys (the map tools, D for density) are window shortcuts: a focused text field
takes its own letters first, so typing "l" in the search box types an "l".
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox

from desktop.map.controls import TOOLS

if TYPE_CHECKING:
    from desktop.window.main_window import MainWindow

Keys = str | QKeySequence.StandardKey


def build_menus(window: MainWindow) -> list[QMenu]:
    """File, Dataset, View, Map and Help; returns the menus (keep them: see :func:`shortcuts`)."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    window.open_action = _add(file_menu, "&Open…", window.choose_file, QKeySequence.StandardKey.Open)
    window.recent_menu = file_menu.addMenu("Open &Recent")
    window.recent_menu.aboutToShow.connect(window.fill_recent_menu)
    file_menu.addSeparator()
    _add(file_menu, "Open &session…", window.choose_open_session, "Ctrl+Shift+O")
    _add(file_menu, "&Save session…", window.choose_save_session, QKeySequence.StandardKey.Save)
    file_menu.addSeparator()
    _add(file_menu, "&Export map…", window.choose_export_map, "Ctrl+E")
    _add(file_menu, "Export &data…", window.choose_export_data, "Ctrl+Shift+E")
    file_menu.addSeparator()
    _add(file_menu, "Se&ttings…", window.open_settings, "Ctrl+,")
    file_menu.addSeparator()
    _add(file_menu, "&Quit", window.close, "Ctrl+Q")

    dataset_menu = bar.addMenu("&Dataset")
    _add(dataset_menu, "&Columns…", window.choose_columns, "Ctrl+Shift+C")

    view_menu = bar.addMenu("&View")
    for dock, keys in (
        (window.log_view, "Ctrl+L"),
        (window.jobs_view, "Ctrl+J"),
        (window.bookmarks_view, "Ctrl+B"),
    ):
        toggle = dock.toggleViewAction()
        toggle.setShortcut(QKeySequence(keys))
        view_menu.addAction(toggle)

    map_menu = bar.addMenu("&Map")
    for name, (label, key) in TOOLS.items():
        _add(map_menu, f"{label} tool", partial(window.map_controls.set_tool, name), key)
    map_menu.addSeparator()
    _add(map_menu, "&Density view", window.map_controls.density.toggle, "D")
    _add(map_menu, "&Reset zoom", lambda: window.map_view.plot.enableAutoRange(), "Ctrl+0")
    _add(map_menu, "Attention statistics of the &selection", window.start_group_statistics, "Ctrl+G")
    _add(map_menu, "&Bookmark the row", window.bookmark_row, "Ctrl+D")
    _add(map_menu, "&Clear selection", window.clear_selection, "Ctrl+Shift+A")
    _add(map_menu, "Clear &filter", window.filter_bar.clear, "Ctrl+Shift+F")
    map_menu.addSeparator()
    _add(map_menu, "&Apply parameters", window.map_controls.apply, "Ctrl+Return")

    help_menu = bar.addMenu("&Help")
    _add(help_menu, "&Keyboard shortcuts", lambda: show_shortcuts(window), "F1")

    find = QAction("Find", window)
    find.setShortcut(QKeySequence.StandardKey.Find)
    find.triggered.connect(lambda: window.table_view.search.setFocus())
    window.addAction(find)
    return [file_menu, dataset_menu, view_menu, map_menu, help_menu]


def shortcuts(window: MainWindow) -> list[tuple[str, str]]:
    """Every shortcut: (keys, what it does), in menu order, then the window's own.

    It reads the menus the window kept: QAction.menu() would hand PySide a new wrapper that
    can delete the menu when it is collected.
    """
    actions = [action for menu in window.menus for action in menu.actions()]
    found = [
        (action.shortcut().toString(QKeySequence.SequenceFormat.NativeText), action.text())
        for action in [*actions, *window.actions()]
    ]
    found.append((window.cancel_button.shortcut().toString(), "Cancel running jobs"))
    return [(keys, text.replace("&", "").rstrip("…")) for keys, text in found if keys]


def show_shortcuts(window: MainWindow) -> None:
    """Help ▸ Keyboard shortcuts (F1): a window-modal table of :func:`shortcuts`."""
    rows = "".join(f"<tr><td><b>{keys}</b></td><td>{text}</td></tr>" for keys, text in shortcuts(window))
    box = QMessageBox(window)
    box.setWindowTitle("Keyboard shortcuts")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(f"<table cellspacing=6>{rows}</table>")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()


def _add(menu: QMenu, text: str, slot: Callable[[], object], keys: Keys) -> QAction:
    action = menu.addAction(text, slot)
    action.setShortcut(QKeySequence(keys))
    return action
