"""A parameter sweep: a grid of small maps over two parameters, each labelled with how faithful it is.

Every cell is one projection of the same vectors with the base parameters plus that cell's two
values, made through ``project_cell`` (the engine's cached projection, so a cell computed once
is never computed again), then scored with scikit-learn's trustworthiness: how many of each
point's nearest neighbours on the map were near it in the embedding space too (1 = all).

Trustworthiness costs rows² time and memory, so it is computed on a fixed random subsample of
at most :data:`TRUST_ROWS` rows (the same rows for every cell, chosen by the base seed): the
score of a 2,000-row subsample moves by about 0.001 between subsamples, far less than it moves
between parameter choices.

Cells run on a thread pool, not a process pool. Measured on two cores, a 3 x 3 UMAP grid
(n_neighbors 5/15/50 x min_dist 0/0.1/0.5) of the 3,926 demo rows: one after another 51.0 s,
two threads 39.2 s, two spawned processes 30.6 s (start-up included). Processes are faster,
but only threads can call ``project_cell`` as given: the engine's cached projection holds the
cache connection, so with threads every cell is read from and written to the cache, and a
sweep run again costs nothing. Threads also need no pickling of the vectors, no spawn-safe
entry point in the frozen desktop app, and share numba's compiled kernels.

UMAP fits in two threads at once are safe only with a thread-safe numba threading layer (tbb
or OpenMP, both tried first by numba); where only its ``workqueue`` layer exists, concurrent
parallel kernels abort the process, so a UMAP sweep then runs one cell at a time.
"""

from __future__ import annotations

import functools
import importlib
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError, JobCancelled
from engine.maps.projection import ProjectionParams, Value, param_spec, project
from engine.runtime.jobs import CancelToken, Report, silent_report

TRUST_ROWS = 2000
TRUST_NEIGHBOURS = 10
ProjectCell = Callable[[ProjectionParams], npt.NDArray[np.float32]]
Axis = tuple[str, Sequence[Value]]


@dataclass(frozen=True)
class SweepCell:
    """One map of the grid: its parameters, coordinates [rows, 2] and trustworthiness in [0, 1]."""

    x: Value
    y: Value
    params: ProjectionParams
    coords: npt.NDArray[np.float32]
    trustworthiness: float


@dataclass(frozen=True)
class SweepResult:
    """The grid: ``cells[j][i]`` has ``axis_x`` value ``i`` and ``axis_y`` value ``j``."""

    x_name: str
    x_values: tuple[Value, ...]
    y_name: str
    y_values: tuple[Value, ...]
    cells: tuple[tuple[SweepCell, ...], ...]
    trust_rows: int  # how many rows trustworthiness was computed on

    def best(self) -> SweepCell:
        """The most trustworthy cell (the first of equals, in reading order)."""
        return max((cell for row in self.cells for cell in row), key=lambda cell: cell.trustworthiness)


def sweep(
    vectors: npt.NDArray[np.float32],
    base: ProjectionParams,
    axis_x: Axis,
    axis_y: Axis,
    *,
    workers: int = 2,
    token: CancelToken | None = None,
    report: Report = silent_report,
    project_cell: ProjectCell | None = None,
) -> SweepResult:
    """Map ``vectors`` once per pair of values of ``axis_x`` × ``axis_y`` (``(name, values)``).

    ``project_cell(params)`` must return the projection of ``vectors`` with ``params``; the
    default calls :func:`~engine.maps.projection.project`. It is called once per cell, from up to
    ``workers`` threads at a time, so it must be thread-safe (``Engine.projection`` is).
    Every cell's parameters are checked before any work starts (:class:`BadInputError`, one
    sentence). A plain job: ``token`` is checked before each cell starts and a cancelled sweep
    raises :class:`JobCancelled` once the cells already running finish (a fit cannot stop
    halfway); ``report`` gets ``(cells done, cells, message)``.
    """
    if vectors.ndim != 2:
        raise BadInputError(f"A sweep maps a [rows, width] matrix, not shape {vectors.shape}.")
    if workers < 1:
        raise BadInputError(f"A sweep needs at least 1 worker, not {workers}.")
    base.validate(rows=vectors.shape[0])
    x_name, x_values = _axis(base, axis_x)
    y_name, y_values = _axis(base, axis_y)
    if x_name == y_name:
        raise BadInputError(f"The two axes of a sweep must be different parameters, not both {x_name}.")
    grid = {
        (i, j): base.with_options(**{x_name: x, y_name: y})
        for (j, y), (i, x) in itertools.product(enumerate(y_values), enumerate(x_values))
    }
    for params in grid.values():
        params.validate(rows=vectors.shape[0])
    compute: ProjectCell = project_cell or (lambda params: project(vectors, params))
    sample = _trust_sample(vectors.shape[0], base.seed)
    metric = str(base.settings().get("metric", "cosine"))

    def run_cell(params: ProjectionParams) -> tuple[npt.NDArray[np.float32], float]:
        if token is not None:
            token.raise_if_cancelled()
        coords = compute(params)
        if coords.shape != (len(vectors), 2):
            raise ValueError(f"project_cell returned shape {coords.shape} for {len(vectors)} rows")
        return coords, _trustworthiness(vectors[sample], coords[sample], metric)

    total = len(grid)
    if base.method == "umap" and not _numba_is_thread_safe():
        workers = 1
    report(0, total, "Sweeping")
    with ThreadPoolExecutor(max_workers=min(workers, total), thread_name_prefix="loupe-sweep") as pool:
        futures = {pool.submit(run_cell, params): key for key, params in grid.items()}
        results = _collect(futures, pool, token, report, grid, x_name, y_name)
    cells = tuple(
        tuple(SweepCell(x, y, grid[i, j], *results[i, j]) for i, x in enumerate(x_values))
        for j, y in enumerate(y_values)
    )
    return SweepResult(x_name, x_values, y_name, y_values, cells, trust_rows=len(sample))


def _collect(
    futures: dict[Future[tuple[npt.NDArray[np.float32], float]], tuple[int, int]],
    pool: ThreadPoolExecutor,
    token: CancelToken | None,
    report: Report,
    grid: dict[tuple[int, int], ProjectionParams],
    x_name: str,
    y_name: str,
) -> dict[tuple[int, int], tuple[npt.NDArray[np.float32], float]]:
    """Each cell's (coords, trustworthiness) as it finishes; the first failure stops the rest."""
    results: dict[tuple[int, int], tuple[npt.NDArray[np.float32], float]] = {}
    pending = set(futures)
    while pending:
        finished, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
        for future in finished:
            error = future.exception()
            if error is not None:
                pool.shutdown(wait=False, cancel_futures=True)
                raise error
            key = futures[future]
            results[key] = future.result()
            values = grid[key].settings()
            report(len(results), len(futures), f"Sweep: {x_name}={values[x_name]}, {y_name}={values[y_name]}")
        if token is not None and token.cancelled:
            pool.shutdown(wait=False, cancel_futures=True)
            raise JobCancelled
    return results


def _axis(base: ProjectionParams, axis: Axis) -> tuple[str, tuple[Value, ...]]:
    name, values = axis
    spec = param_spec(base.method, name)
    if not values:
        raise BadInputError(f"The sweep over {name} has no values.")
    parsed = tuple(spec.parse(name, value) for value in values)
    if len(set(parsed)) != len(parsed):
        raise BadInputError(f"The sweep over {name} lists a value twice: {list(parsed)}.")
    return name, parsed


@functools.cache
def _numba_is_thread_safe() -> bool:
    """Whether numba will find the tbb or OpenMP threading layer (it prefers them, in that order)."""
    for layer in ("tbbpool", "omppool"):
        try:
            importlib.import_module(f"numba.np.ufunc.{layer}")
        except ImportError:
            continue
        return True
    return False


def _trust_sample(rows: int, seed: int) -> npt.NDArray[np.intp]:
    if rows <= TRUST_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, TRUST_ROWS, replace=False))


def _trustworthiness(vectors: npt.NDArray[np.float32], coords: npt.NDArray[np.float32], metric: str) -> float:
    from sklearn.manifold import trustworthiness

    # sklearn needs fewer neighbours than half the rows.
    neighbours = min(TRUST_NEIGHBOURS, (len(vectors) - 1) // 2)
    return float(trustworthiness(vectors, coords, n_neighbors=neighbours, metric=metric))
