"""The comparison's work, as operations: the comparison itself, a row's neighbours under both
sides, and a row's attention under both models.

Like :mod:`desktop.operations.engine_ops`: each job asks the engine by ids through
:class:`~engine.api.protocol.EngineAPI` and returns plain results; the handlers (GUI thread)
change the :class:`~desktop.model.document.AppModel` or hand the result to the view that shows
it. Built on the GUI thread, where the model is read; the jobs close over plain values only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from desktop.model.comparison import CompareChoice
from desktop.model.document import AppModel
from desktop.operations.operation import Operation
from engine.api.protocol import EngineAPI
from engine.api.types import (
    AttendRow,
    AttentionMaps,
    Compare,
    Comparison,
    FindNeighbours,
    Neighbours,
    Side,
)
from engine.runtime.jobs import CancelToken, Report

Notify = Callable[[str], object]


@dataclass(frozen=True)
class NeighboursBeforeAfter:
    """A row's nearest neighbours in the base side's space (before) and the other's (after)."""

    row: int
    before: Neighbours
    after: Neighbours


@dataclass(frozen=True)
class AttentionPair:
    """A row's attention under the base side's model and under the other side's."""

    row: int
    base: AttentionMaps
    against: AttentionMaps


def compare(api: EngineAPI, model: AppModel, choice: CompareChoice, notify: Notify) -> Operation:
    """Embed and map the rows under ``choice`` too and compare them with what the window shows
    (its model, layer, pooling and map parameters). Compute lane, with progress and Cancel;
    the model changes only when it succeeds, so a cancelled or failed comparison leaves the
    window as it was. A failure is one sentence in the status line. Key "compare": the newest wins."""
    opened, shown = model.opened, model.shown
    assert opened is not None and shown is not None, "a comparison needs a map on show"
    layer = model.run.layer if model.run is not None else model.engine.layer
    base = Side(model=None, layer=layer, pooling=model.engine.pooling)
    request = Compare(opened.dataset_id, base, choice.side, shown.map.params, k=choice.k)

    def job(*, token: CancelToken, report: Report) -> Comparison:
        report(0, 1, "Comparing")
        return api.compare(request, token=token, report=report)

    def done(comparison: Comparison) -> None:
        if model.set_comparison(comparison):
            cached = " (from the cache)" if comparison.from_cache else ""
            notify(
                f"Compared{cached}: mean neighbour overlap {comparison.mean_overlap:.3f}, "
                f"CKA {comparison.cka:.3f}."
            )

    def failed(message: str) -> bool:
        notify(f"The comparison failed: {message}")
        return True  # said in the status line: no dialog

    return Operation("Compare", job, lane="compute", key="compare").success(done).failure(failed)


def neighbours_before_after(
    api: EngineAPI, comparison: Comparison, row: int, show: Callable[[NeighboursBeforeAfter], object]
) -> Operation:
    """``row``'s k nearest neighbours under each side (interactive lane; the newest row wins)."""
    base_run, against_run, k = comparison.base.run.run_id, comparison.against.run.run_id, comparison.k

    def job(*, token: CancelToken, report: Report) -> NeighboursBeforeAfter:
        before = api.find_neighbours(FindNeighbours(base_run, row, k), token=token, report=report)
        after = api.find_neighbours(FindNeighbours(against_run, row, k), token=token, report=report)
        return NeighboursBeforeAfter(row, before, after)

    name = f"neighbours of row {row}, before and after"
    return Operation(name, job, lane="interactive", key="moved-neighbours", busy=False).success(show)


def attention_pair(
    api: EngineAPI, comparison: Comparison, row: int, show: Callable[[AttentionPair], object]
) -> Operation:
    """``row``'s attention under both sides' models (interactive lane; the newest click wins)."""
    dataset_id, against_model = comparison.dataset_id, comparison.against.side.model

    def job(*, token: CancelToken, report: Report) -> AttentionPair:
        base = api.attend_row(AttendRow(dataset_id, row), token=token, report=report)
        against = api.attend_row(AttendRow(dataset_id, row, model=against_model), token=token, report=report)
        return AttentionPair(row, base.maps, against.maps)

    name = f"attention of row {row} under both models"
    return Operation(name, job, lane="interactive", key="attention-pair", busy=False).success(show)
