"""The job's last step, on the cluster: the map of the whole dataset, as ``loupe project`` makes it.

It runs the same engine API and the same map flow as ``loupe project PATH --redis URL``, on the
file read by Loupe's own reader, so it writes exactly the keys that command (and the window)
will look up. Rows the parallel pass did not cover (a row Ray Data's reader parsed differently
from Loupe's) are embedded here rather than missed, and counted in the summary. A dataset given
as a URI (``s3://…``) is copied to a private local folder first, with pyarrow's filesystems.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import LoupeError

if TYPE_CHECKING:
    from engine.api.types import OpenedDataset
    from engine.cluster.spec import ClusterJob
    from engine.core.service import EngineService
    from engine.maps.projection import ProjectionParams


def make_final_map(job_json: str) -> dict[str, Any]:
    """Fit and cache the job's map (and its analysis with ``analyse``); a small summary."""
    from engine.api.flow import map_flow
    from engine.api.types import EmbeddedRun, MapLayers, MapScores, ProjectedMap, ScoreRows
    from engine.cluster.secrets import install_secrets
    from engine.cluster.spec import ClusterJob

    job = ClusterJob.from_json(job_json)
    install_secrets()
    with job_dataset(job) as (service, opened, params):
        summary: dict[str, Any] = {"rows": len(opened.dataset), "trustworthiness": None, "embedded_here": 0}
        if job.layer == "all":
            service.map_layers(MapLayers(opened.dataset_id, params))
            summary["layers"] = True
        else:
            mapped: ProjectedMap | None = None
            for step in map_flow(
                service,
                opened.dataset_id,
                params,
                layer=int(job.layer),
                preview=False,
                scores=job.analyse,
                cached_first=True,
            ):
                if isinstance(step, EmbeddedRun):  # rows the parallel pass left to this step
                    summary["embedded_here"] = step.computed
                elif isinstance(step, ProjectedMap):
                    mapped = step
                elif isinstance(step, MapScores):
                    summary["trustworthiness"] = step.trustworthiness
            if job.analyse and mapped is not None:
                service.score_rows(ScoreRows(mapped.map_id))
        return summary


def cached_already(job: ClusterJob) -> int | None:
    """The row count when the job's map and every row's embedding are cached already, else None.

    A rerun of a finished job then ends here, in the driver, in about the time a warm ``loupe
    project`` takes, without starting Ray Data or loading a model. Runs that also want the
    analysis, or every layer, always go the whole way (their other values are checked there).
    """
    from engine.api.types import FindCachedMap

    if job.analyse or job.layer == "all":
        return None
    with job_dataset(job) as (service, opened, params):
        layer = int(job.layer)
        if service.find_cached_map(FindCachedMap(opened.dataset_id, params, layer)).map is None:
            return None
        keys = service.engine.row_keys(opened.dataset.texts, layer)
        return len(keys) if service.cache.count_present(keys) == len(keys) else None


@contextmanager
def job_dataset(job: ClusterJob) -> Iterator[tuple[EngineService, OpenedDataset, ProjectionParams]]:
    """An engine on the shared cache, the job's dataset opened by Loupe's reader, and its map's
    parameters; the cache, the engine and any local copy of the dataset are let go afterwards."""
    from engine.api.types import OpenDataset
    from engine.cluster.batches import open_shared_cache
    from engine.core.service import EngineService
    from engine.maps.projection import ProjectionParams

    params = replace(
        ProjectionParams.from_options(job.method, job.params, seed=job.seed), fit_sample=job.fit_sample
    )
    cache = open_shared_cache(job)
    service = EngineService(
        cache,
        model=job.model,
        device="auto",
        pooling=job.pooling,  # type: ignore[arg-type]
        precision=job.precision,  # the actors' too: the map's name and the rows it takes agree
    )
    local, scratch = local_copy(job.path)
    try:
        opened = service.open_dataset(OpenDataset(local, job.text_column, job.label_column))
        if params.fit_sample is not None and params.fit_sample >= len(opened.dataset):
            params = params.fitting_every_row()  # as loupe project does: the same rows, one map
        yield service, opened, params
    finally:
        service.close()
        cache.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def local_copy(path: str) -> tuple[Path, Path | None]:
    """``path`` as a local file or folder, and the scratch folder to delete afterwards (if any)."""
    if "://" not in path or path.startswith("file://"):
        local = Path(path.removeprefix("file://"))
        if not local.exists():
            raise LoupeError(f"The cluster cannot see {path}: give a path every node can read, or a URI.")
        return local, None
    import pyarrow.fs as pafs

    try:
        filesystem, inner = pafs.FileSystem.from_uri(path)
        info = filesystem.get_file_info(inner)
        scratch = Path(tempfile.mkdtemp(prefix="loupe-data-"))
        target = scratch / Path(inner.rstrip("/")).name
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"no such file or folder: {inner}")
        pafs.copy_files(inner, str(target), source_filesystem=filesystem)  # a file, or a folder's files
    except (OSError, ValueError) as exc:
        raise LoupeError(
            f"The dataset {path} cannot be copied to the node fitting the map ({exc})."
        ) from None
    return target, scratch
