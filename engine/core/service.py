"""The engine's API in this process: :class:`EngineService` implements
:class:`~engine.api.protocol.EngineAPI` over the vector-level :class:`~engine.core.engine.Engine`.

It owns the heavy data. An opened dataset, an embedding run (its vectors) and a map (its
coordinates) are held here under short random ids, so a caller (the window, through the engine
process) passes ids and never sends texts or vectors back. Only the most recent
:data:`KEEP_DATASETS` datasets are held, with what was made from them; an id that was dropped
or never existed is a :class:`~engine.errors.LoupeError` in one sentence.

This is the only place that decides where a dataset's embeddings come from (its own ``.npy``
vectors, or the model at a layer) and how a map is scored.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.api.types import (
    AttendRow,
    AttendRows,
    Closed,
    CloseDataset,
    Compare,
    ComparedSide,
    Comparison,
    Embed,
    EmbeddedRun,
    EngineIdentity,
    Faithfulness,
    FindCachedMap,
    FindNeighbours,
    GroupAttention,
    Identify,
    LayerMaps,
    MapLayers,
    MapSample,
    MapScores,
    MaybeMap,
    MaybeProgressive,
    ModelReady,
    Neighbours,
    OpenDataset,
    OpenedDataset,
    PlaceRows,
    Preload,
    ProgressiveMap,
    Project,
    ProjectedMap,
    RowAttention,
    ScoreMap,
    ScoreRows,
    Side,
    Sweep,
    SweepResult,
)
from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.core.identity import identity_of
from engine.core.progressive import ProgressiveMaps
from engine.core.runs import EmbeddingRun, precomputed_run
from engine.data.datasets import Dataset
from engine.errors import BadInputError, LoupeError
from engine.maps.projection import ProjectionParams
from engine.model.models import DEFAULT_MODEL, Pooling, pooling_named
from engine.runtime.jobs import CancelToken, Report, report_phase, silent_report

# How many other models a comparison keeps loaded besides the engine's own (each holds its
# weights in memory; comparing against a third model unloads the least recently used).
KEEP_SIDE_ENGINES = 2

# How many opened datasets are held at once (the window shows one; the one before stays for
# a job still finishing on it). Opening another drops the oldest and what was made from it.
KEEP_DATASETS = 2

_GONE = "The engine no longer holds this {kind} (a newer dataset took its place); open the dataset again."


@dataclass
class _Held:
    """A dataset and the runs and maps made from it (dropped together)."""

    dataset: Dataset
    runs: dict[str, tuple[EmbeddedRun, EmbeddingRun]] = field(default_factory=dict)
    maps: dict[str, ProjectedMap] = field(default_factory=dict)


class EngineService:
    """:class:`EngineAPI` in this process (the engine process's child hosts one of these)."""

    def __init__(
        self,
        cache: Cache,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        *,
        pooling: Pooling | None = None,
        allow_download: bool = False,
        trust_remote_code: bool = False,
        precision: str = "auto",
    ) -> None:
        # ``engine`` stays public for callers that need the vector-level methods (benchmarks,
        # ``loupe cache``); everything the front ends do goes through the API's methods.
        self.engine = Engine(
            cache,
            model=model,
            device=device,
            pooling=pooling,
            allow_download=allow_download,
            trust_remote_code=trust_remote_code,
            precision=precision,
        )
        self._options = {"allow_download": allow_download, "trust_remote_code": trust_remote_code}
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._side_engines: OrderedDict[tuple[str, str | None], Engine] = OrderedDict()
        self._lock = threading.Lock()  # calls arrive on several threads at once
        self._progressive = ProgressiveMaps(self._register_finished_run)

    @property
    def cache(self) -> Cache:
        return self.engine.cache

    # -- the registries ------------------------------------------------------------------

    def _dataset(self, dataset_id: str) -> _Held:
        with self._lock:
            held = self._held.get(dataset_id)
        if held is None:
            raise LoupeError(_GONE.format(kind="dataset"))
        return held

    def _run(self, run_id: str) -> tuple[_Held, EmbeddedRun, EmbeddingRun]:
        with self._lock:
            for held in self._held.values():
                if run_id in held.runs:
                    record, run = held.runs[run_id]
                    return held, record, run
        raise LoupeError(_GONE.format(kind="embedding run"))

    def _map(self, map_id: str) -> tuple[_Held, ProjectedMap]:
        with self._lock:
            for held in self._held.values():
                if map_id in held.maps:
                    return held, held.maps[map_id]
        raise LoupeError(_GONE.format(kind="map"))

    def _register_map(
        self, held: _Held, run_id: str, params: ProjectionParams, coords: npt.NDArray[np.float32]
    ) -> ProjectedMap:
        made = ProjectedMap(_new_id(), run_id, params, coords)
        with self._lock:
            held.maps[made.map_id] = made
        return made

    # -- identity --------------------------------------------------------------------------

    def identify(
        self, request: Identify, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> EngineIdentity:
        return identity_of(self.engine)

    def _engine_for(self, side: Side) -> Engine:
        """The engine that computes ``side``: this one for its own model and pooling, else
        another on the same cache and device (kept for the next call, loaded when first used)."""
        if side.model is None and side.pooling is None:
            return self.engine
        model = self.engine.model_name if side.model is None else side.model
        pooling = pooling_named(side.pooling)
        if model == self.engine.model_name and pooling in (None, self.engine.spec.pooling):
            return self.engine
        key = (model, pooling)
        with self._lock:
            engine = self._side_engines.pop(key, None)
            if engine is None:
                engine = Engine(
                    self.cache,
                    model=model,
                    device=self.engine.device,
                    pooling=pooling,
                    precision=self.engine.requested_precision,
                    **self._options,
                )
            self._side_engines[key] = engine  # the most recently used last
            while len(self._side_engines) > KEEP_SIDE_ENGINES:
                self._side_engines.popitem(last=False)
        return engine

    def preload(
        self, request: Preload, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> ModelReady:
        return ModelReady(self.engine.loaded_model().precision)

    # -- datasets ----------------------------------------------------------------------------

    def open_dataset(
        self, request: OpenDataset, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> OpenedDataset:
        if token is not None:
            token.raise_if_cancelled()
        if request.demo_rows is not None:
            from engine.data.demo_data import build_stdlib_dataset

            dataset = build_stdlib_dataset(max_rows=int(request.demo_rows))
        elif request.path is not None:
            from engine.data.datasets import load_dataset

            dataset = load_dataset(
                Path(request.path),
                text_column=request.text_column,
                label_column=request.label_column,
                check_in_child=True,
            )
        else:
            raise BadInputError("Name a dataset to open, or ask for the demo's.")
        dataset_id = _new_id()
        with self._lock:
            self._held[dataset_id] = _Held(dataset)
            while len(self._held) > KEEP_DATASETS:
                self._held.popitem(last=False)
        # The table goes to the caller; its own vectors (if any) stay here with the runs.
        return OpenedDataset(
            dataset_id, replace(dataset, vectors=None), own_vectors=dataset.vectors is not None
        )

    def close_dataset(
        self, request: CloseDataset, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> Closed:
        with self._lock:
            self._held.pop(request.dataset_id, None)
        return Closed(request.dataset_id)

    # -- embeddings and maps -------------------------------------------------------------------

    def embed(
        self, request: Embed, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> EmbeddedRun:
        held = self._dataset(request.dataset_id)
        dataset = held.dataset
        # The one place this is decided: a dataset that came with vectors is mapped with them.
        if dataset.vectors is not None:
            run = precomputed_run(dataset.vectors, report)
        else:
            run = self.engine.embeddings(dataset.texts, layer=request.layer, token=token, report=report)
        return self._register_run(held, request.dataset_id, request.layer, run)

    def _register_run(self, held: _Held, dataset_id: str, layer: int, run: EmbeddingRun) -> EmbeddedRun:
        rows, width = run.vectors.shape
        record = EmbeddedRun(
            run_id=_new_id(),
            dataset_id=dataset_id,
            layer=layer,
            rows=rows,
            width=width,
            computed=run.computed,
            from_cache=run.from_cache,
            truncated=run.truncated,
            input_id=run.input_id,
        )
        with self._lock:
            held.runs[record.run_id] = (record, run)
        return record

    def _register_finished_run(self, dataset_id: str, layer: int, run: EmbeddingRun) -> EmbeddedRun:
        return self._register_run(self._dataset(dataset_id), dataset_id, layer, run)

    def find_cached_map(
        self, request: FindCachedMap, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> MaybeMap:
        held = self._dataset(request.dataset_id)
        if held.dataset.vectors is not None:
            return MaybeMap(None)  # its map is named by its vectors: embed first
        coords = self.engine.cached_map(held.dataset.texts, request.params, layer=request.layer)
        if coords is None:
            return MaybeMap(None)
        # No run: the map was found from the texts alone (scores need the embeddings).
        return MaybeMap(self._register_map(held, "", request.params, coords))

    def map_sample(
        self, request: MapSample, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> MaybeProgressive:
        dataset = self._dataset(request.dataset_id).dataset
        started = self._progressive.start(self.engine, request, dataset, token=token, report=report)
        return MaybeProgressive(started)

    def place_rows(
        self, request: PlaceRows, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> ProgressiveMap:
        return self._progressive.place(self.engine, request.progressive_id, token=token, report=report)

    def project(
        self, request: Project, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> ProjectedMap:
        held, _record, run = self._run(request.run_id)
        coords = self.engine.projection(
            run.vectors, request.params, input_id=run.input_id, token=token, report=report
        )
        return self._register_map(held, request.run_id, request.params, coords)

    def _map_with_run(self, map_id: str) -> tuple[_Held, ProjectedMap, EmbeddingRun]:
        held, shown = self._map(map_id)
        if not shown.run_id:
            raise LoupeError("This map came from the cache without its embeddings: embed the dataset first.")
        _held, _record, run = self._run(shown.run_id)
        return held, shown, run

    def score_map(
        self, request: ScoreMap, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> MapScores:
        from engine.maps.analysis import trust_neighbours, trustworthiness

        held, shown, run = self._map_with_run(request.map_id)
        report(0, 2, "Clustering")
        clustering = self.engine.clusters(shown.coords, held.dataset.texts, token=token)
        if token is not None:
            token.raise_if_cancelled()
        report(1, 2, "Trustworthiness")
        trust = trustworthiness(run.vectors, shown.coords, k=trust_neighbours(len(shown.coords)))
        report(2, 2, "Trustworthiness")
        return MapScores(
            map_id=request.map_id,
            labels=clustering.labels,
            names=dict(clustering.names),
            trustworthiness=float(trust),
            centres=tuple(clustering.centres(shown.coords)),
        )

    def score_rows(
        self, request: ScoreRows, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> Faithfulness:
        _held, shown, run = self._map_with_run(request.map_id)
        values = self.engine.faithfulness(
            run.vectors, shown.coords, request.k, input_id=run.input_id, token=token, report=report
        )
        return Faithfulness(request.map_id, values)

    def find_neighbours(
        self, request: FindNeighbours, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> Neighbours:
        from engine.maps.analysis import nearest_neighbours

        _held, _record, run = self._run(request.run_id)
        indices, distances = nearest_neighbours(run.vectors, request.row, request.k)
        return Neighbours(request.row, indices, distances)

    def map_layers(
        self, request: MapLayers, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> LayerMaps:
        held = self._dataset(request.dataset_id)
        maps = self.engine.layer_maps(held.dataset.texts, request.params, token=token, report=report)
        return LayerMaps(tuple(maps))

    def sweep(
        self, request: Sweep, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> SweepResult:
        _held, _record, run = self._run(request.run_id)
        return self.engine.sweep(
            run,
            request.base,
            (request.x_name, request.x_values),
            (request.y_name, request.y_values),
            token=token,
            report=report,
        )

    # -- attention -------------------------------------------------------------------------------

    def attend_row(
        self, request: AttendRow, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> RowAttention:
        texts = self._dataset(request.dataset_id).dataset.texts
        _check_row(request.row, len(texts))
        engine = self._engine_for(Side(model=request.model))
        return RowAttention(request.row, engine.attention(texts[request.row]))

    def attend_rows(
        self, request: AttendRows, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> GroupAttention:
        texts = self._dataset(request.dataset_id).dataset.texts
        for row in request.rows:
            _check_row(row, len(texts))
        statistics = self.engine.attention_statistics(
            [texts[row] for row in request.rows], token=token, report=report
        )
        return GroupAttention(tuple(request.rows), statistics)

    # -- comparing two embeddings ----------------------------------------------------------------

    def compare(
        self, request: Compare, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> Comparison:
        from engine.core.comparing import Comparer, overlap_by_label
        from engine.maps.comparison import displacement
        from engine.maps.layer_maps import align_to

        held = self._dataset(request.dataset_id)
        dataset = held.dataset
        if dataset.vectors is not None:
            raise BadInputError(
                "This dataset came with its own vectors: a comparison embeds it with two models."
            )
        request.params.validate(rows=len(dataset.texts))
        if isinstance(request.k, bool) or not isinstance(request.k, int) or request.k < 1:
            raise BadInputError(f"k must be a whole number of at least 1, not {request.k!r}.")
        engines = (self._engine_for(request.base), self._engine_for(request.against))
        sides = (request.base, request.against)
        for side, engine in zip(sides, engines, strict=True):  # before any work: one sentence, nothing loaded
            engine.spec.layer_index(side.layer)
        runs: list[tuple[EmbeddedRun, EmbeddingRun]] = []
        coords: list[npt.NDArray[np.float32]] = []
        for step, (side, engine) in enumerate(zip(sides, engines, strict=True)):
            name = "Base" if step == 0 else "Against"
            run = engine.embeddings(
                dataset.texts,
                layer=side.layer,
                token=token,
                report=report_phase(report, step, 5, f"{name}: embedding"),
            )
            runs.append((self._register_run(held, request.dataset_id, side.layer, run), run))
        for step, (engine, (_record, run)) in enumerate(zip(engines, runs, strict=True), start=2):
            name = "Base" if step == 2 else "Against"
            phase = report_phase(report, step, 5, f"{name}: projecting")
            projected = engine.projection(
                run.vectors, request.params, input_id=run.input_id, token=token, report=phase
            )
            coords.append(projected)
        aligned = align_to(coords[1], coords[0])
        scores = Comparer(self.cache).space_scores(
            runs[0][1], runs[1][1], request.k, token=token, report=report_phase(report, 4, 5, "Comparing")
        )
        compared = tuple(
            ComparedSide(
                side, identity_of(engine), record, self._register_map(held, record.run_id, request.params, xy)
            )
            for side, engine, (record, _run), xy in zip(
                sides, engines, runs, (coords[0], aligned), strict=True
            )
        )
        return Comparison(
            dataset_id=request.dataset_id,
            base=compared[0],
            against=compared[1],
            params=request.params,
            k=request.k,
            displacement=displacement(coords[0], aligned),
            overlap=scores.overlap,
            mean_overlap=float(scores.overlap.mean()),
            cka=scores.cka,
            overlap_by_label=overlap_by_label(
                scores.overlap, dataset.labels if dataset.label_column else None
            ),
            exact_neighbours=scores.exact,
            from_cache=not scores.computed,
        )

    # -- the engine's own life -----------------------------------------------------------------------

    def reconfigured(
        self, model: str, device: str, pooling: str | None, precision: str | None = None
    ) -> EngineService:
        """An engine for another model, device, pooling or precision (None: this one's), on the
        same cache (this one is closed)."""
        service = EngineService(
            self.cache,
            model,
            device,
            pooling=pooling_named(pooling),
            precision=self.engine.requested_precision if precision is None else precision,
            **self._options,
        )
        self.close()
        return service

    def close(self) -> None:
        """Forget every held dataset (the cache belongs to whoever opened it)."""
        with self._lock:
            self._held.clear()
            self._side_engines.clear()
        self._progressive.clear()


def _new_id() -> str:
    return secrets.token_hex(6)


def _check_row(row: int, rows: int) -> None:
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < rows:
        raise BadInputError(f"Row {row} is not a row of this dataset (it has {rows}).")
