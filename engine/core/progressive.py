"""A large dataset's map while it is embedded: a spread sample's map first, then the other rows
placed on it as they are embedded, until the real map of every row replaces it.

Above :func:`progressive_above_rows` rows (:data:`PROGRESSIVE_ABOVE_ROWS`, or the environment
variable :data:`ABOVE_ROWS_VARIABLE`), :meth:`ProgressiveMaps.start` embeds a sample of the rows
spread evenly through the file (one in :data:`SAMPLE_SHARE`, from :data:`LEAST_SAMPLE_ROWS` to
:data:`MOST_SAMPLE_ROWS`), fits the asked-for map on it (PCA instead where the method cannot map
so few rows, such as a perplexity above the sample's size) and returns it, the other rows NaN.
Each :meth:`ProgressiveMaps.place` then embeds about a :data:`STEPS`-th of the rest (in a shuffle
seeded by the map's seed, so each step fills in the whole map rather than one end of the file)
and puts those rows at the similarity-weighted mean of their nearest sampled rows
(:mod:`engine.maps.placement`). The last one hands back the run of every row, assembled from
the steps' vectors, so the real map needs no second pass over the cache.

Every row is embedded through :meth:`Engine.embeddings` and so cached per row as usual: a
cancelled progressive map loses at most a batch. A map already in the cache, or a dataset that
brought its own vectors, gets no progressive map (``start`` returns None).
"""

from __future__ import annotations

import math
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.api.types import EmbeddedRun, MapSample, ProgressiveMap
from engine.core.engine import Engine
from engine.core.runs import EmbeddingRun, input_id
from engine.data.datasets import Dataset
from engine.errors import BadInputError, LoupeError
from engine.maps.placement import RowPlacer
from engine.maps.projection import ProjectionParams, project
from engine.runtime.jobs import CancelToken, Report, silent_report

# Datasets with more rows than this get a progressive map in the window. Below it embedding
# every row takes under half a minute on two cores (about 600 rows/s in float32), and the PCA
# preview after it is soon enough.
PROGRESSIVE_ABOVE_ROWS = 20_000
# Overrides the threshold (a whole number of rows): for tests, and for anyone who wants the
# progressive map sooner or never.
ABOVE_ROWS_VARIABLE = "LOUPE_PROGRESSIVE_ABOVE_ROWS"
# The sample: one row in SAMPLE_SHARE, at least LEAST and at most MOST rows. 5,000 rows embed in
# about 8 s on two cores, and a map of them is enough to place a million rows on.
SAMPLE_SHARE = 10
LEAST_SAMPLE_ROWS = 100
MOST_SAMPLE_ROWS = 5_000
# The other rows arrive in about this many steps (each step's coordinates cross to the window).
STEPS = 10
# Progressive maps held at once (one per dataset being opened; a finished one is dropped).
_KEEP = 2

RegisterRun = Callable[[str, int, EmbeddingRun], EmbeddedRun]


def progressive_above_rows() -> int:
    """The row threshold: the environment's :data:`ABOVE_ROWS_VARIABLE` if it is a whole number."""
    try:
        return max(0, int(os.environ.get(ABOVE_ROWS_VARIABLE, PROGRESSIVE_ABOVE_ROWS)))
    except ValueError:
        return PROGRESSIVE_ABOVE_ROWS


def sample_size(rows: int) -> int:
    """How many rows the first map is fitted on (at most half of them)."""
    return min(MOST_SAMPLE_ROWS, max(LEAST_SAMPLE_ROWS, rows // SAMPLE_SHARE), rows // 2)


def spread_order(rows: int, seed: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The sample (evenly spaced through the rows: a file sorted by topic or date is covered end
    to end) and the other rows in a shuffle seeded by ``seed``."""
    sample = np.unique(np.linspace(0, rows - 1, sample_size(rows)).round().astype(np.intp))
    rest = np.setdiff1d(np.arange(rows, dtype=np.intp), sample, assume_unique=True)
    return sample, rest[np.random.default_rng(seed).permutation(len(rest))]


@dataclass
class _Progress:
    """One progressive map: the rows in the order they are placed, and what is known so far."""

    progressive_id: str
    dataset_id: str
    layer: int
    params: ProjectionParams
    texts: Sequence[str]
    order: npt.NDArray[np.intp]  # the sample, then the rest
    placed: int
    step_rows: int
    vectors: npt.NDArray[np.float32]  # [rows, width]; a row's values are set once it is embedded
    coords: npt.NDArray[np.float32]  # [rows, 2]; NaN until a row is placed
    placer: RowPlacer
    counts: list[int]  # computed, from the cache, truncated

    def shown(self, run: EmbeddedRun | None = None) -> ProgressiveMap:
        # A copy: later steps write into this state's coordinates, never into a map handed out.
        total = len(self.coords)
        return ProgressiveMap(
            self.progressive_id, self.dataset_id, self.params, self.coords.copy(), self.placed, total, run
        )


class ProgressiveMaps:
    """The progressive maps an :class:`~engine.core.service.EngineService` is making, by id,
    each with the service's ``engine``.

    ``register_run(dataset_id, layer, run)`` registers the finished run of every row with the
    service. Calls may come from several threads; one map's steps come one after another.
    """

    def __init__(self, register_run: RegisterRun) -> None:
        self._register_run = register_run
        self._held: OrderedDict[str, _Progress] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Let go of every progressive map (each holds vectors as large as its run's)."""
        with self._lock:
            self._held.clear()

    def start(
        self,
        engine: Engine,
        request: MapSample,
        dataset: Dataset,
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> ProgressiveMap | None:
        """The sample's map, or None where a progressive map is not worth it (see the module)."""
        request.params.validate()
        rows, texts = len(dataset.texts), dataset.texts
        if dataset.vectors is not None or rows <= progressive_above_rows():
            return None
        if engine.cached_map(texts, request.params, layer=request.layer) is not None:
            return None  # a warm map is shown at once by the usual flow
        sample, rest = spread_order(rows, request.params.seed)

        def sample_progress(done: int, total: int, message: str = "") -> None:
            report(done, rows, f"Embedding a sample of {len(sample):,} rows")

        run = engine.embeddings(
            [texts[i] for i in sample], layer=request.layer, token=token, report=sample_progress
        )
        if token is not None:
            token.raise_if_cancelled()
        report(len(sample), rows, f"Mapping a sample of {len(sample):,} rows")
        sample_coords = project(run.vectors, _sample_params(request.params, len(sample)))
        vectors = np.zeros((rows, run.vectors.shape[1]), np.float32)
        vectors[sample] = run.vectors
        coords = np.full((rows, 2), np.nan, np.float32)
        coords[sample] = sample_coords
        progress = _Progress(
            progressive_id=secrets.token_hex(6),
            dataset_id=request.dataset_id,
            layer=request.layer,
            params=request.params,
            texts=texts,
            order=np.concatenate([sample, rest]),
            placed=len(sample),
            step_rows=max(1, math.ceil(len(rest) / STEPS)),
            vectors=vectors,
            coords=coords,
            placer=RowPlacer(run.vectors, sample_coords),
            counts=[run.computed, run.from_cache, run.truncated],
        )
        with self._lock:
            self._held[progress.progressive_id] = progress
            while len(self._held) > _KEEP:
                self._held.popitem(last=False)
        return progress.shown()

    def place(
        self,
        engine: Engine,
        progressive_id: str,
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> ProgressiveMap:
        """The next step's rows embedded and placed; with ``run`` set once every row is."""
        with self._lock:
            progress = self._held.get(progressive_id)
        if progress is None:
            raise LoupeError("The engine no longer holds this progressive map; open the dataset again.")
        every = len(progress.coords)
        rows = progress.order[progress.placed : progress.placed + progress.step_rows]
        done_before = progress.placed
        report(done_before, every, "Placing rows")  # at once: the sample's map is on show already

        def overall(done: int, total: int, message: str = "") -> None:
            report(done_before + done, every, "Placing rows")

        try:
            run = engine.embeddings(
                [progress.texts[i] for i in rows], layer=progress.layer, token=token, report=overall
            )
            placed = progress.placer.place(run.vectors, token=token)
        except BaseException:
            # Cancelled or failed: no flow comes back to this map (a new one starts its own), and
            # its vectors are as large as the run's. What was embedded is in the cache.
            with self._lock:
                self._held.pop(progressive_id, None)
            raise
        progress.vectors[rows] = run.vectors
        progress.coords[rows] = placed
        progress.placed += len(rows)
        counts = (run.computed, run.from_cache, run.truncated)
        progress.counts = [before + now for before, now in zip(progress.counts, counts, strict=True)]
        report(progress.placed, every, "Placing rows")
        if progress.placed < every:
            return progress.shown()
        with self._lock:
            self._held.pop(progressive_id, None)
        computed, from_cache, truncated = progress.counts
        every_row = EmbeddingRun(
            progress.vectors,
            computed=computed,
            from_cache=from_cache,
            truncated=truncated,
            input_id=input_id(engine.row_keys(progress.texts, progress.layer)),
        )
        return progress.shown(self._register_run(progress.dataset_id, progress.layer, every_row))


def _sample_params(params: ProjectionParams, rows: int) -> ProjectionParams:
    """The asked-for map's parameters for the sample, or PCA with its seed where they cannot map
    that few rows (a t-SNE perplexity above them)."""
    try:
        params.validate(rows=rows)
    except BadInputError:
        return ProjectionParams(method="pca", seed=params.seed)
    return params
