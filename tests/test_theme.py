"""Light and dark: forced by the settings or following the system, down to the views."""

from __future__ import annotations

from collections.abc import Iterator

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from desktop.theme import apply_theme, follow_system, is_dark


class DarkAware(QLabel):
    """A view that draws its own colours, as the map and attention views do."""

    def __init__(self) -> None:
        super().__init__("x")
        self.calls: list[bool] = []

    def set_dark(self, dark: bool) -> None:
        self.calls.append(dark)


@pytest.fixture
def app(qapp: QApplication) -> Iterator[QApplication]:
    style = qapp.style().name()
    yield qapp
    apply_theme(qapp, "light")  # the next test starts from the platform's look
    assert qapp.style().name() == style


@pytest.fixture
def window(qtbot: QtBot) -> tuple[QWidget, DarkAware]:
    window = QWidget()
    inner = DarkAware()
    QVBoxLayout(window).addWidget(inner)
    qtbot.addWidget(window)
    window.show()
    return window, inner


def _window_lightness(widget: QWidget) -> int:
    return widget.palette().color(QPalette.ColorRole.Window).lightness()


def test_dark_then_light_reach_the_palette_plots_and_views(
    qtbot: QtBot, app: QApplication, window: tuple[QWidget, DarkAware]
) -> None:
    top, view = window
    assert apply_theme(app, "dark") is True
    qtbot.waitUntil(lambda: _window_lightness(top) < 100)  # Qt posts the change to each widget
    assert app.palette().color(QPalette.ColorRole.Text).lightness() > 150  # readable on it
    assert app.style().name().lower() == "fusion"
    assert view.calls == [True]
    assert pg.getConfigOption("background") != "w"

    assert apply_theme(app, "light") is False
    qtbot.waitUntil(lambda: _window_lightness(top) > 150)
    assert view.calls == [True, False]
    assert pg.getConfigOption("background") == "w"


def test_system_follows_the_platform_scheme(app: QApplication, window: tuple[QWidget, DarkAware]) -> None:
    _, view = window
    expected = app.styleHints().colorScheme() == Qt.ColorScheme.Dark  # Unknown (offscreen) is light
    assert is_dark(app, "system") is expected
    assert apply_theme(app, "system") is expected
    assert view.calls == [expected]


def test_a_system_switch_is_followed_only_while_the_preference_is_system(
    app: QApplication, window: tuple[QWidget, DarkAware]
) -> None:
    _, view = window
    preference = ["system"]
    connection = follow_system(app, lambda: preference[0])
    # The offscreen platform cannot switch its scheme, so the switch is the signal itself.
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert len(view.calls) == 1
    preference[0] = "light"
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert len(view.calls) == 1
    assert QObject.disconnect(connection)


def test_startup_takes_the_theme_and_the_embedding_recipe_from_the_settings(
    qtbot: QtBot, app: QApplication
) -> None:
    from desktop.app import create_window
    from engine.api.types import Identify
    from engine.process.proxy import EngineProcess
    from engine.user.settings import Settings, save_settings
    from tests.conftest import window_args

    save_settings(Settings(theme="dark", pooling="cls", layer=2, projection_method="pca", projection_seed=5))
    window = create_window(window_args(command=None))
    qtbot.addWidget(window)
    try:
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 100
        assert window.map_view._dark  # the map was told too
        assert (window.model.engine.pooling, window.model.engine.layer) == ("cls", 2)
        assert isinstance(window.engine, EngineProcess)  # the recipe goes to the child
        assert window.engine.identify(Identify()).pooling == "cls"
        assert (window.model.params.method, window.model.params.seed) == ("pca", 5)
        params = window.map_controls.params()
        assert (params.method, params.seed) == ("pca", 5)
        # The command line's --pooling wins over the settings.
        window.close()
        window = create_window(window_args(command=None, pooling="mean"))
        qtbot.addWidget(window)
        assert window.model.engine.pooling == "mean"
    finally:
        window.close()
