"""UMAP's neighbour graph from faiss (engine.maps.neighbour_graph) and the map made from it.

Small inputs: the HNSW path is forced with ``exact_up_to=0`` and the projection's graph path
with a lower row threshold, so nothing here needs the 4,096+ rows the real paths start at.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import pairwise_distances

import engine.maps.neighbour_graph as neighbour_graph_module
import engine.maps.projection as projection
from engine.maps.neighbour_graph import graph_recipe, neighbour_graph
from engine.maps.projection import ProjectionParams, project


def clustered(rows: int, width: int = 24, seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, width))
    points = centres[np.arange(rows) % 8] + 0.7 * rng.normal(size=(rows, width))
    return np.asarray(points, dtype=np.float32)


def brute_force(vectors: npt.NDArray[np.float32], k: int, metric: str) -> npt.NDArray[np.float64]:
    return np.sort(pairwise_distances(vectors.astype(np.float64), metric=metric), axis=1)[:, :k]


@pytest.mark.parametrize("metric", ["cosine", "correlation", "euclidean"])
def test_exact_graph_has_each_rows_true_nearest_distances(metric: str) -> None:
    vectors = clustered(300)
    indices, distances = neighbour_graph(vectors, 10, metric)
    assert indices.shape == distances.shape == (300, 10)
    assert indices.dtype == np.int64 and distances.dtype == np.float32
    assert (indices[:, 0] == np.arange(300)).all()  # no duplicates here: each row is its own nearest
    np.testing.assert_allclose(distances, brute_force(vectors, 10, metric), atol=2e-3)
    # The distances belong to the indices listed.
    chosen = pairwise_distances(vectors.astype(np.float64), metric=metric)[np.arange(300)[:, None], indices]
    np.testing.assert_allclose(distances, chosen, atol=2e-3)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_hnsw_graph_finds_nearly_all_exact_neighbours_and_is_the_same_twice(metric: str) -> None:
    vectors = clustered(3000)
    exact, _ = neighbour_graph(vectors, 15, metric)
    first = neighbour_graph(vectors, 15, metric, exact_up_to=0)
    second = neighbour_graph(vectors, 15, metric, exact_up_to=0)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(first[0], exact, strict=True)])
    assert recall >= 0.95, recall
    assert (np.diff(first[1], axis=1) >= -1e-6).all()  # nearest first


def test_duplicate_rows_are_at_distance_zero() -> None:
    vectors = clustered(200)
    vectors[1] = vectors[0]
    indices, distances = neighbour_graph(vectors, 5, "cosine")
    assert set(indices[0, :2]) == {0, 1} and distances[0, 1] == pytest.approx(0.0, abs=1e-6)


def test_zero_rows_do_not_break_the_graph() -> None:
    vectors = clustered(100)
    vectors[3] = 0
    indices, distances = neighbour_graph(vectors, 5, "cosine")
    assert np.isfinite(distances).all() and (indices >= 0).all()


def test_other_metrics_are_left_to_umap_learn() -> None:
    assert not neighbour_graph_module.computes("manhattan")
    with pytest.raises(ValueError, match="manhattan"):
        neighbour_graph(clustered(20), 5, "manhattan")


@pytest.fixture
def graph_path_from_50_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The projection's graph path from 50 rows instead of 4,096; the sizes it was called with."""
    calls: list[int] = []
    real = neighbour_graph_module.neighbour_graph

    def counted(vectors: npt.NDArray[Any], k: int, metric: str, **kwargs: Any) -> Any:
        calls.append(len(vectors))
        return real(vectors, k, metric, **kwargs)

    monkeypatch.setattr(projection, "EXACT_NEIGHBOURS_BELOW", 50)
    monkeypatch.setattr(neighbour_graph_module, "neighbour_graph", counted)
    return calls


def test_umap_from_the_graph_gives_the_same_map_twice(graph_path_from_50_rows: list[int]) -> None:
    vectors = clustered(240)
    params = ProjectionParams(method="umap", seed=7)
    first, second = project(vectors, params), project(vectors, params)
    assert graph_path_from_50_rows == [240, 240]
    np.testing.assert_array_equal(first, second)
    assert first.shape == (240, 2) and np.isfinite(first).all()
    other = project(vectors, ProjectionParams(method="umap", seed=8))
    assert not np.array_equal(first, other)


def test_umap_from_the_graph_keeps_the_clusters(graph_path_from_50_rows: list[int]) -> None:
    from engine.maps.analysis import trustworthiness

    vectors = clustered(240)
    coords = project(vectors, ProjectionParams(method="umap", seed=7))
    assert trustworthiness(vectors, coords) > 0.85


def test_manhattan_maps_still_use_umap_learns_own_neighbours(graph_path_from_50_rows: list[int]) -> None:
    project(clustered(60), ProjectionParams.from_options("umap", {"metric": "manhattan"}, seed=1))
    assert graph_path_from_50_rows == []


def test_the_cache_key_names_the_neighbour_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    parts = ProjectionParams(method="umap").cache_parts()
    assert parts["neighbours"] == graph_recipe()
    assert "faiss-cpu-" in parts["neighbours"] and "hnsw" in parts["neighbours"]
    monkeypatch.setattr(neighbour_graph_module, "LINKS", neighbour_graph_module.LINKS + 1)
    assert ProjectionParams(method="umap").cache_parts() != parts
    monkeypatch.undo()
    monkeypatch.setattr(neighbour_graph_module, "EXACT_GRAPH_UP_TO", 1)
    assert ProjectionParams(method="umap").cache_parts() != parts
    assert "neighbours" not in ProjectionParams(method="pca").cache_parts()
