"""Time and peak memory of engine.maps.analysis at 50,000 rows: random 384-d vectors, random coords.

Each measurement runs in a fresh process, so one step's memory does not hide another's; the
peak is the process's resident-set high-water mark during the call minus what it held before
(Linux: /proc/self/clear_refs resets the mark), which counts scikit-learn's native
allocations too. Prints one line per step.

    .venv/bin/python tests/bench/analysis_at_scale.py [--rows 50000] [--width 384]

Random vectors are the hard case for neighbours (no structure) and uniform random coords the
hard case for HDBSCAN (no clusters to find); "blobs" adds a map with 50 Gaussian clusters.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STEPS = ("knn_indices", "faithfulness", "clusters", "clusters_blobs", "trustworthiness", "nearest_neighbours")


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(step: str, rows: int, width: int) -> None:
    import numpy as np

    from engine.maps import analysis

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(rows, width)).astype(np.float32)
    coords = rng.uniform(-10, 10, size=(rows, 2)).astype(np.float32)
    if step == "clusters_blobs":
        centres = rng.uniform(-100, 100, size=(50, 2))
        coords = (centres[rng.integers(0, 50, rows)] + rng.normal(size=(rows, 2))).astype(np.float32)
    calls: dict[str, Any] = {
        "knn_indices": lambda: analysis.knn_indices(vectors, 10),
        "faithfulness": lambda: analysis.faithfulness(vectors, coords, 10),
        "clusters": lambda: analysis.clusters(coords),
        "clusters_blobs": lambda: analysis.clusters(coords),
        "trustworthiness": lambda: analysis.trustworthiness(vectors, coords, 10),
        "nearest_neighbours": lambda: analysis.nearest_neighbours(vectors, 0, 10),
    }
    # Import scikit-learn's parts before the clock starts: that is a one-off per process.
    for module in ("sklearn.cluster", "sklearn.manifold", "sklearn.neighbors"):
        importlib.import_module(module)

    Path("/proc/self/clear_refs").write_text("5")
    before = _kib("VmRSS")
    began = time.perf_counter()
    result = calls[step]()
    seconds = time.perf_counter() - began
    peak = _kib("VmHWM") - before
    extra = {}
    if step.startswith("clusters"):
        extra = {"clusters": result.count, "noise": round(result.noise_share, 3)}
    elif step == "faithfulness":
        extra = {"mean": round(float(result.mean()), 4)}
    elif step == "trustworthiness":
        extra = {"score": round(result, 4)}
    print(json.dumps({"step": step, "seconds": round(seconds, 2), "peak_mib": round(peak / 1024), **extra}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--step", choices=STEPS)
    args = parser.parse_args()
    if args.step:
        child(args.step, args.rows, args.width)
        return
    data_mib = args.rows * args.width * 4 / 2**20
    print(f"{args.rows} rows × {args.width} float32 ({data_mib:.0f} MiB of vectors), random coords")
    for step in STEPS:
        sizes = ["--rows", str(args.rows), "--width", str(args.width)]
        command = [sys.executable, __file__, "--step", step, *sizes]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        print(done.stdout.strip() or f"{step} failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
