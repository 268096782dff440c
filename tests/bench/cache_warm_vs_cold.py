"""``loupe project --method umap`` on a large CSV: first (cold) run vs second (warm) run.

Builds N distinct, realistic texts from this Python's stdlib docstrings (text i joins two
docstring paragraphs and its own number), writes them to a CSV and, in one fresh LOUPE_HOME,
runs the command twice, each as a whole process timed by the wall clock: cold (model load,
N embeddings, UMAP, numba compilation included) and warm (everything cached). Then it times the
warm run's own work without the process start-up, in this process: ``load_csv`` plus
``Engine.cached_map`` (one cache read), after the cache has been opened.

    .venv/bin/python tests/bench/cache_warm_vs_cold.py [--rows 50000] [--device auto]

The goal (issue): warm at least 20x faster than cold, and under 1 s of work after start-up.
Timings on a shared machine are noisy; the cold run takes many minutes on a small CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
GOAL_RATIO = 20.0
GOAL_WORK_S = 1.0


def build_texts(rows: int) -> list[str]:
    """``rows`` distinct texts: two stdlib docstring paragraphs each, numbered to be unique."""
    from engine.data.demo_data import build_stdlib_dataset

    docs = build_stdlib_dataset(max_rows=10**6).texts
    n = len(docs)
    texts = [f"{docs[i % n]} {docs[(7 * i + 3) % n]} ({i})" for i in range(rows)]
    assert len(set(texts)) == rows
    return texts


def write_csv(path: Path, texts: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([text] for text in texts)


def timed_project(data: Path, out: Path, device: str, env: dict[str, str]) -> float:
    """Wall-clock seconds of one whole ``loupe project --method umap`` process (progress on stderr)."""
    command = [sys.executable, "-m", "desktop.launcher", "project", str(data), "--out", str(out)]
    command += ["--method", "umap", "--device", device]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def warm_work(data: Path) -> tuple[float, float, float, bool]:
    """(open cache s, load_csv s, cached_map s, model loaded?) for the warm run's work, in process."""
    from engine.cache.connect import open_cache
    from engine.core.engine import Engine
    from engine.data.datasets import load_csv
    from engine.maps.projection import ProjectionParams

    started = time.perf_counter()
    cache = open_cache()
    try:
        opened = time.perf_counter()
        engine = Engine(cache)
        dataset = load_csv(data)
        loaded = time.perf_counter()
        coords = engine.cached_map(dataset.texts, ProjectionParams(method="umap", seed=42))
        done = time.perf_counter()
    finally:
        cache.close()
    if coords is None:
        raise SystemExit("the warm in-process run found no cached map: the benchmark is not measuring a hit")
    assert coords.shape == (len(dataset), 2)
    model_used = engine.model_loaded or "torch" in sys.modules
    return opened - started, loaded - opened, done - loaded, model_used


def stop_servers_under(home: Path) -> None:
    """SIGKILL any cache server of ``home`` left behind by an interrupted run."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and "-server" in cmdline and str(home) in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--keep", action="store_true", help="keep the temporary LOUPE_HOME and files")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="lw", dir="/tmp"))  # short: unix sockets allow 107 bytes
    os.environ["LOUPE_HOME"] = str(home)
    os.environ.pop("LOUPE_REDIS_URL", None)
    os.environ.pop("NUMBA_CACHE_DIR", None)  # a real first run compiles UMAP's kernels too
    env = {name: value for name, value in os.environ.items() if name not in NO_DISPLAY}
    try:
        data = home / "texts.csv"
        write_csv(data, build_texts(args.rows))
        print(f"{args.rows} rows in {data} ({data.stat().st_size / 2**20:.1f} MiB)", flush=True)

        cold_s = timed_project(data, home / "cold.csv", args.device, env)
        print(f"cold run: {cold_s:.1f} s", flush=True)
        warm_s = timed_project(data, home / "warm.csv", args.device, env)
        print(f"warm run: {warm_s:.2f} s", flush=True)
        same = (home / "cold.csv").read_bytes() == (home / "warm.csv").read_bytes()

        open_s, load_s, map_s, model_used = warm_work(data)
        work_s = load_s + map_s
        ratio = cold_s / warm_s
        print()
        print(f"rows                 {args.rows}")
        print(f"cold (whole process) {cold_s:.1f} s")
        print(f"warm (whole process) {warm_s:.2f} s")
        print(f"ratio                {ratio:.1f}x (goal >= {GOAL_RATIO:.0f}x)")
        print(
            f"warm work after start-up {work_s:.3f} s: load_csv {load_s:.3f} s + cached_map {map_s:.3f} s "
            f"(goal < {GOAL_WORK_S:.0f} s; opening the cache took {open_s:.3f} s)"
        )
        print(f"warm output identical to cold: {same}; warm work loaded the model: {model_used}")
        met = ratio >= GOAL_RATIO and work_s < GOAL_WORK_S and same and not model_used
        print("goal met" if met else "goal NOT met")
    finally:
        stop_servers_under(home)
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
