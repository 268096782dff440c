"""The job's driver, run by Ray on the cluster: ``python -P -m engine.cluster.driver``.

It reads ``job.json`` (and the secrets) from its working folder, checks that it runs the Loupe
the job was made by and that the shared cache answers, then lets Ray Data embed every row
(:func:`engine.cluster.ray_backend.embed_rows`) and one task fit the map. It prints a
``loupe-progress`` line every few seconds and, when it fails for a reason the user can act on,
one ``loupe-error`` sentence (:mod:`engine.cluster.progress`) before exiting 1.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cluster.progress import JobProgress, error_line
from engine.errors import LoupeError

if TYPE_CHECKING:
    import pyarrow as pa

    from engine.cluster.ray_backend import EmbedTotals
    from engine.cluster.spec import ClusterJob

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 2.0


def main() -> int:
    try:
        run_job(Path.cwd())
    except LoupeError as exc:
        print(error_line(str(exc)), flush=True)
        return 1
    except Exception as exc:  # Ray wraps a worker's error in its own: look for the cause
        print(error_line(_sentence(exc)), flush=True)
        raise
    return 0


def run_job(folder: Path) -> None:
    from engine.cluster import ray_backend
    from engine.cluster.batches import open_shared_cache
    from engine.cluster.final_map import cached_already
    from engine.cluster.secrets import install_secrets
    from engine.cluster.spec import JOB_FILE, ClusterJob
    from engine.runtime.version import loupe_version

    job = ClusterJob.from_json((folder / JOB_FILE).read_text(encoding="utf-8"))
    ours = loupe_version()
    if job.loupe_version and job.loupe_version != ours:
        raise LoupeError(
            f"The cluster runs Loupe {ours} and the job was made by Loupe {job.loupe_version}; their "
            "cache keys may differ, so install the same version on both."
        )
    install_secrets(folder)
    open_shared_cache(job).close()  # fail now, in one sentence, rather than in every actor
    _say(JobProgress("reading"))
    done_before = cached_already(job)
    if done_before is not None:
        print(f"loupe: the map and all {done_before:,} rows were cached already; nothing to do", flush=True)
        _say(JobProgress("done", done_before, done_before, 0, done_before))
        return
    resources = ray_backend.connect()
    dataset = ray_backend.read_dataset(job.path)
    column = text_column(job, ray_backend.sample_table(dataset))
    total = dataset.count()
    began = time.monotonic()
    last_said = 0.0

    def on_batch(totals: ray_backend.EmbedTotals) -> None:
        nonlocal last_said
        if time.monotonic() - last_said >= PROGRESS_EVERY_S:
            last_said = time.monotonic()
            _say(_progress("embedding", totals, total, began))

    _say(JobProgress("embedding", total=total))
    try:
        totals = ray_backend.embed_rows(dataset, column, job, resources, on_batch)
    except Exception as exc:
        _raise_if_cache_gone(job)
        raise LoupeError(f"Embedding on the cluster failed: {_sentence(exc)}") from exc
    _say(_progress("embedding", totals, total, began))
    print(
        f"loupe: embedded {totals.rows:,} rows on the cluster ({totals.computed:,} computed, "
        f"{totals.from_cache:,} from the cache) in {time.monotonic() - began:.1f} s",
        flush=True,
    )
    _say(_progress("mapping", totals, total, began))
    try:
        summary = ray_backend.run_final_map(job.to_json())
    except Exception as exc:
        _raise_if_cache_gone(job)
        raise LoupeError(f"Fitting the map on the cluster failed: {_sentence(exc)}") from exc
    print(
        f"loupe: map of {summary['rows']:,} rows cached ({summary['embedded_here']:,} rows embedded by the "
        "final step)",
        flush=True,
    )
    _say(_progress("done", totals, total, began))


def text_column(job: ClusterJob, sample: pa.Table) -> str:
    """The column Loupe's own reader would take as the text, judged on the first rows."""
    from engine.data.datasets import pick_columns

    textual = Path(job.path).suffix.lower() == ".csv"  # CSV values are text to Loupe's reader
    return pick_columns(sample, job.text_column, job.label_column, textual=textual)[0]


def _progress(phase: str, totals: EmbedTotals, total: int, began: float) -> JobProgress:
    elapsed = time.monotonic() - began
    return JobProgress(phase, totals.rows, total, totals.computed, totals.from_cache, elapsed)


def _say(progress: JobProgress) -> None:
    print(progress.line(), flush=True)


def _raise_if_cache_gone(job: ClusterJob) -> None:
    from engine.cluster.batches import SharedCacheGone, gone_sentence, open_shared_cache

    try:
        open_shared_cache(job).close()
    except SharedCacheGone:
        raise SharedCacheGone(gone_sentence(job)) from None


def _sentence(exc: BaseException) -> str:
    """The innermost Loupe error's sentence in a chain of Ray's wrappers, else the first line.

    Ray's ``RayTaskError`` for a task that raised a LoupeError is itself an instance of that
    class (Ray subclasses it on the fly), with Ray's whole traceback as its text: the chain is
    followed through ``.cause`` to the error the task raised.
    """
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 32:
        chain.append(seen)
        inner = getattr(seen, "cause", None)
        seen = inner if isinstance(inner, BaseException) else seen.__cause__
    for error in reversed(chain):  # the innermost first
        if isinstance(error, LoupeError) and not type(error).__module__.startswith("ray"):
            return _first_line(str(error))
    for line in str(exc).splitlines():  # a worker's LoupeError that reached here as text only
        for name in ("SharedCacheGone: ", "BadInputError: ", "LoupeError: "):
            if name in line:
                return _first_line(line.split(name, 1)[1])
    return _first_line(str(exc)) or type(exc).__name__


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
