"""The window's work, as operations: each says what it asks the engine and what its outcome does.

Every job talks to the engine through :class:`~engine.api.protocol.EngineAPI` (ids, never
vectors or texts) and returns or yields the API's results; its handlers change the
:class:`~desktop.model.document.AppModel` (whose rules drop stale results: a map of another
run, scores of another map) or hand a result to the one view that shows it (attention,
neighbours, the sweep grid). Built on the GUI thread, where the model is read; the job
closes over plain values only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from desktop.model.document import AppModel, LabelCodes, Source
from desktop.operations.operation import Operation
from engine.api.flow import MapStep, Preview, map_flow
from engine.api.protocol import EngineAPI
from engine.api.types import (
    AttendRow,
    AttendRows,
    EmbeddedRun,
    EngineIdentity,
    Faithfulness,
    FindNeighbours,
    GroupAttention,
    Identify,
    LayerMaps,
    MapLayers,
    MapScores,
    Neighbours,
    OpenDataset,
    OpenedDataset,
    ProgressiveMap,
    ProjectedMap,
    RowAttention,
    ScoreRows,
    Sweep,
    SweepResult,
)
from engine.data.column_codes import value_codes
from engine.errors import LoupeError
from engine.maps.projection import ProjectionParams
from engine.runtime.jobs import CancelToken, Report

Notify = Callable[[str], object]  # a line for the status bar


def open_dataset(api: EngineAPI, model: AppModel, source: Source, notify: Notify) -> Operation:
    """Open ``source`` in the engine, then the map flow: embeddings, PCA preview, map, scores
    (for a large dataset, a sample's map and the other rows placed as they are embedded first).

    The model is cleared now (a new dataset: nothing of the last applies any more) and filled
    as each step arrives. Key "map": a newer dataset or Apply supersedes it.
    """
    request = OpenDataset(
        path=source.path,
        text_column=source.text_column,
        label_column=source.label_column,
        demo_rows=source.demo_rows,
    )
    params, layer = model.params, model.engine.layer
    model.open(source)

    def job(*, token: CancelToken, report: Report) -> Iterator[OpenedDataset | LabelCodes | MapStep]:
        report(0, 1, f"Reading {source.name}")
        opened = api.open_dataset(request, token=token, report=report)
        yield opened
        yield LabelCodes(opened.dataset_id, *value_codes(opened.dataset.labels))
        yield from map_flow(
            api, opened.dataset_id, params, layer=layer, progressive=True, token=token, report=report
        )

    return Operation(f"Embedding {source.name}", job, lane="model", key="map").partial(
        lambda step: deliver_map_step(model, step, notify)
    )


def remap(api: EngineAPI, model: AppModel, params: ProjectionParams, notify: Notify) -> Operation:
    """Apply: a new map of the current run with ``params`` (from the cache when it is there),
    then its scores. Key "map": the newest Apply wins."""
    run = model.run
    assert run is not None, "remap needs the dataset's embeddings"
    model.set_params(params)

    def job(*, token: CancelToken, report: Report) -> Iterator[MapStep]:
        return map_flow(api, run.dataset_id, params, run=run, preview=False, token=token, report=report)

    name = f"{params.method.upper()} layout"
    return Operation(name, job, lane="compute", key="map").partial(
        lambda step: deliver_map_step(model, step, notify)
    )


def deliver_map_step(model: AppModel, step: object, notify: Notify) -> None:
    """One step of the map flow into the model (GUI thread); the model drops a stale one."""
    if isinstance(step, OpenedDataset):
        model.set_dataset(step)
    elif isinstance(step, LabelCodes):
        model.set_label_codes(step)
    elif isinstance(step, EmbeddedRun):
        if model.set_run(step):
            notify(f"{step.rows} rows embedded ({step.computed} computed, {step.from_cache} from cache)")
    elif isinstance(step, ProgressiveMap):
        if model.show_progressive(step) and step.run is None:
            notify(f"Placing rows: {step.placed:,}/{step.total:,}")
    elif isinstance(step, Preview):
        model.show_map(step.map, preview=True)
    elif isinstance(step, ProjectedMap):
        model.show_map(step)
    elif isinstance(step, MapScores):
        model.set_scores(step)


def faithfulness(api: EngineAPI, model: AppModel) -> Operation:
    """Per-row faithfulness of the map on show (the "faithfulness" colouring)."""
    assert model.shown is not None
    map_id = model.shown.map.map_id

    def job(*, token: CancelToken, report: Report) -> Faithfulness:
        return api.score_rows(ScoreRows(map_id), token=token, report=report)

    return Operation("Faithfulness", job, key="faithfulness").success(model.set_faithfulness)


def layer_maps(api: EngineAPI, model: AppModel, notify: Notify) -> Operation:
    """Every layer's map, aligned, for the layer slider."""
    assert model.opened is not None
    request = MapLayers(model.opened.dataset_id, model.params)

    def job(*, token: CancelToken, report: Report) -> LayerMaps:
        return api.map_layers(request, token=token, report=report)

    def done(maps: LayerMaps) -> None:
        if model.set_layer_maps(maps):
            notify(f"{len(maps.maps)} layer maps ready: move the slider to see each.")

    return Operation("Layer maps", job, lane="model", key="layers").success(done)


def sweep(
    api: EngineAPI,
    model: AppModel,
    base: ProjectionParams,
    axes: tuple[tuple[str, list[str]], tuple[str, list[str]]],
    show: Callable[[SweepResult], object],
) -> Operation:
    """A grid of maps of the current run over two parameters."""
    assert model.run is not None
    (x_name, x_values), (y_name, y_values) = axes
    request = Sweep(model.run.run_id, base, x_name, tuple(x_values), y_name, tuple(y_values))

    def job(*, token: CancelToken, report: Report) -> SweepResult:
        return api.sweep(request, token=token, report=report)

    return Operation("Sweep", job, key="sweep").success(show)


def attention(api: EngineAPI, model: AppModel, row: int, show: Callable[[RowAttention], object]) -> Operation:
    """One row's attention maps (interactive lane; the newest click wins)."""
    assert model.opened is not None
    request = AttendRow(model.opened.dataset_id, row)

    def job(*, token: CancelToken, report: Report) -> RowAttention:
        return api.attend_row(request, token=token, report=report)

    name = f"attention for row {row}"
    return Operation(name, job, lane="interactive", key="attention", busy=False).success(show)


def neighbours(api: EngineAPI, model: AppModel, row: int, show: Callable[[Neighbours], object]) -> Operation:
    """A row's nearest neighbours in model space (quick: no progress, no Cancel)."""
    assert model.run is not None
    request = FindNeighbours(model.run.run_id, row)

    def job(*, token: CancelToken, report: Report) -> Neighbours:
        return api.find_neighbours(request, token=token, report=report)

    name = f"neighbours of row {row}"
    return Operation(name, job, lane="interactive", key="neighbours", busy=False).success(show)


def group_statistics(
    api: EngineAPI, model: AppModel, rows: list[int], show: Callable[[GroupAttention], object]
) -> Operation:
    """Attention statistics per layer and head of a group of rows (the newest group wins)."""
    assert model.opened is not None
    request = AttendRows(model.opened.dataset_id, tuple(rows))

    def job(*, token: CancelToken, report: Report) -> GroupAttention:
        return api.attend_rows(request, token=token, report=report)

    name = f"Attention statistics of {len(rows):,} rows"
    return Operation(name, job, lane="model", key="group").success(show)


def identify(api: EngineAPI, done: Callable[[EngineIdentity], object]) -> Operation:
    """Which model the engine computes with (titles, provenance); quick, never loads the model."""

    def job(*, token: CancelToken, report: Report) -> EngineIdentity:
        return api.identify(Identify(), token=token, report=report)

    return Operation("identify the model", job, lane="interactive", key="identify", busy=False).success(done)


def export(name: str, write: Callable[[], list[Path]], notify: Notify) -> Operation:
    """Write an export (``write`` reads a snapshot taken on the GUI thread) on a job lane, never
    on the GUI thread; the outcome is a line in the status bar, a failure too (no dialog)."""
    return export_with(
        name,
        write,
        done=lambda paths: notify(wrote(paths)),
        failed=lambda message: notify(f"Export failed: {message}"),
    )


def export_with(
    name: str,
    write: Callable[[], list[Path]],
    *,
    done: Callable[[list[Path]], object],
    failed: Callable[[str], object],
) -> Operation:
    """:func:`export` with its own outcome handlers (an attention view reports by its signals).

    Every export runs on the compute lane, one at a time: matplotlib's settings and the
    warning filters it sets while drawing belong to the whole process.
    """

    def job(*, token: CancelToken, report: Report) -> list[Path]:
        report(0, 1, name)
        try:
            return write()
        except OSError as exc:  # a folder that cannot be written, a full disk: one sentence
            raise LoupeError(f"{exc.strerror or exc} ({exc.filename or 'the file'}).") from exc

    def on_failure(message: str) -> bool:
        failed(message)
        return True  # reported: no dialog for it

    return Operation(name, job, lane="compute").success(done).failure(on_failure)


def wrote(paths: Sequence[Path]) -> str:
    return "Wrote " + ", ".join(str(path) for path in paths)
