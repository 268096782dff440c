"""The map draws what a setter asks for a piece per turn of the event loop: the points, then
the rings of the selection and the search, then the legend. Clearing a filter with a third of
a million rows selected made the points' and the rings' images in one ~40 ms turn."""

from __future__ import annotations

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from desktop.map.layers import RING_LIMIT
from desktop.map.view import LOD_POINTS
from tests.test_map_view import clustered, count_density_images, shown_map


def test_the_rings_are_drawn_a_turn_after_the_points(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    view = shown_map(qtbot, 800, 600)
    coords, labels = clustered(3 * LOD_POINTS)
    view.set_points(coords, labels, [""] * len(coords), "many")
    selected = np.arange(0, len(coords), 3)
    assert len(selected) > RING_LIMIT  # a halo image, not rings
    view.set_selection(selected)
    view.set_visible_rows(np.arange(0, len(coords), 2))
    view.draw_pending()
    drawn = count_density_images(monkeypatch)
    view.set_visible_rows(None)  # the filter cleared
    view._pending_step()  # a turn: the points' image alone
    assert len(drawn) == 1 and view.draw_is_pending and view._selected.image.isVisible()
    view._pending_step()  # the next turn: the selection's halo, of every row now
    assert len(drawn) == 2 and not view._rings_wanted
    qtbot.waitUntil(lambda: not view.draw_is_pending)
    assert len(drawn) == 2

    view.set_visible_rows(np.arange(0, len(coords), 2))
    view.draw_pending()  # what must be drawn at once (a screenshot, a test) is, rings included
    assert len(drawn) == 4 and not view.draw_is_pending
