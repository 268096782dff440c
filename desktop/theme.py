"""Light and dark: the user's choice (settings ``theme``), or the system's, followed live.

Dark is the Fusion style with a dark palette, because the native styles of Windows and some
Linux desktops ignore a palette; light is the style and palette the platform gave Loupe. Views
that draw their own colours (the map, the attention view) follow through a ``set_dark(bool)``
method, found by duck typing on every widget of every top-level window, so a view gains dark
support by growing that method and nothing here changes. New pyqtgraph plots take their
background and foreground from pyqtgraph's config, which is set here too.

Everything here runs on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import QMetaObject, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget

from engine.user.settings import THEMES

__all__ = ["THEMES", "apply_theme", "dark_palette", "follow_system", "is_dark"]
_NATIVE_STYLE = "loupe_native_style"  # app property: the style name before dark switched to Fusion
DARK_PLOT = ("#1e1e1e", "#dddddd")  # pyqtgraph background, foreground
LIGHT_PLOT = ("w", "k")


def is_dark(app: QApplication, preference: str) -> bool:
    """Whether ``preference`` means dark now: "system" asks the platform (Unknown counts as light)."""
    if preference == "dark":
        return True
    if preference == "light":
        return False
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication, preference: str) -> bool:
    """Apply ``preference`` ("system", "light" or "dark") to the whole app; returns whether it is dark.

    Sets the style and palette, pyqtgraph's colours for new plots, and calls ``set_dark`` on
    every widget that has one.
    """
    dark = is_dark(app, preference)
    native = app.property(_NATIVE_STYLE)
    if native is None:
        native = app.style().name()
        app.setProperty(_NATIVE_STYLE, native)
    if dark:
        app.setStyle(QStyleFactory.create("Fusion"))
        app.setPalette(dark_palette())
    else:
        if app.style().name() != native:
            app.setStyle(QStyleFactory.create(str(native)))
        app.setPalette(QPalette())  # an empty palette: the platform's own comes back
    background, foreground = DARK_PLOT if dark else LIGHT_PLOT
    pg.setConfigOptions(background=background, foreground=foreground)
    for widget in _all_widgets(app):
        set_dark = getattr(widget, "set_dark", None)
        if callable(set_dark):
            set_dark(dark)
    return dark


def follow_system(app: QApplication, preference: Callable[[], str]) -> QMetaObject.Connection:
    """Re-apply the theme whenever the system switches between light and dark, while the
    current ``preference()`` (read at each switch, e.g. from the settings) is "system".

    Returns the connection (``QObject.disconnect`` it to stop following).
    """

    def on_change(_scheme: Qt.ColorScheme) -> None:
        if preference() == "system":
            apply_theme(app, "system")

    return app.styleHints().colorSchemeChanged.connect(on_change)


def dark_palette() -> QPalette:
    """A dark palette with enough contrast for text, selections and disabled widgets."""
    palette = QPalette()
    window, base, text = QColor(45, 45, 48), QColor(30, 30, 30), QColor(220, 220, 220)
    highlight = QColor(42, 130, 218)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: window,
        QPalette.ColorRole.ToolTipBase: window,
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor(140, 140, 140),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: window,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 80, 80),
        QPalette.ColorRole.Link: QColor(100, 170, 255),
        QPalette.ColorRole.Highlight: highlight,
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    muted = QColor(120, 120, 120)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, muted)
    return palette


def _all_widgets(app: QApplication) -> list[QWidget]:
    found: list[QWidget] = []
    for top in app.topLevelWidgets():
        found.append(top)
        found.extend(top.findChildren(QWidget))
    return found
