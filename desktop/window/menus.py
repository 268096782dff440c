"""The window's menus and keyboard shortcuts, in one place, so Help ▸ Keyboard shortcuts can
list them from the actions themselves and never drift from what the keys do.

The menus call the window only through :class:`MenuHost`: the actions it offers, and where menus
and shortcuts go. Nothing here imports the window.

Single-letter keys (the map tools, D for density) are window shortcuts: a focused text field
takes its own letters first, so typing "l" in the search box types an "l".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractButton, QDockWidget, QMenu, QMenuBar, QMessageBox, QWidget

from desktop.map.controls import TOOLS

Keys = str | QKeySequence.StandardKey


class ComparisonMenu(Protocol):
    """What the menus need of the window's comparison (desktop.window.compare.CompareActions)."""

    @property
    def moved_view(self) -> QDockWidget: ...

    def choose(self) -> None: ...
    def close(self) -> None: ...
    def choose_export(self, what: str) -> None: ...


class MenuHost(Protocol):
    """What the menus need of the window: where they go, the docks they show, and its actions
    (each a method taking nothing, run on the GUI thread when its menu entry or key is used)."""

    def menuBar(self) -> QMenuBar: ...  # noqa: N802 (Qt's name)
    def addAction(self, action: QAction) -> None: ...  # noqa: N802 (Qt's name)
    def actions(self) -> list[QAction]: ...

    @property
    def log_view(self) -> QDockWidget: ...
    @property
    def jobs_view(self) -> QDockWidget: ...
    @property
    def bookmarks_view(self) -> QDockWidget: ...
    @property
    def cancel_button(self) -> QAbstractButton: ...
    @property
    def comparison(self) -> ComparisonMenu: ...

    # File
    def choose_file(self) -> None: ...
    def fill_recent_menu(self) -> None: ...
    def choose_open_session(self) -> None: ...
    def choose_save_session(self) -> None: ...
    def choose_export_map(self) -> None: ...
    def choose_export_data(self) -> None: ...
    def open_settings(self) -> None: ...
    def send_to_cluster(self) -> None: ...
    def close(self) -> bool: ...
    # Dataset
    def choose_columns(self) -> None: ...
    # Map
    def set_map_tool(self, name: str) -> None: ...
    def toggle_density(self) -> None: ...
    def reset_zoom(self) -> None: ...
    def start_group_statistics(self) -> None: ...
    def bookmark_row(self) -> None: ...
    def clear_selection(self) -> None: ...
    def clear_filter(self) -> None: ...
    def apply_parameters(self) -> None: ...
    def focus_search(self) -> None: ...


@dataclass(frozen=True)
class Menus:
    """The menus built (keep them: see :func:`shortcuts`), and the entries the window uses again."""

    menus: list[QMenu]
    open_action: QAction
    recent_menu: QMenu  # File ▸ Open Recent, filled by ``host.fill_recent_menu`` as it opens


def build_menus(host: MenuHost) -> Menus:
    """File, Dataset, View, Map and Help in ``host``'s menu bar, and its window-wide shortcuts."""
    bar = host.menuBar()
    file_menu = bar.addMenu("&File")
    open_action = _add(file_menu, "&Open…", host.choose_file, QKeySequence.StandardKey.Open)
    recent_menu = file_menu.addMenu("Open &Recent")
    recent_menu.aboutToShow.connect(host.fill_recent_menu)
    file_menu.addSeparator()
    _add(file_menu, "Open &session…", host.choose_open_session, "Ctrl+Shift+O")
    _add(file_menu, "&Save session…", host.choose_save_session, QKeySequence.StandardKey.Save)
    file_menu.addSeparator()
    _add(file_menu, "&Export map…", host.choose_export_map, "Ctrl+E")
    _add(file_menu, "Export &data…", host.choose_export_data, "Ctrl+Shift+E")
    comparison = host.comparison
    _add(file_menu, "Export comparison fi&gure…", partial(comparison.choose_export, "figure"), "")
    _add(file_menu, "Export comparison ro&ws…", partial(comparison.choose_export, "rows"), "")
    file_menu.addSeparator()
    _add(file_menu, "Send to c&luster…", host.send_to_cluster, "")
    file_menu.addSeparator()
    _add(file_menu, "Se&ttings…", host.open_settings, "Ctrl+,")
    file_menu.addSeparator()
    _add(file_menu, "&Quit", host.close, "Ctrl+Q")

    dataset_menu = bar.addMenu("&Dataset")
    _add(dataset_menu, "&Columns…", host.choose_columns, "Ctrl+Shift+C")

    view_menu = bar.addMenu("&View")
    for dock, keys in (
        (host.log_view, "Ctrl+L"),
        (host.jobs_view, "Ctrl+J"),
        (host.bookmarks_view, "Ctrl+B"),
        (comparison.moved_view, "Ctrl+M"),
    ):
        toggle = dock.toggleViewAction()
        toggle.setShortcut(QKeySequence(keys))
        view_menu.addAction(toggle)

    map_menu = bar.addMenu("&Map")
    for name, (label, key) in TOOLS.items():
        _add(map_menu, f"{label} tool", partial(host.set_map_tool, name), key)
    map_menu.addSeparator()
    _add(map_menu, "&Density view", host.toggle_density, "D")
    _add(map_menu, "&Reset zoom", host.reset_zoom, "Ctrl+0")
    _add(map_menu, "Attention statistics of the &selection", host.start_group_statistics, "Ctrl+G")
    _add(map_menu, "&Bookmark the row", host.bookmark_row, "Ctrl+D")
    _add(map_menu, "&Clear selection", host.clear_selection, "Ctrl+Shift+A")
    _add(map_menu, "Clear &filter", host.clear_filter, "Ctrl+Shift+F")
    map_menu.addSeparator()
    _add(map_menu, "Compare &with…", comparison.choose, "Ctrl+K")
    _add(map_menu, "Close compar&ison", comparison.close, "Ctrl+Shift+K")
    map_menu.addSeparator()
    _add(map_menu, "&Apply parameters", host.apply_parameters, "Ctrl+Return")

    menus = [file_menu, dataset_menu, view_menu, map_menu]
    help_menu = bar.addMenu("&Help")
    _add(help_menu, "&Keyboard shortcuts", lambda: show_shortcuts(host, menus), "F1")
    menus.append(help_menu)

    find = QAction("Find", bar)
    find.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
    find.triggered.connect(host.focus_search)
    host.addAction(find)
    return Menus(menus, open_action, recent_menu)


def shortcuts(host: MenuHost, menus: list[QMenu]) -> list[tuple[str, str]]:
    """Every shortcut: (keys, what it does), in menu order, then the window's own.

    It reads the menus the window kept: QAction.menu() would hand PySide a new wrapper that
    can delete the menu when it is collected.
    """
    actions = [action for menu in menus for action in menu.actions()]
    found = [
        (action.shortcut().toString(QKeySequence.SequenceFormat.NativeText), action.text())
        for action in [*actions, *host.actions()]
    ]
    found.append((host.cancel_button.shortcut().toString(), "Cancel running jobs"))
    return [(keys, text.replace("&", "").rstrip("…")) for keys, text in found if keys]


def show_shortcuts(host: MenuHost, menus: list[QMenu]) -> None:
    """Help ▸ Keyboard shortcuts (F1): a window-modal table of :func:`shortcuts`."""
    rows = "".join(f"<tr><td><b>{keys}</b></td><td>{text}</td></tr>" for keys, text in shortcuts(host, menus))
    parent = host.menuBar().window()
    box = QMessageBox(parent if isinstance(parent, QWidget) else None)
    box.setWindowTitle("Keyboard shortcuts")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(f"<table cellspacing=6>{rows}</table>")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()


def _add(menu: QMenu, text: str, slot: Callable[[], object], keys: Keys) -> QAction:
    action = menu.addAction(text, slot)
    action.setShortcut(QKeySequence(keys))
    return action
