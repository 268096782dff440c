"""What the engine makes from a dataset before a map: an embedding run and a map's clusters,
and the digests that name their inputs in cache keys."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.runtime.jobs import Report, silent_report


@dataclass(frozen=True)
class EmbeddingRun:
    """Embeddings for a list of texts, in order, and where they came from."""

    vectors: npt.NDArray[np.float32]
    computed: int
    from_cache: int
    truncated: int
    input_id: str  # names exactly these rows under this model and layer (see input_id below)


def precomputed_run(vectors: npt.NDArray[np.float32], report: Report = silent_report) -> EmbeddingRun:
    """A dataset's own vectors (from its ``.npy``) as an embedding run; nothing is computed."""
    vectors = np.asarray(vectors, np.float32)
    report(len(vectors), len(vectors), "Precomputed vectors")
    return EmbeddingRun(vectors, computed=0, from_cache=0, truncated=0, input_id=matrix_digest(vectors))


@dataclass(frozen=True)
class Clustering:
    """HDBSCAN clusters of a map and their c-TF-IDF names (``labels`` -1 is noise)."""

    labels: npt.NDArray[np.int32]
    names: dict[int, str]

    def centres(self, coords: npt.NDArray[np.float32]) -> list[tuple[float, float, str]]:
        """Where to draw each cluster's name: the median of its points.

        The rows are grouped by one sort instead of a mask per cluster, so the cost stays about
        one pass over the map however many clusters it has.
        """
        clusters = sorted(self.names)
        order = np.argsort(self.labels, kind="stable")
        ordered = self.labels[order]
        starts = np.searchsorted(ordered, clusters, side="left")
        ends = np.searchsorted(ordered, clusters, side="right")
        centres = []
        for cluster, start, end in zip(clusters, starts, ends, strict=True):
            x, y = np.median(coords[order[start:end]], axis=0)
            centres.append((float(x), float(y), self.names[cluster]))
        return centres


def input_id(row_keys: Sequence[str]) -> str:
    """A digest of strings, in order: names an embedding matrix (from its row keys) or a list of
    texts without reading them again. UTF-8 with ``surrogatepass``: any Python string, any
    language, even a lone surrogate read from a broken file, has one digest."""
    digest = hashlib.blake2b(digest_size=20)
    for key in row_keys:
        encoded = key.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))  # a length prefix: no two lists collide
        digest.update(encoded)
    return digest.hexdigest()


def matrix_digest(vectors: npt.NDArray[np.float32]) -> str:
    # Hashed in place through a memoryview: .tobytes() copied the matrix while holding the
    # interpreter (210 ms for 200,000 x 384), and hashlib lets go of it for large buffers.
    contiguous = np.ascontiguousarray(vectors, dtype=np.float32)
    return hashlib.blake2b(contiguous.data.cast("B"), digest_size=20).hexdigest()
