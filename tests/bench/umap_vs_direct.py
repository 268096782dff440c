"""``loupe project --method umap`` against umap-learn called directly: whole processes, same vectors.

The data: 50,000 real rows (first paragraphs of docstrings, tests/bench/scale_texts.py) and
their all-MiniLM-L6-v2 embeddings, written as ``rows.csv`` + ``rows.npy`` (a table with its
vectors beside it: Loupe maps those, as it maps embeddings it has cached, without the model).

* Loupe: ``loupe project rows.csv --method umap --seed S --no-cache --out F.csv`` (the map
  itself not cached; umap-learn's numba kernels in Loupe's numba cache, as after any first run);
* direct: a plain script, ``np.load`` then ``umap.UMAP(random_state=S, metric="cosine")
  .fit_transform(vectors)``, ``np.save``.

One untimed run of each first (Loupe's numba cache filled, files in the page cache), then
``--rounds`` rounds back to back, the order alternating. Reports seconds, the median ratio,
and each map's trustworthiness (engine.maps.analysis.trustworthiness: k = 10, cosine, 2,000
rows). The goal (issue 19): Loupe at most half umap-learn's time, trustworthiness within 0.02.

    .venv/bin/python tests/bench/scale_texts.py --rows 50000 --save /tmp/scale_vectors.npy
    .venv/bin/python tests/bench/umap_vs_direct.py --vectors /tmp/scale_vectors.npy [--rounds 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GOAL_RATIO = 0.5
GOAL_TRUST_GAP = 0.02

DIRECT = """
import sys, numpy as np, umap
vectors = np.load(sys.argv[1])
coords = umap.UMAP(random_state=int(sys.argv[3]), metric="cosine").fit_transform(vectors)
np.save(sys.argv[2], coords)
"""


def write_rows(vectors_path: Path, layer: int, folder: Path) -> Path:
    """``rows.csv`` (the texts) and ``rows.npy`` (their vectors) in ``folder``; the .csv's path."""
    stored = np.load(vectors_path, mmap_mode="r")
    vectors = np.ascontiguousarray(stored[layer] if stored.ndim == 3 else stored, dtype=np.float32)
    texts_path = vectors_path.with_suffix(".texts.json")
    texts = json.loads(texts_path.read_text()) if texts_path.exists() else []
    if len(texts) != len(vectors):
        texts = [f"row {i}" for i in range(len(vectors))]
    np.save(folder / "rows.npy", vectors)
    with (folder / "rows.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["text"])
        writer.writerows([text] for text in texts)
    return folder / "rows.csv"


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=Path, required=True, help="[rows, d] or [layers, rows, d] .npy")
    parser.add_argument("--layer", type=int, default=-1, help="which layer of a [layers, rows, d] file")
    parser.add_argument("--rows", type=int, help="only the first ROWS rows")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from engine.maps.analysis import trustworthiness

    work = Path(tempfile.mkdtemp(prefix="umap-vs-direct-", dir="/tmp"))
    rows_csv = write_rows(args.vectors, args.layer, work)
    vectors = np.load(work / "rows.npy")
    if args.rows:
        vectors = vectors[: args.rows]
        np.save(work / "rows.npy", vectors)
        lines = rows_csv.read_text(encoding="utf-8").splitlines(keepends=True)[: args.rows + 1]
        rows_csv.write_text("".join(lines), encoding="utf-8")
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "LOUPE_HOME": str(work / "home"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    loupe_out, direct_out = work / "loupe.csv", work / "direct.npy"
    seed = str(args.seed)
    commands = {
        "loupe": [
            *(sys.executable, "-m", "desktop.launcher", "project", str(rows_csv), "--method", "umap"),
            *("--seed", seed, "--no-cache", "--quiet", "--out", str(loupe_out)),
        ],
        "direct": [sys.executable, "-c", DIRECT, str(work / "rows.npy"), str(direct_out), seed],
    }
    first = {name: timed(command, env) for name, command in commands.items()}
    print(f"{len(vectors)} rows x {vectors.shape[1]}, {os.cpu_count()} CPUs, seed {seed}")
    print(f"first runs (untimed warm-up): loupe {first['loupe']:.1f} s, direct {first['direct']:.1f} s")
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(args.rounds):
        order = list(commands) if round_ % 2 == 0 else list(reversed(commands))
        for name in order:
            times[name].append(timed(commands[name], env))
        print(
            f"round {round_ + 1} ({' then '.join(order)}): loupe {times['loupe'][-1]:.1f} s, "
            f"direct {times['direct'][-1]:.1f} s, ratio {times['loupe'][-1] / times['direct'][-1]:.2f}"
        )
    loupe_coords = np.loadtxt(loupe_out, delimiter=",", skiprows=1, usecols=(1, 2), dtype=np.float32)
    direct_coords = np.load(direct_out)
    trust_loupe = trustworthiness(vectors, loupe_coords)
    trust_direct = trustworthiness(vectors, direct_coords)
    ratio = statistics.median(times["loupe"]) / statistics.median(times["direct"])
    print(
        f"median: loupe {statistics.median(times['loupe']):.1f} s, direct "
        f"{statistics.median(times['direct']):.1f} s, ratio {ratio:.2f} (goal <= {GOAL_RATIO})"
    )
    print(
        f"trustworthiness: loupe {trust_loupe:.4f}, direct {trust_direct:.4f} "
        f"(goal: loupe >= direct - {GOAL_TRUST_GAP})"
    )
    met = ratio <= GOAL_RATIO and trust_loupe >= trust_direct - GOAL_TRUST_GAP
    print("goal met" if met else "goal NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
