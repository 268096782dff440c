"""engine.maps.neighbour_index: exact lists up to the threshold, a FAISS HNSW graph above it.

The approximate path is exercised on small inputs by passing a small ``exact_up_to``: real
MiniLM embeddings of the demo's docstrings for recall (what a comparison sees), random vectors
for the properties that hold whatever the data (shape, no row its own neighbour, zero and
duplicate rows, cancellation, the same lists twice).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.errors import BadInputError, JobCancelled
from engine.maps import neighbour_index
from engine.maps.analysis import knn_indices
from engine.maps.neighbour_index import EXACT_NEIGHBOURS_UP_TO, index_kind, nearest
from engine.runtime.jobs import CancelToken

ROWS = 800
SMALL = 200  # the threshold the approximate tests pass, well below their rows


@pytest.fixture(scope="module")
def docstring_vectors(minilm: Any) -> np.ndarray:
    """Real embeddings: all-MiniLM-L6-v2 (last layer) of the demo's stdlib docstrings.

    The shorter ones (up to 160 characters), which keeps embedding them to seconds on two cores.
    """
    from engine.data.demo_data import build_stdlib_dataset
    from engine.model.inference import embed_texts

    texts = [text for text in build_stdlib_dataset(4000).texts if len(text) <= 160][:ROWS]
    assert len(texts) == ROWS
    return embed_texts(minilm, texts).vectors


def random_vectors(rows: int, width: int = 48, seed: int = 0) -> np.ndarray:
    """Clustered random vectors: structure like an embedding's, without a model."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, width))
    return (centres[rng.integers(0, 20, rows)] + 0.6 * rng.normal(size=(rows, width))).astype(np.float32)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float((found[:, :, None] == exact[:, None, :]).any(axis=2).mean())


def no_row_is_its_own_neighbour(found: np.ndarray) -> bool:
    return not (found == np.arange(len(found))[:, None]).any()


def test_exact_up_to_the_threshold_is_knn_indices(docstring_vectors: np.ndarray) -> None:
    lists = nearest(docstring_vectors, 10, exact_up_to=ROWS)
    assert lists.exact
    np.testing.assert_array_equal(lists.indices, knn_indices(docstring_vectors, 10))
    assert index_kind(ROWS, exact_up_to=ROWS) == "exact"


def test_above_the_threshold_an_index_finds_nearly_the_exact_lists(docstring_vectors: np.ndarray) -> None:
    lists = nearest(docstring_vectors, 10, exact_up_to=SMALL)
    exact = knn_indices(docstring_vectors, 10)
    assert not lists.exact
    assert lists.indices.shape == (ROWS, 10) and lists.indices.dtype == np.intp
    assert no_row_is_its_own_neighbour(lists.indices)
    assert ((lists.indices >= 0) & (lists.indices < ROWS)).all()
    assert all(len(set(row)) == 10 for row in lists.indices.tolist())
    assert recall(lists.indices, exact) >= 0.9


def test_index_kind_names_the_library_and_its_settings() -> None:
    approximate = index_kind(ROWS, exact_up_to=SMALL)
    assert approximate != index_kind(ROWS, exact_up_to=ROWS)
    assert approximate.startswith("faiss-") and "hnsw" in approximate
    assert (
        f"M={neighbour_index.LINKS}" in approximate
        and f"efSearch={neighbour_index.SEARCH_DEPTH}" in approximate
    )
    assert index_kind(EXACT_NEIGHBOURS_UP_TO) == "exact"
    assert index_kind(EXACT_NEIGHBOURS_UP_TO + 1) == approximate


def test_the_same_vectors_give_the_same_lists() -> None:
    vectors = random_vectors(2000)
    first = nearest(vectors, 10, exact_up_to=SMALL).indices
    np.testing.assert_array_equal(first, nearest(vectors, 10, exact_up_to=SMALL).indices)


def test_zero_and_duplicate_rows_do_not_crash_nor_list_a_row_as_its_own_neighbour() -> None:
    vectors = random_vectors(1000)
    vectors[:30] = 0.0  # more zero rows than k + 1: a row may not be found first among its copies
    vectors[100:140] = vectors[99]
    lists = nearest(vectors, 10, exact_up_to=SMALL)
    assert lists.indices.shape == (1000, 10)
    assert no_row_is_its_own_neighbour(lists.indices)
    assert all(len(set(row)) == 10 for row in lists.indices.tolist())
    copies = set(range(99, 140))
    assert all(set(lists.indices[row].tolist()) <= copies for row in range(100, 140))


def test_k_is_capped_at_the_other_rows_and_checked() -> None:
    vectors = random_vectors(40)
    lists = nearest(vectors, 100, exact_up_to=10)
    assert lists.indices.shape == (40, 39) and not lists.exact
    assert no_row_is_its_own_neighbour(lists.indices)
    assert all(sorted(row) == sorted(set(range(40)) - {i}) for i, row in enumerate(lists.indices.tolist()))
    with pytest.raises(BadInputError):
        nearest(vectors, 0, exact_up_to=10)
    with pytest.raises(BadInputError):
        nearest(np.full((40, 4), np.nan, np.float32), 5, exact_up_to=10)


def test_a_cancelled_token_stops_the_search_and_progress_is_reported() -> None:
    vectors = random_vectors(9000, width=16)
    token = CancelToken()
    seen: list[tuple[int, int]] = []

    def report(done: int, total: int, message: str = "") -> None:
        seen.append((done, total))
        if done >= total // 2:  # half way: building is done, searching begins
            token.cancel()

    with pytest.raises(JobCancelled):
        nearest(vectors, 10, exact_up_to=SMALL, token=token, report=report)
    assert len(seen) >= 3 and all(total == 2 * len(vectors) for _, total in seen)
    assert seen[-1][0] < 2 * len(vectors)


def test_rows_the_graph_gives_too_few_others_are_searched_exactly() -> None:
    """faiss pads a short result with -1; such a row gets its exact list, and a row missing
    from its own results loses its last result instead."""
    vectors = random_vectors(6, width=4)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    found = np.array(
        [
            [0, 3, 4],  # itself first: dropped
            [2, 5, 0],  # itself absent (duplicates ahead of it): the last result dropped
            [2, -1, -1],  # short: searched exactly
            [3, 1, 2],
            [4, 0, 1],
            [5, 1, -1],  # short once itself is dropped
        ]
    )
    result = neighbour_index._without_self(found, unit.astype(np.float32), 2)
    exact = knn_indices(vectors, 2)
    assert result.tolist()[:2] == [[3, 4], [2, 5]]
    np.testing.assert_array_equal(result[[2, 5]], exact[[2, 5]])
    assert result[3].tolist() == [1, 2] and result[4].tolist() == [0, 1]
