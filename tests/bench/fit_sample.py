"""``loupe project --fit-sample N`` against a full fit: whole processes, the same real rows.

The data: the first ``--rows`` real rows of ``--vectors`` (all-MiniLM-L6-v2 embeddings of
first paragraphs of docstrings, tests/bench/scale_texts.py) written as ``rows.csv`` +
``rows.npy`` (tests/bench/umap_vs_direct.py's ``write_rows``: Loupe maps a table's own vectors
without the model). One private LOUPE_HOME; an untimed 5,000-row map first fills its numba
cache, as after any first run. Then, back to back in one run (the machine is shared: compare
the ratios, not the seconds):

* ``--fit-sample N`` cold (the map not in the cache), then the same command warm;
* the same with ``--no-cache`` (computed again): the CSV must be byte-identical;
* a full fit (no ``--fit-sample``), cold.

Reports seconds, the ratio, and each map's trustworthiness (engine.maps.analysis.trustworthiness:
k = 10, cosine, the same 2,000 rows for both maps).

``--grow ROWS`` maps ROWS rows built from the real ones instead (tests/bench/sample_then_place.py's
``million_rows``), for sizes beyond the real data. Results: tests/bench/results/fit_sample.md.

    .venv/bin/python tests/bench/fit_sample.py --vectors /tmp/index_scale_vectors.npy \
        --rows 50000 --sample 10000
    .venv/bin/python tests/bench/fit_sample.py --vectors /tmp/index_scale_vectors.npy \
        --grow 200000 --sample 20000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def cut(rows_csv: Path, vectors: np.ndarray, rows: int, folder: Path) -> Path:
    """The first ``rows`` rows as ``folder/rows.csv`` + ``rows.npy``."""
    folder.mkdir()
    np.save(folder / "rows.npy", vectors[:rows])
    lines = rows_csv.read_text(encoding="utf-8").splitlines(keepends=True)[: rows + 1]
    (folder / "rows.csv").write_text("".join(lines), encoding="utf-8")
    return folder / "rows.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=Path, required=True, help="[rows, d] .npy (texts beside it)")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--sample", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--grow",
        type=int,
        help="map this many rows built from the real ones (sample_then_place.py's million_rows: each a real "
        "row plus noise a third of a neighbour gap) instead of the first --rows real rows",
    )
    args = parser.parse_args()
    from engine.maps.analysis import trustworthiness
    from tests.bench.umap_vs_direct import write_rows

    work = Path(tempfile.mkdtemp(prefix="fit-sample-", dir="/tmp"))
    every = write_rows(args.vectors, -1, work)
    vectors = np.load(work / "rows.npy")
    if args.grow:
        from tests.bench.sample_then_place import million_rows

        vectors = million_rows(vectors, args.grow, args.seed)
        # One distinct text a row: Loupe maps the table's own vectors, the texts only name them.
        every.write_text("text\n" + "".join(f"grown row {i}\n" for i in range(args.grow)), encoding="utf-8")
        args.rows = args.grow
    rows_csv = cut(every, vectors, args.rows, work / "bench")
    warm_up = cut(every, vectors, 5_000, work / "warm-up")
    vectors = vectors[: args.rows]
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "LOUPE_HOME": str(work / "home"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    loupe = [sys.executable, "-m", "desktop.launcher", "project"]
    common = ["--method", "umap", "--seed", str(args.seed), "--quiet"]
    sample = ["--fit-sample", str(args.sample)]
    outs = {name: work / f"{name}.csv" for name in ("sample", "warm", "again", "full")}

    timed([*loupe, str(warm_up), *common, "--no-cache", "--out", str(work / "warm-up.csv")], env)
    seconds = {
        "sample": timed([*loupe, str(rows_csv), *common, *sample, "--out", str(outs["sample"])], env),
        "warm": timed([*loupe, str(rows_csv), *common, *sample, "--out", str(outs["warm"])], env),
        "again": timed(
            [*loupe, str(rows_csv), *common, *sample, "--no-cache", "--out", str(outs["again"])], env
        ),
        "full": timed([*loupe, str(rows_csv), *common, "--out", str(outs["full"])], env),
    }
    coords = {
        name: np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 2), dtype=np.float32)
        for name, path in outs.items()
    }
    identical = outs["again"].read_bytes() == outs["sample"].read_bytes()
    warm_same = outs["warm"].read_bytes() == outs["sample"].read_bytes()
    trust = {name: trustworthiness(vectors, coords[name]) for name in ("sample", "full")}
    kind = "rows built from real ones" if args.grow else "real rows"
    print(f"{len(vectors):,} {kind} x {vectors.shape[1]}, {os.cpu_count()} CPUs, seed {args.seed}")
    print("| map | seconds (whole process) | trustworthiness |")
    print("|---|---|---|")
    print(f"| full fit, {len(vectors):,} rows, cold | {seconds['full']:.1f} | {trust['full']:.4f} |")
    print(
        f"| --fit-sample {args.sample:,} (place {len(vectors) - args.sample:,}), cold | "
        f"{seconds['sample']:.1f} | {trust['sample']:.4f} |"
    )
    print(f"| --fit-sample {args.sample:,} again, --no-cache | {seconds['again']:.1f} | (same map) |")
    print(f"| --fit-sample {args.sample:,}, warm (from the cache) | {seconds['warm']:.1f} | (same map) |")
    print(f"ratio fit-sample / full (cold): {seconds['sample'] / seconds['full']:.2f}")
    print(f"trustworthiness gap (full - fit-sample): {trust['full'] - trust['sample']:.4f}")
    print(f"--no-cache run byte-identical to the first: {identical}; warm run identical: {warm_same}")
    return 0 if identical and warm_same else 1


if __name__ == "__main__":
    sys.exit(main())
