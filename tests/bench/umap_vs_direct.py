"""UMAP through Loupe (``engine.maps.projection.project``) vs umap-learn called directly.

The same vectors (the built-in demo's rows embedded with all-MiniLM-L6-v2), the same
parameters (n_neighbors 15, min_dist 0.1, cosine, seed 42), back to back in one process,
after one warm-up fit of each so that neither pays numba's compilation. The order alternates
between rounds. Reports each round's seconds, the median time ratio, both maps'
trustworthiness (k = 10, cosine, on a fixed 2,000-row subsample) and how far apart they are.

    .venv/bin/python tests/bench/umap_vs_direct.py [--vectors F.npy] [--rounds 3]

Without ``--vectors`` the demo's rows are embedded first on the CPU (about 1.5 minutes on two
cores; ``--save F.npy`` keeps them for the next run). The goal (issue 5): Loupe no slower
(ratio <= 1.05, timer noise allowed) and no less faithful (trustworthiness within 0.002).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
GOAL_RATIO = 1.05
GOAL_TRUST_GAP = 0.002


def demo_vectors(path: Path | None, save: Path | None = None) -> npt.NDArray[np.float32]:
    """The demo's rows embedded with the default model on the CPU (or read from ``path``)."""
    if path is not None:
        return np.asarray(np.load(path), dtype=np.float32)
    os.environ.setdefault("LOUPE_HOME", tempfile.mkdtemp(prefix="lb", dir="/tmp"))
    from engine.cache.store import Cache
    from engine.core.engine import Engine
    from engine.data.demo_data import build_stdlib_dataset

    texts = build_stdlib_dataset(max_rows=4000).texts
    print(f"embedding {len(texts)} demo rows on the CPU…", file=sys.stderr)
    vectors = Engine(Cache(None), device="cpu").embeddings(texts).vectors
    if save is not None:
        np.save(save, vectors)
    return vectors


def trust(vectors: npt.NDArray[np.float32], coords: npt.NDArray[np.float32]) -> float:
    from sklearn.manifold import trustworthiness

    rows = np.sort(np.random.default_rng(0).choice(len(vectors), min(2000, len(vectors)), replace=False))
    return float(trustworthiness(vectors[rows], coords[rows], n_neighbors=10, metric="cosine"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=Path, help="an [rows, width] .npy of embeddings")
    parser.add_argument("--save", type=Path, help="where to keep the demo embeddings")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    vectors = demo_vectors(args.vectors, args.save)

    from engine.maps.projection import ProjectionParams, _import_umap, project

    umap = _import_umap()  # the module Loupe uses; a direct user would `import umap` (the same)
    params = ProjectionParams(method="umap", seed=42)

    def loupe() -> npt.NDArray[np.float32]:
        return project(vectors, params)

    def direct() -> npt.NDArray[np.float32]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "n_jobs value -1 overridden to 1 …"
            reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=42)
            return np.asarray(reducer.fit_transform(vectors), dtype=np.float32)

    runs = {"loupe": loupe, "direct": direct}
    for run in runs.values():  # warm-up: compile or load numba's kernels
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    maps: dict[str, npt.NDArray[np.float32]] = {}
    print(f"{len(vectors)} rows x {vectors.shape[1]}, {os.cpu_count()} CPUs")
    for round_ in range(args.rounds):
        order = list(runs) if round_ % 2 == 0 else list(reversed(runs))
        for name in order:
            started = time.perf_counter()
            maps[name] = runs[name]()
            times[name].append(time.perf_counter() - started)
        print(f"round {round_ + 1}: loupe {times['loupe'][-1]:.2f} s, direct {times['direct'][-1]:.2f} s")
    ratio = statistics.median(times["loupe"]) / statistics.median(times["direct"])
    trust_loupe, trust_direct = trust(vectors, maps["loupe"]), trust(vectors, maps["direct"])
    gap = float(np.abs(maps["loupe"] - maps["direct"]).max())
    print(
        f"median: loupe {statistics.median(times['loupe']):.2f} s, direct "
        f"{statistics.median(times['direct']):.2f} s, ratio {ratio:.3f} (goal <= {GOAL_RATIO})"
    )
    print(
        f"trustworthiness: loupe {trust_loupe:.4f}, direct {trust_direct:.4f} "
        f"(goal: loupe >= direct - {GOAL_TRUST_GAP}); max |difference| of the maps {gap:.3g}"
    )
    met = ratio <= GOAL_RATIO and trust_loupe >= trust_direct - GOAL_TRUST_GAP
    print("goal met" if met else "goal NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
