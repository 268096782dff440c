"""``loupe compare`` on the demo rows, layer 1 against the last layer of MiniLM: a cold run
(fresh cache) against a rerun (the same cache), each a whole process, back to back.

The cold run loads the model, embeds every row at both layers, fits two UMAP maps and computes
the neighbour overlaps and CKA; the rerun reads both sides' embeddings and maps and the
comparison's own result from the cache (it embeds nothing: the script checks the sidecar) and
still aligns the maps and writes the files.

    .venv/bin/python tests/bench/compare_cold_warm.py [--rows 2000] [--device cpu] [--method umap]

The goal (issue 16): the rerun takes at most half the cold time. No timing is asserted in the
test suite; this script prints the figures and exits 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_warm_vs_cold import stop_servers_under  # noqa: E402  (the sibling bench's clean-up)

NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
GOAL_RATIO = 0.5


def write_demo_csv(path: Path, rows: int) -> int:
    """The demo dataset's first ``rows`` rows (texts and labels) as a CSV; how many it wrote."""
    from engine.data.demo_data import build_stdlib_dataset

    demo = build_stdlib_dataset(max_rows=rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(demo.texts, demo.labels, strict=True))
    return len(demo.texts)


def timed_compare(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall-clock seconds of one whole ``loupe compare`` process, and what it printed."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--method", default="umap", choices=["umap", "pca", "tsne"])
    parser.add_argument("--keep", action="store_true", help="keep the temporary LOUPE_HOME and files")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="lc", dir="/tmp"))  # short: unix sockets allow 107 bytes
    os.environ["LOUPE_HOME"] = str(home)
    os.environ.pop("LOUPE_REDIS_URL", None)
    os.environ.pop("NUMBA_CACHE_DIR", None)  # a real first run compiles UMAP's kernels too
    env = {name: value for name, value in os.environ.items() if name not in NO_DISPLAY}
    try:
        data = home / "demo.csv"
        rows = write_demo_csv(data, args.rows)
        base = [sys.executable, "-m", "desktop.launcher", "compare", str(data), "--layer", "1"]
        base += ["--against", "minilm", "--method", args.method, "--device", args.device, "--quiet"]
        shown = " ".join(["loupe", *base[3:]])
        print(f"{rows} demo rows; command: {shown} --out F.csv", flush=True)
        cold_s, cold_out = timed_compare([*base, "--out", str(home / "cold.csv")], env)
        print(f"cold run: {cold_s:.2f} s", flush=True)
        warm_s, warm_out = timed_compare([*base, "--out", str(home / "warm.csv")], env)
        print(f"rerun:    {warm_s:.2f} s", flush=True)
        record = json.loads((home / "warm.csv.json").read_text(encoding="utf-8"))
        embedded = (record["base"]["embedded"], record["against"]["embedded"])
        ratio = warm_s / cold_s
        print(f"rerun / cold = {ratio:.3f} (goal <= {GOAL_RATIO})")
        print(f"rerun embedded {embedded[0]} + {embedded[1]} rows; comparison from the cache: "
              f"{record['scores']['from_cache']}")  # fmt: skip
        print(f"cold said:\n{cold_out}rerun said:\n{warm_out}", end="")
        print(f"machine: {platform.node()}, {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
        if embedded != (0, 0) or not record["scores"]["from_cache"]:
            print("the rerun was not a cache hit: the benchmark did not measure what it says")
            return 1
        return 0 if ratio <= GOAL_RATIO else 1
    finally:
        stop_servers_under(home)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
