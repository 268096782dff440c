"""Clusters, cluster names, neighbours and map quality (engine.maps.analysis), on synthetic data
whose right answers are known."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.neighbors import NearestNeighbors

from engine.errors import BadInputError, JobCancelled
from engine.maps import analysis
from engine.maps.analysis import (
    cluster_keywords,
    cluster_names,
    clusters,
    faithfulness,
    knn_indices,
    nearest_neighbours,
    trustworthiness,
)
from engine.runtime.jobs import CancelToken

CENTRES = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
OUTLIERS = np.array([[200.0, 200.0], [-200.0, 150.0], [150.0, -220.0]])


def blobs(sizes: tuple[int, ...], seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    parts = [rng.normal(centre, 1.0, size=(size, 2)) for centre, size in zip(CENTRES, sizes, strict=False)]
    return np.concatenate(parts).astype(np.float32)


def circle_data(rows: int = 300, width: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Model vectors whose cosine neighbours are exactly the 2-D map's Euclidean neighbours:
    points on a circle (the map), rotated into ``width`` dimensions and each scaled by a random
    positive factor (which cosine distance ignores and Euclidean distance would not)."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, rows)
    coords = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    rotation, _ = np.linalg.qr(rng.normal(size=(width, width)))
    vectors = np.zeros((rows, width))
    vectors[:, :2] = coords
    vectors = (vectors @ rotation.T) * rng.uniform(0.5, 5.0, size=(rows, 1))
    return vectors.astype(np.float32), coords.astype(np.float32)


# Clusters -------------------------------------------------------------------------------------


def test_three_separated_blobs_are_three_clusters_and_far_points_are_noise() -> None:
    coords = np.concatenate([blobs((100, 100, 100)), OUTLIERS.astype(np.float32)])
    result = clusters(coords)
    assert result.count == 3
    blob_labels = result.labels[:300].reshape(3, 100)
    majority = [np.bincount(row[row >= 0]).argmax() for row in blob_labels]
    assert sorted(majority) == [0, 1, 2]
    for row, label in zip(blob_labels, majority, strict=True):
        assert np.mean(row == label) > 0.95
    assert list(result.labels[300:]) == [-1, -1, -1]
    assert np.all(result.probabilities[300:] == 0)
    assert result.min_cluster_size == 5 and result.min_samples == 5  # the defaults for 303 rows


def test_clusters_are_numbered_by_size_and_repeatable() -> None:
    coords = blobs((60, 140, 90))
    first, second = clusters(coords), clusters(coords)
    assert np.array_equal(first.labels, second.labels)
    assert np.mean(first.labels[60:200] == 0) > 0.95  # the largest blob is cluster 0
    assert np.mean(first.labels[200:] == 1) > 0.95
    assert np.mean(first.labels[:60] == 2) > 0.95


def test_fewer_rows_than_a_cluster_needs_are_all_noise() -> None:
    result = clusters(blobs((4,)))
    assert list(result.labels) == [-1] * 4
    assert result.count == 0 and result.noise_share == 1.0
    assert clusters(blobs((40,)), min_cluster_size=5, min_samples=41).count == 0


def test_large_maps_are_clustered_in_a_child_process_with_the_same_labels(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    coords = blobs((60, 140, 90))
    here = clusters(coords)
    monkeypatch.setattr(analysis, "ISOLATE_ABOVE_ROWS", len(coords) - 1)  # as if the map were large
    with caplog.at_level(logging.INFO, logger="engine.runtime.isolated"):
        there = clusters(coords)
    assert "hdbscan ran in a child process" in caplog.text
    assert np.array_equal(here.labels, there.labels)
    assert np.array_equal(here.probabilities, there.probabilities)


def test_default_min_cluster_size_grows_with_the_data() -> None:
    assert analysis.default_min_cluster_size(10) == 5
    assert analysis.default_min_cluster_size(3926) == 39
    assert analysis.default_min_cluster_size(50_000) == 500


@pytest.mark.parametrize(
    ("coords", "options", "message"),
    [
        (np.zeros((10, 2)), {"min_cluster_size": 1}, "min_cluster_size must be at least 2, not 1."),
        (np.zeros((10, 2)), {"min_samples": 0}, "min_samples must be at least 1, not 0."),
        (np.zeros((10, 2)), {"min_cluster_size": 2.5}, "min_cluster_size must be a whole number, not 2.5."),
        (np.zeros((10, 3)), {}, "coords must be a [n, 2] matrix, not shape (10, 3)."),
        (np.zeros(10), {}, "coords must be a [n, 2] matrix, not shape (10,)."),
        (np.array([[0.0, np.nan]] * 10), {}, "coords must not contain NaN or infinite values."),
        (np.zeros((0, 2)), {}, "coords must have at least 1 rows, not 0."),
    ],
)
def test_bad_cluster_parameters_say_what_is_wrong(
    coords: np.ndarray, options: dict[str, object], message: str
) -> None:
    with pytest.raises(BadInputError) as caught:
        clusters(coords, **options)  # type: ignore[arg-type]
    assert str(caught.value) == message


# Keywords -------------------------------------------------------------------------------------

CAT_TEXTS = [
    "The cat sat on the mat and purred.",
    "A cat chases mice in the garden.",
    "My cat sleeps all day; the cat is lazy.",
    "Feed the cat twice a day, said the vet.",
]
TAX_TEXTS = [
    "File your income tax return before April.",
    "The tax office audits returns every year.",
    "Tax deductions lower the income tax you owe.",
    "A tax refund arrives 6 weeks after filing.",
]
NOISE_TEXTS = ["Weather is sunny today.", "Trains run late on Sundays."]


def test_keywords_pick_each_clusters_own_words() -> None:
    texts = CAT_TEXTS + TAX_TEXTS + NOISE_TEXTS
    labels = np.array([0] * 4 + [1] * 4 + [-1] * 2)
    keywords = cluster_keywords(texts, labels, top=3)
    assert set(keywords) == {0, 1}  # noise gets no keywords
    assert keywords[0][0] == "cat"
    assert keywords[1][0] == "tax"
    assert "income" in keywords[1]
    assert all(word not in {"the", "a", "is", "6"} for words in keywords.values() for word in words)
    names = cluster_names(texts, labels)
    assert names[0].startswith("cat · ") and names[1].startswith("tax · ")
    assert names[0].count(" · ") == 2


def test_keywords_weigh_words_by_how_much_they_belong_to_one_class() -> None:
    # Per class: apple 2, banana 1 | banana 1, cherry 1; mean words per class A = 2.5.
    # apple 2/3·ln(1 + 2.5/2) > banana 1/3·ln(2.25); cherry ½·ln(1 + 2.5) > banana ½·ln(2.25),
    # where plain term frequency would tie and put banana first.
    keywords = cluster_keywords(["apple apple banana", "banana cherry"], np.array([0, 1]))
    assert keywords == {0: ["apple", "banana"], 1: ["cherry", "banana"]}


def test_keywords_keep_identifiers_whole_and_skip_numbers() -> None:
    texts = ["Call os.path.join with file_name.", "os.path.join joins file_name 2024 parts.", "Other text."]
    keywords = cluster_keywords(texts, np.array([0, 0, 1]), top=2)
    assert keywords[0] == ["file_name", "os.path.join"]


def test_keywords_for_no_clusters_or_no_words() -> None:
    assert cluster_keywords(["a b", "c d"], np.array([-1, -1])) == {}
    assert cluster_keywords(["the and", "of it"], np.array([0, 1])) == {0: [], 1: []}
    assert cluster_names(["the and", "of it"], np.array([0, 1])) == {0: "cluster 0", 1: "cluster 1"}


@pytest.mark.parametrize(
    ("labels", "top", "message"),
    [
        (np.array([0, 1, 2]), 4, "labels must have one entry per text (2), not shape (3,)."),
        (np.array([0.0, 1.0]), 4, "labels must be whole numbers (-1 for noise), not float64."),
        (np.array([0, 1]), 0, "top must be at least 1, not 0."),
    ],
)
def test_bad_keyword_parameters_say_what_is_wrong(labels: np.ndarray, top: int, message: str) -> None:
    with pytest.raises(BadInputError) as caught:
        cluster_keywords(["one text", "another text"], labels, top)
    assert str(caught.value) == message


# Neighbours -----------------------------------------------------------------------------------


def test_nearest_neighbours_match_brute_force_cosine() -> None:
    vectors = np.random.default_rng(1).normal(size=(200, 32)).astype(np.float32)
    reference = NearestNeighbors(metric="cosine", algorithm="brute").fit(vectors)
    for row in (0, 57, 199):
        indices, distances = nearest_neighbours(vectors, row, k=10)
        ref_distances, ref_indices = reference.kneighbors(vectors[[row]], n_neighbors=11)
        assert row not in indices
        assert list(indices) == [i for i in ref_indices[0] if i != row][:10]
        np.testing.assert_allclose(distances, ref_distances[0][ref_distances[0] > 1e-6][:10], atol=1e-5)
        assert distances.dtype == np.float32 and np.all(np.diff(distances) >= 0)


def test_knn_indices_match_brute_force_cosine_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analysis, "_BLOCK_BYTES", 4 * 300 * 7)  # 7 rows a block, the last one short
    vectors = np.random.default_rng(2).normal(size=(300, 24)).astype(np.float32)
    seen: list[tuple[int, int]] = []
    found = knn_indices(vectors, 8, report=lambda done, total, message="": seen.append((done, total)))
    expected = NearestNeighbors(metric="cosine", algorithm="brute").fit(vectors).kneighbors(n_neighbors=8)[1]
    assert found.shape == (300, 8)
    assert np.array_equal(found, expected)
    assert seen[0] == (0, 300) and seen[-1] == (300, 300) and len(seen) == 300 // 7 + 2


def test_neighbours_of_small_data_and_zero_vectors() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.1], [-1.0, 0.0]], dtype=np.float32)
    assert knn_indices(vectors, 10).shape == (4, 3)  # k is capped at the other rows
    indices, distances = nearest_neighbours(vectors, 1, k=3)
    np.testing.assert_allclose(distances, [1.0, 1.0, 1.0])  # a zero vector is 1 from everything
    assert list(indices) == [0, 2, 3]
    indices, distances = nearest_neighbours(vectors, 0, k=3)
    assert list(indices) == [2, 1, 3]
    np.testing.assert_allclose(distances, [1 - 1 / np.sqrt(1.01), 1.0, 2.0], atol=1e-6)


def test_knn_indices_stops_when_cancelled() -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        knn_indices(np.ones((10, 3), np.float32), 2, token=token)


@pytest.mark.parametrize(
    ("row", "k", "message"),
    [
        (10, 3, "row must be below the number of rows (10), not 10."),
        (-1, 3, "row must be at least 0, not -1."),
        (0, 0, "k must be at least 1, not 0."),
    ],
)
def test_bad_neighbour_parameters_say_what_is_wrong(row: int, k: int, message: str) -> None:
    with pytest.raises(BadInputError) as caught:
        nearest_neighbours(np.ones((10, 3), np.float32), row, k)
    assert str(caught.value) == message


def test_neighbours_need_two_rows() -> None:
    with pytest.raises(BadInputError, match=r"^vectors must have at least 2 rows, not 1\.$"):
        knn_indices(np.ones((1, 3), np.float32), 1)


# Map quality ----------------------------------------------------------------------------------


def test_faithfulness_is_one_for_a_map_that_keeps_neighbourhoods_and_low_for_a_shuffled_one() -> None:
    vectors, coords = circle_data()
    kept = faithfulness(vectors, coords, k=10)
    assert kept.shape == (300,) and kept.dtype == np.float32
    assert np.all(kept == 1.0)
    shuffled = faithfulness(vectors, np.random.default_rng(3).permutation(coords), k=10)
    assert shuffled.mean() < 0.1
    np.testing.assert_allclose(shuffled * 10, np.round(shuffled * 10), atol=1e-6)  # shares of k


def test_trustworthiness_is_higher_for_a_good_map_than_a_shuffled_one() -> None:
    vectors, coords = circle_data()
    good = trustworthiness(vectors, coords, k=10)
    bad = trustworthiness(vectors, np.random.default_rng(3).permutation(coords), k=10)
    assert 0.99 < good <= 1.0
    assert 0.0 <= bad < 0.7
    sampled = trustworthiness(vectors, coords, k=5, max_rows=100, seed=1)
    assert sampled == trustworthiness(vectors, coords, k=5, max_rows=100, seed=1)
    assert 0.99 < sampled <= 1.0


def test_map_quality_parameters_say_what_is_wrong() -> None:
    vectors, coords = circle_data(rows=40)
    with pytest.raises(BadInputError, match=r"^vectors and coords must have the same rows, not 40 and 39\.$"):
        faithfulness(vectors, coords[:39])
    with pytest.raises(BadInputError, match=r"^k must be less than half the rows compared \(30\), not 15\.$"):
        trustworthiness(vectors, coords, k=15, max_rows=30)
    with pytest.raises(BadInputError, match=r"^max_rows must be at least 3, not 2\.$"):
        trustworthiness(vectors, coords, max_rows=2)


def test_the_engine_passes_its_cancel_token_to_the_clustering_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancel (or closing the window) stops a large map's clustering; the key ignores the token."""
    from engine.cache.store import Cache
    from engine.core.engine import Engine

    coords = blobs((60, 140, 90))
    texts = [f"row {i}" for i in range(len(coords))]
    engine = Engine(Cache(None))
    monkeypatch.setattr(analysis, "ISOLATE_ABOVE_ROWS", len(coords) - 1)
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        engine.clusters(coords, texts, token=token)
    done = engine.clusters(coords, texts, token=CancelToken())
    assert np.array_equal(done.labels, clusters(coords).labels)


def test_cluster_name_positions_are_the_median_of_each_clusters_points() -> None:
    from engine.core.runs import Clustering

    rng = np.random.default_rng(3)
    labels = rng.integers(-1, 7, 5000).astype(np.int32)
    coords = rng.normal(size=(5000, 2)).astype(np.float32)
    names = {cluster: f"cluster {cluster}" for cluster in range(7)}
    expected = [(*np.median(coords[labels == c], axis=0).tolist(), names[c]) for c in range(7)]
    assert Clustering(labels, names).centres(coords) == [tuple(e) for e in expected]


def test_the_engine_clusters_a_map_of_text_in_any_language() -> None:
    """Clusters of rows in many scripts (and a lone surrogate from a broken file) work and are cached.

    The clusters' cache key digests the texts; it once encoded them as ASCII and failed on the
    first accented character ("Clusters and trustworthiness failed unexpectedly")."""
    from engine.cache.store import Cache
    from engine.core.engine import Engine

    coords = blobs((40, 50, 30))
    scripts = [
        "Größe „Straße“",
        "Привет мир",
        "日本語のテキスト",
        "مرحبا بالعالم",
        "emoji 🦊 “quotes”",
        "bad \ud800",
    ]
    texts = [f"{scripts[i % len(scripts)]} {i}" for i in range(len(coords))]
    result = Engine(Cache(None)).clusters(coords, texts)
    assert result.labels.shape == (len(coords),) and result.names


def test_input_id_names_any_list_of_strings_and_tells_lists_apart() -> None:
    from engine.core.runs import input_id

    assert input_id(["é", "\ud800"]) == input_id(["é", "\ud800"])
    assert input_id(["ab", "c"]) != input_id(["a", "bc"])  # a boundary is part of the digest
    assert input_id(["a\nb"]) != input_id(["a", "b"])
