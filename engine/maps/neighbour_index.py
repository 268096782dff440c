"""Every row's k nearest neighbours (cosine) for comparisons: exact up to a size, approximate above.

PLACEHOLDER until the approximate index lands: exact at every size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.maps.analysis import knn_indices
from engine.runtime.jobs import CancelToken, Report, silent_report

# Up to this many rows the neighbours are exact (brute force in blocks).
EXACT_NEIGHBOURS_UP_TO = 20_000


@dataclass(frozen=True)
class NeighbourLists:
    indices: npt.NDArray[np.intp]  # [n, min(k, n - 1)], nearest first, the row itself left out
    exact: bool


def nearest(
    vectors: npt.NDArray[np.floating],
    k: int,
    *,
    exact_up_to: int = EXACT_NEIGHBOURS_UP_TO,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> NeighbourLists:
    """Each row's ``k`` nearest other rows by cosine distance."""
    return NeighbourLists(knn_indices(vectors, k, token=token, report=report), exact=True)


def index_kind(rows: int, exact_up_to: int = EXACT_NEIGHBOURS_UP_TO) -> str:
    """What :func:`nearest` uses for ``rows`` rows, as a cache key names it (results differ by kind)."""
    return "exact"
