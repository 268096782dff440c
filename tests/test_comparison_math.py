"""The comparison's measures (engine.maps.comparison) against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import BadInputError
from engine.maps.comparison import (
    displacement,
    linear_cka,
    mean_by_label,
    most_moved,
    neighbour_overlap,
    spread,
)
from engine.maps.layer_maps import align_to


def gram_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA as Kornblith et al. write it: HSIC of the n x n Gram matrices, centred by H."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    return float((k * l_).sum() / np.sqrt((k * k).sum() * (l_ * l_).sum()))


def test_overlap_is_the_jaccard_index_of_the_neighbour_sets() -> None:
    rng = np.random.default_rng(0)
    a = np.array([rng.choice(50, 6, replace=False) for _ in range(40)])
    b = np.array([rng.choice(50, 6, replace=False) for _ in range(40)])
    expected = [len(set(p) & set(q)) / len(set(p) | set(q)) for p, q in zip(a, b, strict=True)]
    assert np.allclose(neighbour_overlap(a, b), expected)
    assert np.array_equal(neighbour_overlap(a, a), np.ones(40, np.float32))
    # Order within a list does not matter; one shared neighbour of two is 1/3.
    assert neighbour_overlap(np.array([[1, 2]]), np.array([[2, 1]]))[0] == 1.0
    assert neighbour_overlap(np.array([[1, 2]]), np.array([[2, 3]]))[0] == pytest.approx(1 / 3)
    with pytest.raises(BadInputError):
        neighbour_overlap(a, b[:, :5])


def test_a_map_aligned_onto_a_rotated_scaled_copy_of_itself_does_not_move() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(200, 2)).astype(np.float32)
    angle = 1.1
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (3.5 * base @ rotation + [10.0, -4.0]) * [1, -1]  # rotated, scaled, shifted, mirrored
    assert displacement(base, align_to(moved, base)).max() < 1e-4


def test_displacement_is_in_units_of_the_base_maps_spread() -> None:
    base = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], np.float32)
    assert spread(base) == pytest.approx(1.0)
    other = base.copy()
    other[0] = [1.0, 0.5]  # row 0 moved by 0.5 in a map of spread 1
    assert np.allclose(displacement(base, other), [0.5, 0, 0, 0])
    assert np.allclose(displacement(base * 10, other * 10), [0.5, 0, 0, 0])  # the scale cancels
    assert spread(np.zeros((3, 2))) == 1.0  # a map in one point: no division by zero
    with pytest.raises(BadInputError):
        displacement(base, base[:3])


def test_linear_cka_equals_the_gram_matrix_formula_and_ignores_rotation_and_width() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 12))
    y = x @ rng.normal(size=(12, 7)) + 0.5 * rng.normal(size=(60, 7))  # another width
    assert linear_cka(x, y) == pytest.approx(gram_cka(x, y), abs=1e-9)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert linear_cka(x, 4.0 * x @ q + 3.0) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    unrelated = linear_cka(rng.normal(size=(2000, 12)), rng.normal(size=(2000, 12)))
    assert unrelated < 0.05
    assert np.isnan(linear_cka(np.ones((5, 3)), x[:5]))  # every row in one place
    with pytest.raises(BadInputError):
        linear_cka(x, y[:10])


def test_mean_by_label_keeps_any_script_and_skips_unlabelled_rows() -> None:
    labels = ["café", "日本語", "café", "", "العربية", "日本語"]
    values = np.array([1.0, 0.5, 0.0, 0.9, 0.25, 0.0], np.float32)
    assert mean_by_label(values, labels) == {"café": 0.5, "日本語": 0.25, "العربية": 0.25}
    with pytest.raises(BadInputError):
        mean_by_label(values, labels[:2])


def test_most_moved_is_furthest_first_with_ties_by_row() -> None:
    moved = np.array([0.1, 0.9, 0.5, 0.9, 0.0], np.float32)
    assert most_moved(moved, 3).tolist() == [1, 3, 2]
    assert most_moved(moved, 0).tolist() == []
    assert most_moved(moved, 99).tolist() == [1, 3, 2, 0, 4]
