"""engine.maps.placement: new rows placed on a map from their nearest mapped rows.

Clustered random vectors stand in for embeddings (the properties hold whatever the data); the
graph path is exercised on small inputs by passing a small ``exact_up_to``.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import BadInputError, JobCancelled
from engine.maps.placement import RowPlacer, place_rows
from engine.runtime.jobs import CancelToken


def clustered(rows: int, width: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vectors around 8 centres, and each row's centre number."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, width)) * 3
    which = rng.integers(0, 8, rows)
    return (centres[which] + rng.normal(size=(rows, width))).astype(np.float32), which


def cluster_map(which: np.ndarray, seed: int = 1) -> np.ndarray:
    """A map that draws each centre's rows around its own spot, far from the others."""
    rng = np.random.default_rng(seed)
    spots = np.array([[10.0 * c, -5.0 * c] for c in range(8)])
    return (spots[which] + rng.normal(scale=0.5, size=(len(which), 2))).astype(np.float32)


def test_a_row_identical_to_a_mapped_row_lands_on_it() -> None:
    vectors, which = clustered(300)
    coords = cluster_map(which)
    new = np.concatenate([vectors[[5, 77]], 2.5 * vectors[[140]]])  # the same direction counts
    placed = place_rows(vectors, coords, new)
    np.testing.assert_allclose(placed, coords[[5, 77, 140]], atol=1e-5)


def test_new_rows_land_among_their_own_kind() -> None:
    vectors, which = clustered(600)
    coords = cluster_map(which[:400])
    placed = place_rows(vectors[:400], coords, vectors[400:], k=10)
    centre_of = np.array([coords[which[:400] == c].mean(axis=0) for c in range(8)])
    nearest_centre = np.argmin(((placed[:, None, :] - centre_of[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest_centre == which[400:]).mean() > 0.95


def test_order_of_the_new_rows_does_not_matter() -> None:
    vectors, which = clustered(900)
    coords = cluster_map(which[:500])
    placed = place_rows(vectors[:500], coords, vectors[500:])
    shuffle = np.random.default_rng(3).permutation(400)
    np.testing.assert_allclose(
        place_rows(vectors[:500], coords, vectors[500:][shuffle]), placed[shuffle], atol=1e-5
    )
    # Placed in chunks, each row lands where it lands when placed with all the others.
    placer = RowPlacer(vectors[:500], coords)
    chunks = np.concatenate([placer.place(vectors[500:650]), placer.place(vectors[650:])])
    np.testing.assert_allclose(chunks, placed, atol=1e-5)


def test_float32_and_the_same_twice() -> None:
    vectors, which = clustered(400)
    coords = cluster_map(which[:200]).astype(np.float64)
    first = place_rows(vectors[:200].astype(np.float64), coords, vectors[200:])
    assert first.dtype == np.float32 and first.shape == (200, 2)
    np.testing.assert_array_equal(place_rows(vectors[:200], coords, vectors[200:]), first)


def test_empty_input_gives_no_positions() -> None:
    vectors, which = clustered(50)
    placed = place_rows(vectors, cluster_map(which), np.empty((0, 32), np.float32))
    assert placed.shape == (0, 2) and placed.dtype == np.float32
    assert RowPlacer(vectors, cluster_map(which)).place(np.empty((0, 32), np.float32)).shape == (0, 2)


def test_more_neighbours_than_mapped_rows_uses_them_all() -> None:
    vectors, _ = clustered(10)
    coords = np.arange(6, dtype=np.float32).reshape(3, 2)
    placed = place_rows(vectors[:3], coords, vectors[3:], k=50)
    assert placed.shape == (7, 2) and np.isfinite(placed).all()
    # A mean of the three positions, weighted: inside their bounding box.
    assert (placed >= coords.min(axis=0) - 1e-5).all() and (placed <= coords.max(axis=0) + 1e-5).all()


def test_zero_vectors_are_placed_not_lost() -> None:
    vectors, which = clustered(100)
    placed = place_rows(vectors, cluster_map(which), np.zeros((2, 32), np.float32))
    assert np.isfinite(placed).all()


def test_the_graph_places_like_the_exact_path() -> None:
    vectors, which = clustered(3000)
    coords = cluster_map(which[:2000])
    exact = RowPlacer(vectors[:2000], coords)
    graph = RowPlacer(vectors[:2000], coords, exact_up_to=100)
    assert exact.exact and not graph.exact
    by_exact, by_graph = exact.place(vectors[2000:]), graph.place(vectors[2000:])
    assert np.median(np.linalg.norm(by_exact - by_graph, axis=1)) < 0.1
    # The graph is built on one thread: the same vectors give the same positions.
    again = RowPlacer(vectors[:2000], coords, exact_up_to=100).place(vectors[2000:])
    np.testing.assert_array_equal(again, by_graph)
    np.testing.assert_allclose(graph.place(vectors[[7, 1500]]), coords[[7, 1500]], atol=1e-5)


def test_cancel_stops_placing() -> None:
    vectors, which = clustered(300)
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        place_rows(vectors[:200], cluster_map(which[:200]), vectors[200:], token=token)


@pytest.mark.parametrize(
    ("mapped", "coords", "new", "k"),
    [
        (np.ones((3, 4)), np.ones((2, 2)), np.ones((1, 4)), 5),  # a position missing
        (np.ones((3, 4)), np.ones((3, 2)), np.ones((1, 5)), 5),  # another width
        (np.empty((0, 4)), np.empty((0, 2)), np.ones((1, 4)), 5),  # no map to place on
        (np.ones((3, 4)), np.full((3, 2), np.nan), np.ones((1, 4)), 5),
        (np.ones((3, 4)), np.ones((3, 2)), np.ones((1, 4)), 0),
    ],
)
def test_bad_input_is_one_sentence(mapped: np.ndarray, coords: np.ndarray, new: np.ndarray, k: int) -> None:
    with pytest.raises(BadInputError):
        place_rows(mapped, coords, new, k=k)
