"""The one map flow: dataset → embeddings → PCA preview → map → scores, as partial results.

With ``progressive`` (the window), a large dataset first gets a map of a spread sample of its
rows and then, step by step, the other rows placed on it as they are embedded
(:class:`ProgressiveMap`); the run of every row comes with the last step, and the real map
follows as usual. The engine decides whether it is worth it (its row threshold, a cached map).

The window, ``loupe project``/``loupe export`` and the demo all run this generator against an
:class:`~engine.api.protocol.EngineAPI` (in this process or the engine's child process) and
show or write each step as it arrives. It is a plain function, tested without a window; the
window runs it on a job lane and hands each step to the GUI thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from engine.api.protocol import EngineAPI
from engine.api.types import (
    Embed,
    EmbeddedRun,
    FindCachedMap,
    MapSample,
    MapScores,
    PlaceRows,
    ProgressiveMap,
    Project,
    ProjectedMap,
    ScoreMap,
)
from engine.maps.projection import ProjectionParams
from engine.runtime.jobs import CancelToken, Report, silent_report


@dataclass(frozen=True)
class Preview:
    """A quick PCA map to show while the asked-for map is computed (never replaces it)."""

    map: ProjectedMap


MapStep = EmbeddedRun | ProgressiveMap | Preview | ProjectedMap | MapScores


def map_flow(
    api: EngineAPI,
    dataset_id: str,
    params: ProjectionParams,
    *,
    layer: int = -1,
    run: EmbeddedRun | None = None,
    preview: bool = True,
    progressive: bool = False,
    scores: bool = True,
    cached_first: bool = False,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> Iterator[MapStep]:
    """Each step of making the map of ``dataset_id`` with ``params``, as it is ready.

    ``run``: embeddings already made (a new map of the same rows skips the embedding step).
    ``preview``: a PCA map first when the asked-for method is slower. ``progressive``: for a
    large dataset, a sample's map and then the other rows placed as they are embedded, instead
    of the embedding step and the preview (see the module). ``scores``: clusters and
    trustworthiness last. ``cached_first``: look the map up from the texts alone first, so a
    warm ``loupe project`` never reads embeddings or loads the model (only without ``scores``,
    which need the embeddings anyway).
    """
    params.validate()

    def next_step() -> None:  # a cached step returns at once, so check between steps too
        if token is not None:
            token.raise_if_cancelled()

    next_step()
    if cached_first and run is None and not scores:
        found = api.find_cached_map(FindCachedMap(dataset_id, params, layer), token=token, report=report).map
        if found is not None:
            yield found
            return
    if progressive and run is None:
        next_step()
        started = api.map_sample(MapSample(dataset_id, params, layer), token=token, report=report).progressive
        if started is not None:
            yield started
            while started.run is None:
                next_step()
                started = api.place_rows(PlaceRows(started.progressive_id), token=token, report=report)
                yield started
            run = started.run
            yield run
            preview = False  # every row is on the progressive map already
    if run is None:
        next_step()
        run = api.embed(Embed(dataset_id, layer), token=token, report=report)
        yield run
    if preview and params.method != "pca":
        next_step()
        quick = api.project(Project(run.run_id, ProjectionParams(method="pca")), token=token, report=report)
        yield Preview(quick)
    next_step()
    shown = api.project(Project(run.run_id, params), token=token, report=report)
    yield shown
    if scores:
        next_step()
        yield api.score_map(ScoreMap(shown.map_id), token=token, report=report)
