"""Everything that touches Ray: the Jobs API on the submitting side, Ray Data on the cluster.

The only module that imports Ray (an import-linter contract), and it does so inside functions:
Ray is an optional extra, and a desktop that never sends a job never loads it.

Submitting side (:mod:`engine.cluster.client` calls these): the job's folder goes up as its
``working_dir``; errors become one sentence (:class:`ClusterAccessError` for a refused token,
:class:`ClusterError` for the rest).

Cluster side (:mod:`engine.cluster.driver` calls these): Ray Data reads the dataset in parallel
and streams it through an actor pool of :class:`engine.cluster.batches.BatchEmbedder`, each actor
holding the model once; then one task fits the map (:func:`engine.cluster.final_map.make_final_map`).
Known pitfalls this avoids: a dataset hangs when its actors take every CPU (ray#44687), so one
CPU is left to the readers; actors restart after a crash only when their constructor arguments
are not in the object store (ray#53727), so the embedder takes none and reads its job from its
working folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cluster.access import ClusterAccess, ClusterAccessError, ClusterError
from engine.errors import LoupeError

if TYPE_CHECKING:
    from ray.data import Dataset as RayDataset
    from ray.job_submission import JobSubmissionClient

    from engine.cluster.spec import ClusterJob

log = logging.getLogger(__name__)

SAMPLE_ROWS = 1_000  # rows the driver reads to pick the text column as Loupe's reader would


# -- the submitting side ---------------------------------------------------------------------


def submit(access: ClusterAccess, folder: Path, entrypoint: str, metadata: dict[str, str]) -> str:
    """Upload ``folder`` as the job's working folder and start ``entrypoint``; the job's id."""
    client = _client(access)
    # The driver only coordinates; the work runs in Ray Data's tasks and actors.
    job_id: str = _call(
        access,
        lambda: client.submit_job(
            entrypoint=entrypoint,
            runtime_env={"working_dir": str(folder)},
            metadata=metadata,
            entrypoint_num_cpus=0,
        ),
    )
    return job_id


def job_status(access: ClusterAccess, job_id: str) -> tuple[str, str]:
    """(status name, Ray's message) for ``job_id``."""
    client = _client(access)
    info = _call(access, lambda: client.get_job_info(job_id))
    return str(info.status.value if hasattr(info.status, "value") else info.status), info.message or ""


def job_logs(access: ClusterAccess, job_id: str) -> str:
    client = _client(access)
    return str(_call(access, lambda: client.get_job_logs(job_id)))


def stop_job(access: ClusterAccess, job_id: str) -> bool:
    client = _client(access)
    return bool(_call(access, lambda: client.stop_job(job_id)))


def _client(access: ClusterAccess) -> JobSubmissionClient:
    from ray.job_submission import JobSubmissionClient

    # Ray's SDK logs each upload at INFO on the user's terminal; Loupe says what matters itself.
    for name in ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging"):
        logging.getLogger(name).setLevel(logging.WARNING)

    client: JobSubmissionClient = _call(
        access, lambda: JobSubmissionClient(access.address, headers=access.headers)
    )
    return client


def _call(access: ClusterAccess, do: Callable[[], Any]) -> Any:
    """``do()``, with Ray's errors turned into one sentence that names the cluster."""
    from ray.exceptions import AuthenticationError

    try:
        return do()
    except AuthenticationError:
        raise ClusterAccessError(
            f"The cluster at {access.address} refused the request: its token authentication did not "
            f"accept the token from {access.token_source}."
        ) from None
    except ConnectionError as exc:
        raise ClusterError(f"Cannot reach the cluster at {access.address} ({_first_line(exc)}).") from None
    except RuntimeError as exc:  # the SDK's wrapper for an HTTP error: 404 for an unknown job, …
        text = _first_line(exc)
        if "does not exist" in text or "404" in text:
            raise ClusterError(f"The cluster at {access.address} has no such job ({text}).") from None
        raise ClusterError(f"The cluster at {access.address} answered: {text}.") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")[:300]


# -- the cluster side ------------------------------------------------------------------------


@dataclass
class EmbedTotals:
    rows: int = 0
    computed: int = 0
    from_cache: int = 0


def connect() -> dict[str, float]:
    """Join the cluster this driver runs in; its resources (CPU, GPU, memory…)."""
    import ray
    from ray.data import DataContext

    ray.init(logging_level=logging.WARNING, configure_logging=False)
    context = DataContext.get_current()
    context.enable_progress_bars = False  # progress goes out as loupe-progress lines instead
    context.print_on_execution_start = False
    resources: dict[str, Any] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return {name: float(value) for name, value in resources.items()}


def read_dataset(path: str) -> RayDataset:
    """The dataset at ``path`` (a file, or a folder of files of one kind), read by Ray Data."""
    import ray

    kind = _kind(path)
    readers = {"parquet": ray.data.read_parquet, "csv": ray.data.read_csv, "json": ray.data.read_json}
    try:
        return readers[kind](path)
    except Exception as exc:
        raise LoupeError(f"Ray Data cannot read {path} ({_first_line(exc)}).") from None


def sample_table(dataset: RayDataset, rows: int = SAMPLE_ROWS) -> Any:
    """The first ``rows`` rows as one pyarrow table (to pick the text column from)."""
    return dataset.take_batch(rows, batch_format="pyarrow")


def embed_rows(
    dataset: RayDataset,
    column: str,
    job: ClusterJob,
    resources: dict[str, float],
    on_batch: Callable[[EmbedTotals], None],
) -> EmbedTotals:
    """Stream ``dataset[column]`` through an actor pool that embeds and caches every row."""
    from ray.data import ActorPoolStrategy

    from engine.cluster.batches import BatchEmbedder
    from engine.cluster.spec import DEFAULT_BATCH_ROWS, GPU_BATCH_ROWS, TEXT_COLUMN

    gpus, cpus = int(resources.get("GPU", 0)), resources.get("CPU", 1.0)
    actors = job.actors or (gpus if gpus else max(1, int(cpus) - 1))
    # Without GPUs the actors share the CPUs but one (half of a single one), which the readers
    # keep: actors that take every CPU hang the read (ray#44687; measured: 2 whole-CPU actors on
    # 2 CPUs wrote no row in 150 s, 2 half-CPU actors ran at 142 rows/s).
    reserved = min(1.0, cpus / 2)
    cpus_per_actor = 1.0 if gpus else max(0.1, (cpus - reserved) / actors)
    batch_rows = job.batch_rows or (GPU_BATCH_ROWS if gpus else DEFAULT_BATCH_ROWS)
    # Blocks of one batch: Ray Data hands results back per input block, and a Parquet file is
    # one block, so without this the progress stayed at 0 until a whole file was done and one
    # actor got the whole file while the others waited.
    texts = (
        dataset.select_columns([column])
        .rename_columns({column: TEXT_COLUMN})
        .repartition(target_num_rows_per_block=batch_rows)
    )
    results = texts.map_batches(
        BatchEmbedder,
        batch_size=batch_rows,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=1 if gpus else 0,
    )
    totals = EmbedTotals()
    for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
        totals.rows += int(batch["rows"].sum())
        totals.computed += int(batch["computed"].sum())
        totals.from_cache += int(batch["from_cache"].sum())
        on_batch(totals)
    return totals


def run_final_map(job_json: str) -> dict[str, Any]:
    """Fit the map in one task on the cluster's largest node, and its summary.

    It asks for that node's CPUs (the actors are gone by then): more than one node has would
    never be scheduled, and the job would wait in "fitting the map" for ever.
    """
    import ray

    from engine.cluster.final_map import make_final_map

    alive = [node["Resources"] for node in ray.nodes() if node.get("Alive")]  # type: ignore[no-untyped-call]
    cpus = max([float(resources.get("CPU", 0.0)) for resources in alive] + [1.0])
    task = ray.remote(make_final_map).options(num_cpus=cpus, max_retries=0)
    summary: dict[str, Any] = ray.get(task.remote(job_json))
    return summary


def _kind(path: str) -> str:
    """parquet, csv or json, from the suffix of ``path`` or of the files in the folder it names."""
    suffix = Path(path.rstrip("/")).suffix.lower()
    if not suffix:  # a folder: its files say
        local = Path(path)
        if local.is_dir():
            suffixes = {
                p.suffix.lower() for p in local.iterdir() if p.is_file() and not p.name.startswith(".")
            }
            suffix = next(iter(suffixes)) if len(suffixes) == 1 else ""
        else:
            suffix = ".parquet"  # a remote prefix: Parquet is what large datasets are kept in
    kinds = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json", ".ndjson": "json"}
    if suffix not in kinds:
        raise LoupeError(
            f"A cluster job reads CSV, JSONL or Parquet (a file, or a folder of one kind): not {path}."
        )
    return kinds[suffix]
