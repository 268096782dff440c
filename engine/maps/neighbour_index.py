"""Every row's k nearest neighbours (cosine) for comparisons: exact up to a size, approximate above.

Up to :data:`EXACT_NEIGHBOURS_UP_TO` rows the lists are exact (blocked brute force,
:func:`engine.maps.analysis.knn_indices`). Above it they come from an HNSW graph built by faiss
(faiss-cpu: Meta's similarity search library, maintained and released through 2026, wheels for
Linux, macOS and Windows) over the unit rows with inner product, so that cosine ranks rows as the
exact path ranks them.

Why faiss's HNSW: measured at 50,000 real rows (docstring paragraphs, all-MiniLM-L6-v2 layer 1 and
last layer, k = 10, a fresh process each, 2 cores; tests/bench/results/compare_at_scale.md):

    method (settings)                               seconds: layer 1, last   recall@10
    exact (knn_indices)                             14.5, 14.1               1, 1
    faiss 1.15.1 HNSW (M 32, build 80, search 64)    9.6,  9.1               0.987, 0.994
    usearch 2.26.6 HNSW (the same, float32)         19.9, 15.8               0.988, 0.994
    pynndescent 0.7.0 (30 neighbours)               24.8, 23.6               0.988, 0.993
    faiss IVF (4 sqrt(n) lists, 32 probed)           4.7,  4.3               0.897, 0.927

faiss's HNSW was the fastest at the recall the others reach. pynndescent (its numba code compiled
on first use in each process, included) was slower than exact. IVF was faster but misses one
neighbour in ten, which moved the per-row overlaps by 0.024 on average, against 0.003 for HNSW.
hnswlib, last released in 2023, has no wheel for this Python. From the graph's lists, the
comparison's mean overlap was 0.1506 against 0.1526 from exact lists, per-row overlaps
correlated at 0.995.

The threshold: brute force grows as n², the graph about as n log n. On the last layer exact was
faster up to 20,000 rows (2.2 s against 2.6 s); the graph was 1.2x faster at 30,000, 1.4x at
40,000 and 1.6x at 50,000 (some 5x at 200,000 by that growth: extrapolated, not measured). Up to
40,000 rows exact costs at most about 10 s a space on two cores, and exact is what a comparison
should show when it is that cheap.

The same vectors give the same lists: the graph is built on one thread (see
:func:`_hnsw_neighbours`). The token is checked, and progress reported, every 4,096 rows added
or searched.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.maps.analysis import knn_indices
from engine.runtime.jobs import CancelToken, Report, silent_report

# Up to this many rows the neighbours are exact (brute force in blocks): see the module's notes.
EXACT_NEIGHBOURS_UP_TO = 40_000

# The HNSW graph's settings: links per node, candidates kept while building, and while searching.
# Part of index_kind, so the cache never mixes overlaps computed with different settings.
LINKS = 32
BUILD_DEPTH = 80
SEARCH_DEPTH = 64
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
    if _exact_for(len(vectors), exact_up_to):
        return NeighbourLists(knn_indices(vectors, k, token=token, report=report), exact=True)
    unit = _unit_rows(vectors)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise BadInputError(f"k must be a whole number of at least 1, not {k!r}.")
    return NeighbourLists(_hnsw_neighbours(unit, min(int(k), len(unit) - 1), token, report), exact=False)


def index_kind(rows: int, exact_up_to: int = EXACT_NEIGHBOURS_UP_TO) -> str:
    """What :func:`nearest` uses for ``rows`` rows, as a cache key names it (results differ by kind)."""
    if _exact_for(rows, exact_up_to):
        return "exact"
    return f"faiss-{_faiss_version()} hnsw M={LINKS} efConstruction={BUILD_DEPTH} efSearch={SEARCH_DEPTH} ip"


def _exact_for(rows: int, exact_up_to: int) -> bool:
    """Exact at or below the threshold, for fewer than 3 rows (no graph to build), and where
    faiss is not installed (a broken install is slower, not wrong)."""
    return rows <= max(exact_up_to, 2) or _faiss_version() is None


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
    # One thread while building: faiss inserts in parallel in whatever order the threads reach
    # the nodes, so the graph (and a few lists) could change from run to run. Searching is per
    # query, the same whatever the threads, and is most of the time, so it keeps them. OpenMP
    # keeps this setting per calling thread: another job's faiss call is not slowed.
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
