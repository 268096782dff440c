"""A dataset handed to a Ray cluster, as operations: submitting and following the job, then the
map it left in the shared cache.

:func:`send_to_cluster` submits on its own lane ("cluster": a job may run for hours and must not
hold up the local lanes) and polls the job: the Jobs panel shows rows done / total as the bar and
the cluster's own rate and ETA as the text (:meth:`engine.cluster.client.JobState.describe`).
Cancel stops the job on the cluster and follows it to its end; closing the window instead leaves
it running (:attr:`ClusterFollow.detached`), since any desktop can open its map later.
:func:`open_from_shared_cache` then shows that map: it must already be in the shared cache (no
row is computed here for a dataset sent away for being too big), and the map flow reads the
embeddings and the map from there.

Ray itself is imported only by :mod:`engine.cluster.ray_backend`, on the lane, when a job is
submitted. The jobs close over plain values only; their handlers run on the GUI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from desktop.model.document import AppModel, LabelCodes, Source
from desktop.operations.engine_ops import deliver_map_step
from desktop.operations.operation import Operation
from engine.api.flow import MapStep, map_flow
from engine.api.protocol import EngineAPI
from engine.api.types import FindCachedMap, OpenDataset, OpenedDataset
from engine.cluster.access import GIVEN_BY_CALLER, ClusterError
from engine.cluster.client import ClusterClient, JobState
from engine.cluster.spec import ClusterJob
from engine.data.column_codes import value_codes
from engine.errors import JobCancelled, LoupeError
from engine.maps.projection import ProjectionParams
from engine.runtime.jobs import CancelToken, Report

Notify = Callable[[str], object]
POLL_S = 2.0  # how often the job's state and log are read (two small HTTP requests)


@dataclass
class ClusterFollow:
    """What the window knows of its cluster job while the lane follows it (plain, thread-safe).

    ``job_id`` is set on the lane once the cluster has accepted the job; ``detached`` makes a
    cancelled follow leave the job running (the window is closing) instead of stopping it."""

    job_id: str | None = None
    detached: threading.Event = field(default_factory=threading.Event)


def send_to_cluster(
    job: ClusterJob,
    *,
    address: str,
    secret: str | None,
    secret_source: str = GIVEN_BY_CALLER,
    insecure: bool,
    follow: ClusterFollow,
    done: Callable[[JobState], object],
    poll_s: float = POLL_S,
) -> Operation:
    """Submit ``job`` to the cluster at ``address`` and follow it to its end; ``done(state)`` on
    the GUI thread when it has SUCCEEDED. A refused token, an unreachable cluster or a failed
    job is one sentence (the window shows it); Cancel stops the job, then follows it to its end."""

    def run(*, token: CancelToken, report: Report) -> Iterator[JobState]:
        report(0, 1, f"Submitting to {address}")
        client = ClusterClient(address, token=secret, token_source=secret_source, insecure=insecure)
        job_id = client.submit(job)
        follow.job_id = job_id

        def on_state(state: JobState) -> None:
            if token.cancelled and follow.detached.is_set():
                raise JobCancelled()  # the window is closing: the job goes on without it
            report_state(report, state)

        final = client.wait(job_id, on_state, poll_s=poll_s, token=token)
        token.raise_if_cancelled()  # stopped by Cancel: the job ends as cancelled, not failed
        if final.status != "SUCCEEDED":
            reason = final.message.rstrip(".") or "see its log (loupe cluster logs JOB)"
            raise ClusterError(f"The cluster job {job_id} {final.status.lower()}: {reason}.")
        yield final

    name = f"Cluster job for {Path(job.path).name or job.path}"
    return Operation(name, run, lane="cluster", key="cluster").partial(lambda state: done(state))


def report_state(report: Report, state: JobState) -> None:
    """The job's state as progress: rows embedded / total while embedding (the bar), else a
    busy bar; the text is the cluster's own line (status, rows, rate, ETA)."""
    text = f"Cluster job {state.job_id}: {state.describe()}"
    progress = state.progress
    if progress is not None and progress.phase == "embedding" and progress.total:
        report(min(progress.done, progress.total), progress.total, text)
    else:
        report(0, 1, text)


def open_from_shared_cache(
    api: EngineAPI,
    model: AppModel,
    source: Source,
    params: ProjectionParams,
    notify: Notify,
) -> Operation:
    """Show the map a cluster job left in the shared cache: of the open dataset when ``source`` is
    the one open, else after opening ``source``. The map must be in the cache already (found from
    the texts alone, as ``loupe project --redis`` finds it); the embeddings and the map then come
    from the cache through the normal map flow, and the scores are computed here.
    Key "map": a newer dataset or Apply supersedes it."""
    layer = model.engine.layer
    same_file = model.source is not None and model.source.path == source.path
    opened = model.opened if same_file else None
    model.set_params(params)
    if opened is None:
        model.open(source)
    request = OpenDataset(path=source.path, text_column=source.text_column, label_column=source.label_column)
    known = opened

    def job(*, token: CancelToken, report: Report) -> Iterator[OpenedDataset | LabelCodes | MapStep]:
        here = known
        if here is None:
            report(0, 1, f"Reading {source.name}")
            here = api.open_dataset(request, token=token, report=report)
            yield here
            yield LabelCodes(here.dataset_id, *value_codes(here.dataset.labels))
        report(0, 1, "Looking up the cluster's map in the shared cache")
        found = api.find_cached_map(FindCachedMap(here.dataset_id, params, layer), token=token, report=report)
        if found.map is None:
            raise LoupeError(
                f"The cluster's map of {source.name} is not in the shared cache (evicted, or written "
                "for another model, layer or map): send the dataset again, or Apply to compute it here."
            )
        # The embeddings and the map come from the shared cache; the scores are computed here.
        yield from map_flow(
            api, here.dataset_id, params, layer=layer, preview=False, token=token, report=report
        )

    def deliver(step: object) -> None:
        deliver_map_step(model, step, notify)

    return Operation(f"Opening {source.name} from the shared cache", job, lane="model", key="map").partial(
        deliver
    )
