"""The engine's API: one method per request, each ``(request, *, token, report) -> result``.

This class is the only place the API is written. :mod:`engine.api.methods` reads it to build the
method table that the process proxy, the worker's dispatch and the wire's allowed types come
from, so a method cannot exist in one and not in another. Implementations:
:class:`engine.core.service.EngineService` (in this process) and
:class:`engine.process.proxy.EngineProcess` (a child process, for the desktop).

Every method may be called from any thread; long ones report progress through ``report`` and
stop soon after ``token`` is cancelled (raising :class:`~engine.errors.JobCancelled`). Errors a
user can cause are :class:`~engine.errors.LoupeError` with one plain sentence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from engine.api.types import (
    AttendRow,
    AttendRows,
    Closed,
    CloseDataset,
    Compare,
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
    Sweep,
    SweepResult,
)
from engine.runtime.jobs import CancelToken, Report, silent_report

if TYPE_CHECKING:
    from engine.cache.store import Cache


@runtime_checkable
class EngineAPI(Protocol):
    """What the window, the command line and the demo ask of an engine."""

    @property
    def cache(self) -> Cache:
        """This process's connection to the engine's cache (for the status bar and ``loupe cache``)."""
        ...

    def identify(
        self, request: Identify, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> EngineIdentity:
        """The model this engine computes with (resolved, never loaded)."""
        ...

    def preload(
        self, request: Preload, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> ModelReady:
        """Load the model now; its compute precision."""
        ...

    def open_dataset(
        self, request: OpenDataset, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> OpenedDataset:
        """Read a dataset (or build the demo's) and hold it under a new id."""
        ...

    def close_dataset(
        self, request: CloseDataset, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> Closed:
        """Forget a dataset and what was made from it (unknown ids are fine: nothing to do)."""
        ...

    def embed(
        self, request: Embed, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> EmbeddedRun:
        """Embed a dataset's rows (missing rows only; the rest from the cache)."""
        ...

    def find_cached_map(
        self, request: FindCachedMap, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> MaybeMap:
        """A dataset's map straight from the cache, without embeddings or the model."""
        ...

    def map_sample(
        self, request: MapSample, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> MaybeProgressive:
        """A large dataset's first map: a spread sample embedded and mapped (None below the
        threshold, for a cached map, or a dataset with its own vectors)."""
        ...

    def place_rows(
        self, request: PlaceRows, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> ProgressiveMap:
        """The next rows of a progressive map embedded and placed; ``run`` set once all are."""
        ...

    def project(
        self, request: Project, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> ProjectedMap:
        """Project a run to 2-D."""
        ...

    def score_map(
        self, request: ScoreMap, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> MapScores:
        """A map's clusters, their names and its trustworthiness."""
        ...

    def score_rows(
        self, request: ScoreRows, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> Faithfulness:
        """Per-row faithfulness of a map."""
        ...

    def find_neighbours(
        self, request: FindNeighbours, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> Neighbours:
        """A row's nearest neighbours in model space."""
        ...

    def map_layers(
        self, request: MapLayers, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> LayerMaps:
        """Every layer's map, aligned."""
        ...

    def sweep(
        self, request: Sweep, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> SweepResult:
        """A grid of maps over two parameters."""
        ...

    def attend_row(
        self, request: AttendRow, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> RowAttention:
        """One row's attention maps (interactive: well under a second, even while jobs run)."""
        ...

    def attend_rows(
        self, request: AttendRows, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> GroupAttention:
        """Attention statistics of a group of rows."""
        ...

    def compare(
        self, request: Compare, *, token: CancelToken | None = None, report: Report = silent_report
    ) -> Comparison:
        """Two embeddings of a dataset's rows side by side: both maps (the against side's aligned
        onto the base's), per-row displacement and neighbour overlap, CKA and overlap per label."""
        ...

    def reconfigured(
        self, model: str, device: str, pooling: str | None, precision: str | None = None
    ) -> EngineAPI:
        """An engine for another model, device, pooling or precision (None: this one's), on the
        same cache (this one is closed)."""
        ...

    def close(self) -> None:
        """Stop what this engine runs (its child process, if any); finished work is in the cache."""
        ...
