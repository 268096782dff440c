"""Image-approval tests: what Loupe draws is compared with approved PNGs, within a tolerance.

They catch what the smoke tests cannot: points in the wrong place, lost colours, a legend
gone, a theme that no longer applies. See tests/approval.py to approve a deliberate change.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.export import save_map_figure
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
