"""Image-approval tests: what Loupe draws is compared with approved PNGs, within a tolerance.

They catch what the smoke tests cannot: points in the wrong place, lost colours, a legend
gone, a theme that no longer applies. See tests/approval.py to approve a deliberate change.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from desktop.map.view import MapView
from engine.user.figures import save_map_figure
from tests.approval import APPROVED, assert_looks_like, read_png

LABELS = ["alpha"] * 120 + ["beta"] * 90 + ["gamma"] * 60


def _coords() -> np.ndarray:
    rng = np.random.default_rng(7)
    centres = {"alpha": (-5.0, 0.0), "beta": (5.0, 0.0), "gamma": (0.0, 6.0)}
    return np.array([rng.normal(centres[label], 1.0) for label in LABELS], dtype=np.float32)


def test_exported_map_figure_matches_the_approved_one(tmp_path: Path) -> None:
    path = save_map_figure(tmp_path / "map.png", _coords(), LABELS, title="Approved map", dpi=60, size=(6, 5))
    assert_looks_like(path, "map_figure", tmp_path)


def test_the_comparison_fails_on_a_real_change(tmp_path: Path) -> None:
    """The tolerance is not so loose that a moved cluster passes."""
    moved = _coords()
    moved[:120] += np.array([0.0, 4.0], dtype=np.float32)
    path = save_map_figure(tmp_path / "map.png", moved, LABELS, title="Approved map", dpi=60, size=(6, 5))
    if os.environ.get("LOUPE_APPROVE") == "1" or not (APPROVED / "map_figure.png").is_file():
        pytest.skip("approving images, or none approved yet")
    with pytest.raises(AssertionError, match="looks different"):
        assert_looks_like(path, "map_figure", tmp_path)
    assert (tmp_path / "map_figure-difference.png").is_file()
    assert read_png(path).shape == read_png(APPROVED / "map_figure.png").shape


def _map_view(qtbot: QtBot, dark: bool = False) -> MapView:
    view = MapView()
    qtbot.addWidget(view)
    view.resize(480, 360)
    view.show()
    coords = _coords()
    view.set_points(coords, LABELS, [""] * len(LABELS), "Approved map")
    view.set_dark(dark)
    view.set_view_range(-9.0, 9.0, -5.0, 10.0)
    qtbot.wait(30)  # the title takes its space; the view settles
    return view


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_live_map_matches_the_approved_one(qtbot: QtBot, tmp_path: Path, dark: bool) -> None:
    view = _map_view(qtbot, dark)
    view.set_selection([0, 130])
    path = tmp_path / "view.png"
    assert view.grab().save(str(path))
    assert_looks_like(path, f"map_view_{'dark' if dark else 'light'}", tmp_path)


def test_the_density_view_matches_the_approved_one(qtbot: QtBot, tmp_path: Path) -> None:
    view = _map_view(qtbot)
    view.set_density(True)
    qtbot.wait(30)
    assert view.density_shown
    path = tmp_path / "density.png"
    assert view.grab().save(str(path))
    assert_looks_like(path, "map_view_density", tmp_path)


def test_exported_attention_figures_match_the_approved_ones(tmp_path: Path) -> None:
    from engine.model.attention_stats import AttentionStatistics
    from engine.user.attention_figures import save_attention_figure, save_attention_statistics_figure
    from tests.test_attention_view import synthetic_maps

    heatmap = save_attention_figure(
        tmp_path / "heatmap.png", synthetic_maps(), layer=1, head=2, title="Approved heatmap", dpi=50
    )
    assert_looks_like(heatmap, "attention_heatmap", tmp_path)
    grid = np.linspace(0.0, 1.0, 6 * 12, dtype=np.float32).reshape(6, 12)
    stats = AttentionStatistics(
        entropy=grid, special=grid[::-1].copy(), previous=grid.T.reshape(6, 12), rows=20, requested=20
    )
    figure = save_attention_statistics_figure(
        tmp_path / "stats.png", stats, "entropy", "Approved grid", dpi=50
    )
    assert_looks_like(figure, "attention_statistics", tmp_path)
