"""UMAP's k-nearest-neighbour graph for 4,096 rows and more, computed with faiss instead of pynndescent.

umap-learn finds the neighbours of 4,096 rows and more with pynndescent, whose main kernels
hold ctypes pointers and cannot be cached by numba: about 25 s of compiling in every new
process before a 50,000-row map even starts. Loupe computes the same graph (each row's k
nearest rows, itself included, and their distances in the map's metric) here and hands it to
umap-learn as ``precomputed_knn``; the rest of the fit (fuzzy graph, spectral start, layout) is
umap-learn's, unchanged, and its kernels are cached (:mod:`engine.maps.projection`).

Measured at 50,000 real rows (docstring paragraphs, all-MiniLM-L6-v2, k = 15, cosine, two
shared cores; recall against exact lists on every 25th row):

    graph (faiss-cpu 1.15.1)                               seconds   recall@15
    exact, IndexFlatIP                                      18.5      1
    HNSW flat, M 32, build 80, search 64                    10.4      0.994
    HNSW flat, M 24, build 60, search 48                     6.8      0.988
    HNSW flat, M 16, build 40, search 32                     5.3      0.958
    HNSW 8-bit codes, M 16 / 40 / 32, 20 found, exact rank   4.6      0.959  (used)

pynndescent 0.7.0, umap-learn's own search, costs about 25 s of compiling in every process
(its kernels hold ctypes pointers and cannot be cached) before it searches. hnswlib has no
wheel for Python 3.11 (pip finds none), and was last released in 2023. In whole ``loupe
project`` runs the 8-bit graph took 25.1 s in the quietest round against 29.9 s with the flat
M 24 one, trustworthiness 0.853 and 0.841 against umap-learn's 0.858
(tests/bench/results/umap_vs_direct.md). Up to :data:`EXACT_GRAPH_UP_TO`
rows exact neighbours cost about as much as a graph (0.45 s at 10,000 rows), and are used.

The same vectors give the same graph: the HNSW graph is built on one thread (faiss inserts in
parallel in whatever order the threads reach the nodes); searching is per query, the same
whatever the threads. Exact neighbours break ties by row number.
"""

from __future__ import annotations

import importlib.metadata

import numpy as np
import numpy.typing as npt

# Metrics the graph is computed for; any other (manhattan) stays with umap-learn's pynndescent.
GRAPH_METRICS = ("cosine", "correlation", "euclidean")
# Up to this many rows the graph is exact (blocked products); above it, faiss's HNSW.
EXACT_GRAPH_UP_TO = 20_000
# HNSW settings (links per node, candidates kept while building, while searching): the
# fastest measured whose maps kept umap-learn's trustworthiness (see the module's notes).
LINKS = 16
BUILD_DEPTH = 40
SEARCH_DEPTH = 32
# Candidates searched beyond k, ranked by exact distance (the graph's own are 8-bit approximate).
EXTRA_CANDIDATES = 5
# Size of one block of similarities in the exact path (rows × rows, float32).
_BLOCK_BYTES = 64 * 2**20
_CHUNK = 8192

Graph = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]


def graph_recipe() -> str:
    """What decides the graph, for a map's cache key: maps made with another graph differ."""
    try:
        faiss = importlib.metadata.version("faiss-cpu")
    except importlib.metadata.PackageNotFoundError:
        faiss = "missing"
    return (
        f"exact<={EXACT_GRAPH_UP_TO} faiss-cpu-{faiss} hnsw sq8 M={LINKS} efConstruction={BUILD_DEPTH} "
        f"efSearch={SEARCH_DEPTH} +{EXTRA_CANDIDATES} exact-ranked metrics={','.join(GRAPH_METRICS)}"
    )


def computes(metric: str) -> bool:
    """Whether :func:`neighbour_graph` handles ``metric`` (else umap-learn finds the neighbours)."""
    return metric in GRAPH_METRICS


def neighbour_graph(
    vectors: npt.NDArray[np.floating], k: int, metric: str, *, exact_up_to: int = EXACT_GRAPH_UP_TO
) -> Graph:
    """Each row's ``k`` nearest rows (itself usually first) and their ``metric`` distances.

    ``[n, k]`` int64 and ``[n, k]`` float32, nearest first, as umap-learn's ``precomputed_knn``
    takes them. Cosine and correlation distances are 1 - similarity, in [0, 2]; euclidean ones
    are the plain distances.
    """
    if not computes(metric):
        raise ValueError(f"no neighbour graph for metric {metric!r}")
    points = _prepared(vectors, metric)
    inner = metric != "euclidean"
    if len(points) <= exact_up_to:
        indices, scores = _exact(points, k, inner)
    else:
        indices, scores = _hnsw(points, k, inner)
    distances = 1.0 - scores if inner else np.sqrt(np.maximum(-scores, 0.0))
    if inner:
        distances = np.clip(distances, 0.0, 2.0)
    # A row is at distance 0 from itself; float32 rounding (1 - 0.99999994, or the square root
    # of a cancelled difference) would put it slightly away, and umap-learn reads the first
    # non-zero distance as the row's local scale.
    distances[indices == np.arange(len(indices))[:, None]] = 0.0
    return indices.astype(np.int64), np.ascontiguousarray(distances, dtype=np.float32)


def _prepared(vectors: npt.NDArray[np.floating], metric: str) -> npt.NDArray[np.float32]:
    """float32 rows: centred (correlation) and scaled to length 1 (cosine, correlation)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if metric == "correlation":
        matrix = matrix - matrix.mean(axis=1, keepdims=True)
    if metric in ("cosine", "correlation"):
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = np.asarray(matrix / np.where(norms == 0, 1, norms), dtype=np.float32)  # zero rows stay 0
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _exact(points: npt.NDArray[np.float32], k: int, inner: bool) -> Graph:
    """Scores (similarity, or minus the squared distance) of the ``k`` best rows, best first."""
    rows = len(points)
    squares = None if inner else np.einsum("ij,ij->i", points, points)
    block = max(1, _BLOCK_BYTES // (4 * rows))
    indices = np.empty((rows, k), np.int64)
    scores = np.empty((rows, k), np.float32)
    for start in range(0, rows, block):
        scored = points[start : start + block] @ points.T
        if squares is not None:
            scored = 2 * scored - squares[start : start + block, None] - squares[None, :]
        chosen = np.argpartition(scored, rows - k, axis=1)[:, rows - k :]
        values = np.take_along_axis(scored, chosen, axis=1)
        order = np.lexsort((chosen, -values), axis=1)  # best first, ties by row number
        indices[start : start + block] = np.take_along_axis(chosen, order, axis=1)
        scores[start : start + block] = np.take_along_axis(values, order, axis=1)
    return indices, scores


def _hnsw(points: npt.NDArray[np.float32], k: int, inner: bool) -> Graph:
    import faiss

    metric = faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2
    # 8-bit codes make each distance the graph computes 4x less memory to read: the graph is
    # built and searched on them, and the candidates found are then ranked by exact distance.
    index = faiss.IndexHNSWSQ(points.shape[1], faiss.ScalarQuantizer.QT_8bit, LINKS, metric)  # type: ignore[arg-type]  # the stub misnames the enum
    index.hnsw.efConstruction = BUILD_DEPTH
    wanted = min(k + EXTRA_CANDIDATES, len(points))
    index.hnsw.efSearch = max(SEARCH_DEPTH, wanted)
    threads = faiss.omp_get_max_threads()
    # One thread while training and building, so the same vectors give the same graph (see the
    # module's notes); OpenMP keeps the setting per calling thread: other jobs are not slowed.
    faiss.omp_set_num_threads(1)
    try:
        index.train(points)
        index.add(points)
    finally:
        faiss.omp_set_num_threads(threads)
    indices = np.empty((len(points), k), np.int64)
    scores = np.empty((len(points), k), np.float32)
    for start in range(0, len(points), _CHUNK):
        block = points[start : start + _CHUNK]
        found = index.search(block, wanted)[1]
        missing = found < 0  # faiss pads with -1 where the graph gave fewer results
        candidates = np.where(missing, 0, found)
        scored = np.einsum("id,ijd->ij", block, points[candidates])
        if not inner:
            scored = 2 * scored - np.einsum("ij,ij->i", block, block)[:, None]
            scored -= np.einsum("ijd,ijd->ij", points[candidates], points[candidates])
        scored[missing] = -np.inf
        order = np.lexsort((candidates, -scored), axis=1)[:, :k]  # best first, ties by row number
        indices[start : start + _CHUNK] = np.take_along_axis(candidates, order, axis=1)
        scores[start : start + _CHUNK] = np.take_along_axis(scored, order, axis=1)
    short = np.flatnonzero(~np.isfinite(scores).all(axis=1))
    if len(short):  # rows the graph gave fewer than k results: searched exactly, rare
        indices[short], scores[short] = _exact_for_rows(points, short, k, inner)
    return indices, scores


def _exact_for_rows(
    points: npt.NDArray[np.float32], rows: npt.NDArray[np.intp], k: int, inner: bool
) -> Graph:
    scored = points[rows] @ points.T
    if not inner:
        squares = np.einsum("ij,ij->i", points, points)
        scored = 2 * scored - squares[rows, None] - squares[None, :]
    order = np.lexsort((np.broadcast_to(np.arange(len(points)), scored.shape), -scored), axis=1)[:, :k]
    return order.astype(np.int64), np.take_along_axis(scored, order, axis=1).astype(np.float32)
