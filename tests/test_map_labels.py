"""Cluster names on the map do not cover each other (desktop/map/labels.py)."""

from __future__ import annotations

import pyqtgraph as pg
from pytestqt.qtbot import QtBot

from desktop.map.labels import MapLabels


def test_names_that_would_overlap_are_hidden_until_zooming_separates_them(qtbot: QtBot) -> None:
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    qtbot.waitExposed(widget)
    labels = MapLabels(widget.getPlotItem())
    names = [
        (0.0, 0.0, "logger · logging · handler"),
        (0.05, 0.0, "日本語 · テキスト"),
        (50.0, 50.0, "العربية"),
    ]
    widget.getPlotItem().setRange(xRange=(-100, 100), yRange=(-100, 100), padding=0)
    labels.show(names)
    qtbot.waitUntil(lambda: labels.shown_texts == ["logger · logging · handler", "العربية"], timeout=2000)
    # Zoomed in far enough, the first two lie apart on screen and both show again.
    widget.getPlotItem().setRange(xRange=(-0.01, 0.06), yRange=(-0.05, 0.05), padding=0)
    qtbot.waitUntil(lambda: "日本語 · テキスト" in labels.shown_texts, timeout=2000)
    assert labels.texts == [name for _x, _y, name in names]  # hidden, never dropped


def test_a_map_torn_down_with_names_pending_raises_nothing(qtbot: QtBot) -> None:
    # The window closes between tests while a rearrangement is queued: the queued call must die
    # with the map (pytest-qt fails the next test on any exception in the event loop).
    widget = pg.PlotWidget()
    widget.resize(300, 200)
    widget.show()
    qtbot.waitExposed(widget)
    labels = MapLabels(widget.getPlotItem())
    labels.show([(0.0, 0.0, "première"), (0.0, 0.0, "二番目")])  # queues a rearrangement
    widget.getPlotItem().clear()
    widget.deleteLater()
    qtbot.wait(50)
    labels.declutter()  # called by hand on a torn-down map: returns quietly
