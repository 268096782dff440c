"""Warm ``Cache.get_many`` of 5,000 embeddings (384 float32, zstd) on the embedded Valkey server.

Measures what the key binding, the team key's MAC and the checks of what the caller expects
cost a warm run. Each measurement runs in a fresh process with its own LOUPE_HOME and server;
``--baseline DIR`` also measures the code in DIR (for example ``git archive`` of an earlier
commit unpacked there), alternating with this tree so that both see the same machine load.

    .venv/bin/python tests/bench/cache_get_many.py [--rows 5000] [--rounds 3] [--baseline DIR]

Prints one JSON line per measurement and the ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 384


def child(rows: int, team_key: bool) -> None:
    import numpy as np

    from engine.cache import codec
    from engine.cache.connect import open_cache
    from engine.cache.keys import text_key_factory

    if team_key:
        os.environ["LOUPE_CACHE_KEY"] = "bench-team-key-0123456789abcdef0123"
    cache = open_cache()
    keys = [text_key_factory("emb", {"bench": 1})(f"text {i}") for i in range(rows)]
    vectors = np.random.default_rng(0).standard_normal((rows, WIDTH)).astype(np.float32)
    cache.set_many("emb", list(zip(keys, vectors, strict=True)))
    if hasattr(codec, "Expected"):  # this tree: what the engine asks of an embedding
        expect = codec.Expected(
            shape=(WIDTH,),
            dtypes=frozenset({"float32"}),
            max_bytes=4 * WIDTH,
            max_header_bytes=4096,
            finite=True,
        )

        def get() -> list[object]:
            return list(cache.get_many(keys, expect))
    else:

        def get() -> list[object]:
            return list(cache.get_many(keys))

    assert all(hit is not None for hit in get())  # warm: every value is a hit
    times = []
    for _ in range(15):
        started = time.perf_counter()
        get()
        times.append(time.perf_counter() - started)
    cache.close()
    print(
        json.dumps(
            {"median_ms": round(statistics.median(times) * 1000, 2), "min_ms": round(min(times) * 1000, 2)}
        )
    )


def measure(tree: Path, rows: int, team_key: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="lb", dir="/tmp") as home:
        env = {**os.environ, "PYTHONPATH": str(tree), "LOUPE_HOME": home}
        env.pop("LOUPE_REDIS_URL", None)
        command = [sys.executable, __file__, "--child", "--rows", str(rows)] + (
            ["--team-key"] if team_key else []
        )
        done = subprocess.run(
            command, env=env, cwd=tree, capture_output=True, text=True, timeout=600, check=True
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["median_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--team-key", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.rows, args.team_key)
        return
    runs: dict[str, list[float]] = {"this": [], "this+team-key": [], "baseline": []}
    for _ in range(args.rounds):
        if args.baseline:
            runs["baseline"].append(measure(args.baseline, args.rows, team_key=False))
        runs["this"].append(measure(ROOT, args.rows, team_key=False))
        runs["this+team-key"].append(measure(ROOT, args.rows, team_key=True))
    medians = {name: statistics.median(times) for name, times in runs.items() if times}
    print(json.dumps({"rows": args.rows, "median_ms": medians, "runs_ms": runs}))
    if "baseline" in medians:
        for name in ("this", "this+team-key"):
            print(f"{name} / baseline: {medians[name] / medians['baseline']:.2f}")


if __name__ == "__main__":
    main()
