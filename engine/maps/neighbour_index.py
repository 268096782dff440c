"""Every row's k nearest neighbours (cosine) for comparisons: exact up to a size, approximate above.

Up to :data:`EXACT_NEIGHBOURS_UP_TO` rows the lists are exact (:func:`engine.maps.analysis.knn_indices`,
blocked brute force). Above it they come from a FAISS HNSW graph (faiss-cpu, Meta's similarity
search library) over the unit rows with inner product, so cosine ranks exactly as the exact
path ranks it.

CHOICE (measured by tests/bench/compare_at_scale.py, results/compare_at_scale.md)
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.maps.analysis import knn_indices
from engine.runtime.jobs import CancelToken, Report, silent_report

# Up to this many rows the neighbours are exact (brute force in blocks): below it brute force
# is about as fast as building the graph, and exact is what a small comparison should show.
EXACT_NEIGHBOURS_UP_TO = 20_000

# The HNSW graph's settings: links per node, candidates kept while building, and while searching.
# Part of index_kind, so the cache never mixes overlaps computed with different settings.
LINKS = 32
BUILD_DEPTH = 80
SEARCH_DEPTH = 128
# Rows added or searched between two looks at the cancel token.
_CHUNK = 4096


@dataclass(frozen=True)
class NeighbourLists:
    indices: npt.NDArray[np.intp]  # [n, min(k, n - 1)], nearest first, the row itself left out
    exact: bool


def nearest(
    vectors: npt.NDArray[np.floating],
    k: int,
    *,
    exact_up_to: int = EXACT_NEIGHBOURS_UP_TO,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> NeighbourLists:
    """Each row's ``k`` nearest other rows by cosine similarity, nearest first.

    Exact for at most ``exact_up_to`` rows, approximate above (``exact`` says which). The same
    vectors give the same lists. Checks ``token`` and reports progress between chunks of rows.
    Zero rows are at similarity 0 to every row; a row is never its own neighbour, duplicates
    of it may be.
    """
    if len(vectors) <= exact_up_to or _faiss_version() is None:
        return NeighbourLists(knn_indices(vectors, k, token=token, report=report), exact=True)
    unit = _unit_rows(vectors)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise BadInputError(f"k must be a whole number of at least 1, not {k!r}.")
    return NeighbourLists(_hnsw_neighbours(unit, min(int(k), len(unit) - 1), token, report), exact=False)


def index_kind(rows: int, exact_up_to: int = EXACT_NEIGHBOURS_UP_TO) -> str:
    """What :func:`nearest` uses for ``rows`` rows, as a cache key names it (results differ by kind)."""
    version = _faiss_version()
    if rows <= exact_up_to or version is None:
        return "exact"
    return f"faiss-{version} hnsw M={LINKS} efConstruction={BUILD_DEPTH} efSearch={SEARCH_DEPTH} ip"


def _faiss_version() -> str | None:
    """The installed faiss's version without importing it (an index key is asked for often)."""
    for distribution in ("faiss-cpu", "faiss-gpu", "faiss"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _unit_rows(vectors: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Rows scaled to length 1 (zero rows stay zero), C-ordered float32 as faiss takes them."""
    matrix = np.asarray(vectors)
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise BadInputError(f"vectors must be a [n, d] matrix of real numbers, not shape {matrix.shape}.")
    matrix = matrix.astype(np.float32, copy=False)
    if not np.isfinite(matrix).all():
        raise BadInputError("vectors must not contain NaN or infinite values.")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms == 0, 1, norms), dtype=np.float32)


def _hnsw_neighbours(
    unit: npt.NDArray[np.float32], k: int, token: CancelToken | None, report: Report
) -> npt.NDArray[np.intp]:
    import faiss

    rows = len(unit)
    index = faiss.IndexHNSWFlat(unit.shape[1], LINKS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = BUILD_DEPTH
    index.hnsw.efSearch = max(SEARCH_DEPTH, k + 1)
    threads = faiss.omp_get_max_threads()
    # One thread while building: faiss inserts in parallel in whatever order the threads
    # reach the nodes, which changes the graph from run to run; searching is per query, and
    # so the same whatever the threads.
    faiss.omp_set_num_threads(1)
    try:
        for start in range(0, rows, _CHUNK):
            if token is not None:
                token.raise_if_cancelled()
            report(start, 2 * rows, "Building the neighbour index")
            index.add(unit[start : start + _CHUNK])
    finally:
        faiss.omp_set_num_threads(threads)
    found = np.empty((rows, k + 1), np.int64)
    for start in range(0, rows, _CHUNK):
        if token is not None:
            token.raise_if_cancelled()
        report(rows + start, 2 * rows, "Finding neighbours")
        found[start : start + _CHUNK] = index.search(unit[start : start + _CHUNK], k + 1)[1]
    report(2 * rows, 2 * rows, "Finding neighbours")
    return _without_self(found, unit, k)


def _without_self(
    found: npt.NDArray[np.int64], unit: npt.NDArray[np.float32], k: int
) -> npt.NDArray[np.intp]:
    """Each row's first ``k`` results that are not the row itself.

    A row is usually its own first result; where it is not (duplicates ahead of it), the last
    result goes instead. A row the graph gave fewer than k others (faiss pads with -1) is
    searched exactly: rare, and cheap for a few rows.
    """
    rows = np.arange(len(found))[:, None]
    keep = (found != rows) & (found >= 0)
    short = np.flatnonzero(keep.sum(axis=1) < k)
    keep[short] = False
    keep[short, :k] = True  # placeholders, overwritten below
    surplus = keep.sum(axis=1) > k
    keep[surplus, np.argmax(np.cumsum(keep[surplus], axis=1) > k, axis=1)] = False
    result: npt.NDArray[np.intp] = found[keep].reshape(len(found), k).astype(np.intp)
    for row in short:
        similarity = unit @ unit[row]
        similarity[row] = -np.inf
        order = np.lexsort((np.arange(len(unit)), -similarity))
        result[row] = order[:k]
    return result
