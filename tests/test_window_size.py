"""The window in its default configuration fits the screen it opens on.

A hover hint that could not wrap once made the attention pane 622 pixels wide at least, and the
window wider than a 1600-pixel screen (seen in an Xvfb screenshot: the right edge was cut off);
the map's controls in one row made it 1,591 pixels wide at least, too wide for a laptop.
"""

from __future__ import annotations

from typing import Any


def test_the_default_window_fits_its_default_size_and_a_1366_pixel_laptop_screen(window: Any) -> None:
    minimum = window.minimumSizeHint()
    assert minimum.width() <= min(window.width(), 1366), minimum
    assert minimum.height() <= min(window.height(), 768), minimum


def test_the_attention_pane_can_be_narrower_than_its_hint_text(window: Any) -> None:
    view = window.attention_view
    assert view.minimumSizeHint().width() <= 500
    assert view.readout.minimumSizeHint().width() < view.readout.sizeHint().width()


def test_the_maps_score_is_shown_whole_when_there_is_room(window: Any, qtbot: Any) -> None:
    controls = window.map_controls
    controls.set_score("trustworthiness 0.989 · 7 clusters")
    qtbot.waitUntil(lambda: controls.score.width() >= controls.score.sizeHint().width())


def test_a_new_window_is_never_larger_than_its_screen() -> None:
    from PySide6.QtCore import QSize

    from desktop.window.main_window import default_size

    assert default_size(QSize(1920, 1080)) == QSize(1400, 850)
    assert default_size(QSize(1366, 741)) == QSize(1366, 741)  # a laptop, less the panel
