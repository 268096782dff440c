"""A huge cell (1 MB and more) costs the GUI thread nothing on hover or in the neighbours list."""

from __future__ import annotations

import time

import numpy as np
from pytestqt.qtbot import QtBot

from desktop.panels.neighbours_view import NeighboursView
from tests.test_map_view import shown_map

HUGE = " ".join(["« Très long » texte — Привет, 世界 🎉 “quoted” …"] * 100_000)  # about 4.6 MB


def test_hover_and_neighbours_read_only_the_start_of_a_huge_text(qtbot: QtBot) -> None:
    assert len(HUGE.encode("utf-8")) > 4_000_000
    texts = ["short", HUGE, "another short one"]
    view = shown_map(qtbot, 400, 400)
    view.set_points(np.zeros((3, 2), np.float32), ["a", "b", "c"], texts, "map")
    neighbours = NeighboursView()
    qtbot.addWidget(neighbours)

    began = time.perf_counter()
    tip = view._tip(0.0, 0.0, 1)
    neighbours.set_neighbours(0, np.array([1, 2]), np.array([0.1, 0.2], np.float32), texts, ["a", "b", "c"])
    elapsed = time.perf_counter() - began

    assert elapsed < 0.1, f"{elapsed:.2f} s on the GUI thread"  # whole, it took seconds
    assert tip.startswith("row 1\n« Très long » texte") and len(tip) < 500
    assert neighbours.list.item(0).text().startswith("0.100  row 1 · b: « Très long »")
