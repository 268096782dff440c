"""One Ray actor's work: embed a batch of texts and write each row's vector to the shared cache.

Ray Data makes one :class:`BatchEmbedder` per actor and calls it on batch after batch, so the
model is loaded once per actor (on its first row that is not cached: a rerun over a filled
cache loads no model at all). The texts are prepared exactly as Loupe's own reader prepares a
dataset's (missing and blank texts skipped, white space trimmed), so every key is the one a
desktop computes for the same file. The engine writes after every model batch, so a killed
actor loses at most the batch it was on.

Unlike the desktop, where the cache is optional, here it is the whole result: a cache that stops
answering fails the batch in one sentence (:class:`SharedCacheGone`) instead of computing rows
that nobody will ever read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import LoupeError

if TYPE_CHECKING:
    import pyarrow as pa

    from engine.cache.store import Cache
    from engine.cluster.spec import ClusterJob
    from engine.core.engine import Engine


class SharedCacheGone(LoupeError):
    """The shared cache could not be reached, or stopped answering, during a cluster job."""


def open_shared_cache(job: ClusterJob) -> Cache:
    """The job's cache, answering now, or :class:`SharedCacheGone`."""
    from engine.cache.connect import open_cache, redacted

    cache = open_cache(job.redis_url)
    if not cache.available:
        cache.close()
        raise SharedCacheGone(
            f"The shared cache at {redacted(job.redis_url)} does not answer from the cluster."
        )
    return cache


def check_cache(cache: Cache, job: ClusterJob, errors_before: int) -> None:
    """:class:`SharedCacheGone` if a write failed since ``errors_before`` or the server is gone."""
    if cache.stats.errors > errors_before or not cache.available:
        raise SharedCacheGone(gone_sentence(job))


def gone_sentence(job: ClusterJob) -> str:
    from engine.cache.connect import redacted

    return (
        f"The shared cache at {redacted(job.redis_url)} stopped answering during the job; the rows "
        "written before that are kept, and a rerun computes only the rest."
    )


def prepared_texts(column: pa.ChunkedArray[Any] | pa.Array[Any]) -> list[str]:
    """The batch's texts as Loupe's reader keeps them: blanks skipped, white space trimmed."""
    import pyarrow as pa

    from engine.data.columns import as_text, blank_rows, trimmed

    texts = as_text(column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column]))
    keep = ~blank_rows(texts)
    if not keep.all():
        texts = texts.filter(pa.array(keep))
    return [str(text) for text in trimmed(texts).to_pylist()]


class BatchEmbedder:
    """Ray Data's callable class: ``{__loupe_text}`` batch in, one row of counts out."""

    def __init__(self) -> None:
        from engine.cluster.secrets import install_secrets
        from engine.cluster.spec import JOB_FILE, ClusterJob
        from engine.core.engine import Engine

        # Read from the job's working folder, not passed as arguments: Ray restarts a killed
        # actor only when its constructor arguments are not in the object store (ray#53727).
        self.job = ClusterJob.from_json(Path(JOB_FILE).read_text(encoding="utf-8"))
        install_secrets()
        self.cache = open_shared_cache(self.job)
        self.engine: Engine = Engine(
            self.cache,
            model=self.job.model,
            device="auto",
            pooling=self.job.pooling,  # type: ignore[arg-type]
            precision=self.job.precision,
        )

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray[Any, Any]]:
        from engine.cluster.spec import TEXT_COLUMN

        texts = prepared_texts(batch[TEXT_COLUMN])
        computed = from_cache = 0
        if texts:
            errors_before = self.cache.stats.errors
            if self.job.layer == "all":
                run = self.engine.all_layer_embeddings(texts)
            else:
                run = self.engine.embeddings(texts, layer=int(self.job.layer))
            check_cache(self.cache, self.job, errors_before)
            computed, from_cache = run.computed, run.from_cache
        return {
            "rows": np.array([len(texts)]),
            "computed": np.array([computed]),
            "from_cache": np.array([from_cache]),
        }
