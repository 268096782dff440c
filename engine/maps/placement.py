"""Place new rows on an existing map from their nearest neighbours among the rows already mapped.

The "fit on a sample, place the rest" method: a map is fitted on some rows (a spread sample of a
large dataset), and every other row is put at the similarity-weighted mean of the map positions
of its ``k`` nearest mapped rows by cosine similarity. A row whose direction equals a mapped
row's (a duplicate text) lands exactly on it. Each new row is placed on its own, so the result
for a row does not depend on which other rows are placed with it, or in what order.

The neighbours are exact (similarities by blocked matrix products) up to
:data:`EXACT_PLACEMENT_UP_TO` mapped rows, and come from a faiss HNSW graph over the mapped rows
above it (the same library and settings as :mod:`engine.maps.neighbour_index`, whose lists are
each row's neighbours within one set, where placement needs new rows' neighbours among other
rows). Exact costs new × mapped products: at 20,000 mapped rows of 384 numbers that is about 15
GFLOP per 1,000 new rows, a few seconds for 50,000 new rows on two cores, while 1M new rows
among 50,000 mapped ones would be 38 TFLOP; the graph is built once per :class:`RowPlacer` on
one thread (so the same vectors give the same graph) and searched per query.

Pure numpy and faiss, no state shared between placers: any job lane may use one. The long calls
take the usual keyword-only ``token`` and ``report`` and check the token once per block.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.runtime.jobs import CancelToken, Report, silent_report

FloatArray = npt.NDArray[np.float32]

# How many mapped neighbours a new row's position is averaged from when the caller does not say.
DEFAULT_NEIGHBOURS = 10
# Up to this many mapped rows the neighbours are exact; above it they come from an HNSW graph.
EXACT_PLACEMENT_UP_TO = 20_000
# A new row this close (cosine similarity) to a mapped row is that row's duplicate and lands on it.
_SAME_DIRECTION = 1.0 - 1e-6
# Size of one block of similarities in the exact path (new rows × mapped rows, float32).
_BLOCK_BYTES = 32 * 2**20
# The HNSW graph's settings: links per node, candidates kept while building, and while searching.
_LINKS = 32
_BUILD_DEPTH = 80
_SEARCH_DEPTH = 64
# New rows searched in the graph between two looks at the cancel token.
_SEARCH_CHUNK = 4096


def placement_recipe() -> dict[str, object]:
    """What placed positions depend on (for a cache key): the neighbours, the graph's settings
    and the faiss version that builds it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        faiss = version("faiss-cpu")
    except PackageNotFoundError:
        faiss = "missing"  # exact neighbours at any size
    return {
        "k": DEFAULT_NEIGHBOURS,
        "exact_up_to": EXACT_PLACEMENT_UP_TO,
        "graph": {"links": _LINKS, "build": _BUILD_DEPTH, "search": _SEARCH_DEPTH, "faiss": faiss},
    }


class RowPlacer:
    """Places new rows on a map fitted on ``mapped_vectors`` (row i drawn at ``mapped_coords[i]``).

    Built once and used for every later chunk of rows, so a graph over the mapped rows is built
    once. Holds a normalised float32 copy of the mapped vectors (and the graph above
    :data:`EXACT_PLACEMENT_UP_TO` rows). Not shared between threads while :meth:`place` runs.
    """

    def __init__(
        self,
        mapped_vectors: npt.NDArray[np.floating],
        mapped_coords: npt.NDArray[np.floating],
        *,
        k: int = DEFAULT_NEIGHBOURS,
        exact_up_to: int = EXACT_PLACEMENT_UP_TO,
    ) -> None:
        self._unit = _unit_rows("mapped_vectors", mapped_vectors)
        coords = np.asarray(mapped_coords)
        if coords.ndim != 2 or len(coords) != len(self._unit) or not np.issubdtype(coords.dtype, np.number):
            raise BadInputError(
                f"mapped_coords must hold one position per mapped row ({len(self._unit)}), "
                f"not shape {coords.shape}."
            )
        if not np.isfinite(coords).all():
            raise BadInputError("mapped_coords must not contain NaN or infinite values.")
        if len(self._unit) == 0:
            raise BadInputError("Rows can only be placed on a map of at least one row.")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise BadInputError(f"k must be a whole number of at least 1, not {k!r}.")
        self._coords = coords.astype(np.float64)
        self._k = min(int(k), len(self._unit))
        self._graph: Any = None
        if len(self._unit) > max(exact_up_to, self._k) and importlib.util.find_spec("faiss") is not None:
            self._graph = _hnsw_graph(self._unit, self._k)

    @property
    def exact(self) -> bool:
        """Whether the neighbours are exact (no graph)."""
        return self._graph is None

    def place(
        self,
        new_vectors: npt.NDArray[np.floating],
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> FloatArray:
        """Positions ``[len(new_vectors), 2]`` (float32) for ``new_vectors`` on the map."""
        unit = _unit_rows("new_vectors", new_vectors, width=self._unit.shape[1])
        rows = len(unit)
        placed = np.empty((rows, self._coords.shape[1]), np.float32)
        block = max(1, _BLOCK_BYTES // (4 * len(self._unit))) if self._graph is None else _SEARCH_CHUNK
        for start in range(0, rows, block):
            if token is not None:
                token.raise_if_cancelled()
            report(start, rows, "Placing rows")
            stop = min(start + block, rows)
            neighbours, similarity = self._neighbours(unit[start:stop])
            placed[start:stop] = self._weighted_positions(neighbours, similarity)
        report(rows, rows, "Placing rows")
        return placed

    def _neighbours(self, unit: FloatArray) -> tuple[npt.NDArray[np.intp], FloatArray]:
        """Each row's ``k`` nearest mapped rows, nearest first (ties by index), and similarities."""
        if self._graph is not None:
            similarity, found = self._graph.search(unit, self._k)
            # faiss pads with -1 where the graph gave fewer than k: rare, searched exactly.
            short = np.flatnonzero((found < 0).any(axis=1))
            if len(short):
                found[short], similarity[short] = _most_similar(unit[short] @ self._unit.T, self._k)
            return found.astype(np.intp), similarity.astype(np.float32)
        return _most_similar(unit @ self._unit.T, self._k)

    def _weighted_positions(self, neighbours: npt.NDArray[np.intp], similarity: FloatArray) -> FloatArray:
        # Negative similarities count as none; a row with no positive similarity at all (a zero
        # vector, or one unlike every mapped row) takes the plain mean of its neighbours.
        weights = np.clip(similarity.astype(np.float64), 0.0, None)
        weights[weights.sum(axis=1) == 0] = 1.0
        # A duplicate of a mapped row lands on it (on the mean of its duplicates, if several).
        same = similarity >= _SAME_DIRECTION
        has_same = same.any(axis=1)
        weights[has_same] = same[has_same]
        weights /= weights.sum(axis=1, keepdims=True)
        positions: FloatArray = (
            (weights[:, :, None] * self._coords[neighbours]).sum(axis=1).astype(np.float32)
        )
        return positions


def place_rows(
    mapped_vectors: npt.NDArray[np.floating],
    mapped_coords: npt.NDArray[np.floating],
    new_vectors: npt.NDArray[np.floating],
    k: int = DEFAULT_NEIGHBOURS,
    *,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> FloatArray:
    """Positions ``[len(new_vectors), 2]`` (float32) for ``new_vectors`` on a map where mapped row
    i is drawn at ``mapped_coords[i]``: each at the similarity-weighted mean of the positions of
    its ``k`` nearest mapped rows (cosine). Deterministic; see the module's notes."""
    rows = np.asarray(new_vectors)
    if rows.ndim == 2 and len(rows) == 0:
        return np.empty((0, 2), np.float32)  # nothing to place: the map need not be checked
    return RowPlacer(mapped_vectors, mapped_coords, k=k).place(rows, token=token, report=report)


def _unit_rows(name: str, vectors: npt.NDArray[np.floating], width: int | None = None) -> FloatArray:
    """Rows scaled to length 1 (zero rows stay zero), C-ordered float32."""
    matrix = np.asarray(vectors)
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise BadInputError(f"{name} must be a [n, d] matrix of real numbers, not shape {matrix.shape}.")
    if width is not None and matrix.shape[1] != width:
        raise BadInputError(
            f"{name} must have {width} numbers a row like the mapped rows, not {matrix.shape[1]}."
        )
    matrix = matrix.astype(np.float32, copy=False)
    if not np.isfinite(matrix).all():
        raise BadInputError(f"{name} must not contain NaN or infinite values.")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms == 0, 1, norms), dtype=np.float32)


def _most_similar(similarity: FloatArray, k: int) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Per row, the columns of the ``k`` largest values, largest first (ties by column), and those values."""
    columns = similarity.shape[1]
    chosen = np.argpartition(similarity, columns - k, axis=1)[:, columns - k :]
    values = np.take_along_axis(similarity, chosen, axis=1)
    order = np.lexsort((chosen, -values), axis=1)
    return np.take_along_axis(chosen, order, axis=1), np.take_along_axis(values, order, axis=1)


def _hnsw_graph(unit: FloatArray, k: int) -> Any:  # faiss ships no type hints
    import faiss

    graph = faiss.IndexHNSWFlat(unit.shape[1], _LINKS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = _BUILD_DEPTH
    graph.hnsw.efSearch = max(_SEARCH_DEPTH, k)
    threads = faiss.omp_get_max_threads()
    # One thread while building: faiss inserts in parallel in whatever order the threads reach
    # the nodes, so the graph could change from run to run. Searching is per query (the same
    # whatever the threads) and keeps them. OpenMP keeps the setting per calling thread.
    faiss.omp_set_num_threads(1)
    try:
        graph.add(unit)
    finally:
        faiss.omp_set_num_threads(threads)
    return graph
