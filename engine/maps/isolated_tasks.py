"""The map computations that run in a child process (:mod:`engine.runtime.isolated`):
``python -P -m engine.maps.isolated_tasks NAME DIR`` runs only the tasks in :data:`TASKS`.

HDBSCAN's fit lives here rather than in :mod:`engine.maps.analysis` so that the child imports
no more than it needs, and so that analysis (which starts the child) and the child's table
(which runs the fit) do not import each other.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.runtime.isolated import Arrays, Task, TaskTable, serve


def hdbscan_fit(
    points: npt.NDArray[np.float32], *, min_cluster_size: int, min_samples: int, max_cluster_size: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """scikit-learn's HDBSCAN labels (its numbering) and membership strengths for ``points``, with
    parameters already checked by :func:`engine.maps.analysis.clusters`; in this process or a child."""
    from sklearn.cluster import HDBSCAN

    model = HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        max_cluster_size=max_cluster_size,
        copy=True,
    )
    model.fit(points)
    return np.asarray(model.labels_, np.intp), np.asarray(model.probabilities_, np.float32)


def _hdbscan(arrays: Arrays, params: dict[str, Any]) -> Arrays:
    labels, probabilities = hdbscan_fit(
        arrays["points"],
        min_cluster_size=int(params["min_cluster_size"]),
        min_samples=int(params["min_samples"]),
        max_cluster_size=int(params["max_cluster_size"]),
    )
    return {"labels": labels, "probabilities": probabilities}


TASKS = TaskTable("engine.maps.isolated_tasks", {"hdbscan": Task("clustering", _hdbscan)})

if __name__ == "__main__":
    sys.exit(serve(TASKS))
