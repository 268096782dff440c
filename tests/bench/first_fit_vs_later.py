"""The first UMAP fit of a session vs later ones: what numba's compilation costs, and what helps.

Each scenario is a fresh Python process that imports ``engine.maps.projection`` and maps the same
vectors (the demo's rows embedded with all-MiniLM-L6-v2) three times, timing each fit:

- numba cache: *cold* (an empty NUMBA_CACHE_DIR) or *warm* (one a previous process filled);
- warm-up: *none*, or *joined* (``warm_up_in_background(rows=...)`` started at process start
  and finished before the first fit, as when it runs while the model embeds the rows), or
  *racing* (started, and the first fit begins at once: the worst case).

    .venv/bin/python tests/bench/first_fit_vs_later.py [--vectors F.npy] [--rows N]

The goal (issue 5): with a warm cache and the warm-up, the first fit costs about what later
ones do. ``--rows`` above 4,095 exercises umap-learn's approximate-neighbour (pynndescent) path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from umap_vs_direct import ROOT, demo_vectors  # a sibling script, not a package

CHILD = """
import json, sys, time
started = time.perf_counter()
import numpy as np
from engine.maps.projection import ProjectionParams, project, warm_up_in_background
imported = time.perf_counter() - started
vectors = np.load(sys.argv[1])
warm_up, warmup_s = sys.argv[2], None
if warm_up != "none":
    begun = time.perf_counter()
    thread = warm_up_in_background(rows=len(vectors))
    if warm_up == "joined":
        thread.join()
        warmup_s = time.perf_counter() - begun
fits = []
for _ in range(3):
    begun = time.perf_counter()
    project(vectors, ProjectionParams(method="umap", seed=42))
    fits.append(time.perf_counter() - begun)
if warm_up == "racing":
    thread.join()
print(json.dumps({"import_s": imported, "warmup_s": warmup_s, "fits": fits}))
"""


def run_child(vectors: Path, numba_dir: Path, warm_up: str) -> dict[str, object]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_dir), "LOUPE_HOME": str(numba_dir.parent)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(vectors), warm_up],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=Path, help="an [rows, width] .npy of embeddings")
    parser.add_argument("--rows", type=int, help="use this many rows (repeating with noise beyond the data)")
    args = parser.parse_args()
    vectors = demo_vectors(args.vectors)
    if args.rows:
        rng = np.random.default_rng(0)
        picked = vectors[np.arange(args.rows) % len(vectors)]
        vectors = (picked + 0.01 * rng.normal(size=picked.shape)).astype(np.float32)
    work = Path(tempfile.mkdtemp(prefix="lff", dir="/tmp"))
    try:
        data = work / "vectors.npy"
        np.save(data, vectors)
        print(f"{len(vectors)} rows x {vectors.shape[1]}, {os.cpu_count()} CPUs; fits in seconds")
        heads = ("import", "warm-up", "fit 1", "fit 2", "fit 3")
        print(f"{'numba cache':<12} {'warm-up':<8} " + " ".join(f"{head:>7}" for head in heads))
        scenarios = [("cold", "none"), ("warm", "none"), ("cold", "joined"), ("warm", "joined")]
        scenarios += [("warm", "racing")]
        for number, (cache, warm_up) in enumerate(scenarios):
            numba_dir = work / (f"cold{number}" if cache == "cold" else "shared") / "numba"
            if cache == "warm" and not numba_dir.exists():  # fill it with a process of its own
                run_child(data, numba_dir, "none")
            result = run_child(data, numba_dir, warm_up)
            fits = result["fits"]
            assert isinstance(fits, list)
            warmup = result["warmup_s"]
            shown = f"{warmup:7.1f}" if isinstance(warmup, float) else f"{'-':>7}"
            print(
                f"{cache:<12} {warm_up:<8} {result['import_s']:7.1f} {shown} "
                + " ".join(f"{fit:7.1f}" for fit in fits)
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
