"""What changed between two embeddings of the same rows: per-row and whole-space measures.

Two embeddings (two models, two checkpoints, two layers or poolings) of the same n rows are
compared in three ways, each answering a different question:

- **displacement** (per row): how far a row moved between the two maps, once the second map
  is aligned onto the first by orthogonal Procrustes (:func:`engine.maps.layer_maps.align_to`,
  as the per-layer maps are). In units of the first map's spread, so 1 means "as far as a
  typical point lies from the map's centre", whatever the method's scale.
- **neighbour overlap** (per row): the Jaccard overlap of the row's k nearest neighbours
  (cosine) in the two embedding spaces, 1 = the same neighbours, 0 = none shared. Unlike the
  displacement it does not depend on the projection at all.
- **linear CKA** (whole space, Kornblith et al., 2019, "Similarity of Neural Network
  Representations Revisited"): 1 when one space is a rotation and scaling of the other;
  it works across widths (384 against 768).

All functions are plain numpy on arrays the caller passes; none touches the cache.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError

FloatArray = npt.NDArray[np.floating]
Indices = npt.NDArray[np.intp]


def spread(coords: FloatArray) -> float:
    """Root-mean-square distance of a map's points from their centre (1.0 for a map with none)."""
    points = np.asarray(coords, dtype=np.float64)
    value = float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean())) if len(points) else 0.0
    return value if value > 0.0 and np.isfinite(value) else 1.0


def displacement(base_coords: FloatArray, against_aligned: FloatArray) -> npt.NDArray[np.float32]:
    """Per row, the distance between its two positions (the second map already aligned onto
    the first), divided by the first map's :func:`spread`. ``[n]`` float32, 0 = did not move."""
    base = np.asarray(base_coords, dtype=np.float64)
    moved = np.asarray(against_aligned, dtype=np.float64)
    if base.shape != moved.shape or base.ndim != 2:
        raise BadInputError(
            f"Two maps of the same rows are needed, not shapes {base.shape} and {moved.shape}."
        )
    return np.asarray(np.linalg.norm(moved - base, axis=1) / spread(base), dtype=np.float32)


def neighbour_overlap(base_neighbours: Indices, against_neighbours: Indices) -> npt.NDArray[np.float32]:
    """Per row, |A ∩ B| / |A ∪ B| of its neighbour lists in the two spaces (``[n, k]`` each).

    Both lists hold k distinct other rows, so the union is 2k minus the shared ones.
    """
    a = np.asarray(base_neighbours)
    b = np.asarray(against_neighbours)
    if a.shape != b.shape or a.ndim != 2:
        raise BadInputError(f"Neighbour lists of the same shape are needed, not {a.shape} and {b.shape}.")
    k = a.shape[1]
    if k == 0:
        return np.ones(len(a), np.float32)
    shared = np.zeros(len(a), np.int64)
    # In blocks of rows: the [rows, k, k] comparison is 100 bytes a row at k = 10.
    for start in range(0, len(a), 65_536):
        stop = start + 65_536
        shared[start:stop] = (a[start:stop, :, None] == b[start:stop, None, :]).any(axis=2).sum(axis=1)
    return np.asarray(shared / (2 * k - shared), dtype=np.float32)


def linear_cka(base: FloatArray, against: FloatArray) -> float:
    """Linear CKA between two embedding matrices of the same rows (widths may differ).

    ``||Yᵀ X||²_F / (||Xᵀ X||_F ||Yᵀ Y||_F)`` on column-centred X and Y: the feature-space
    form, which costs O(n·d²) instead of the n×n Gram matrices' O(n²·d), so 50,000 rows take
    well under a second. 1.0 for two matrices that are a rotation and scaling of each other.
    """
    x = np.asarray(base, dtype=np.float64)
    y = np.asarray(against, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise BadInputError(
            f"Two embeddings of the same rows are needed, not shapes {x.shape} and {y.shape}."
        )
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = float(np.linalg.norm(y.T @ x) ** 2)
    scale = float(np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    if scale == 0.0:  # a space with every row in one place: nothing to compare
        return float("nan")
    return min(1.0, cross / scale)


def mean_by_label(values: FloatArray, labels: Sequence[str | None]) -> dict[str, float]:
    """The mean of ``values`` per label, labels in first-seen order; rows without a label are left out."""
    if len(labels) != len(values):
        raise BadInputError(f"{len(labels)} labels for {len(values)} rows.")
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for label, value in zip(labels, np.asarray(values, dtype=np.float64).tolist(), strict=True):
        if label is None or label == "":
            continue
        sums[label] += value
        counts[label] += 1
    return {label: sums[label] / counts[label] for label in counts}


def most_moved(displacements: FloatArray, count: int) -> Indices:
    """The ``count`` rows that moved most, furthest first (ties by row)."""
    values = np.asarray(displacements, dtype=np.float64)
    order = np.lexsort((np.arange(len(values)), -values))
    return np.asarray(order[: max(0, count)], dtype=np.intp)
