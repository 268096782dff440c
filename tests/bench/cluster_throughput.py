"""Rows per second of a cluster job by actor count, on a local Ray head with token auth.

Starts one local head (``tests/ray_head.py``: ``ray start --head --block`` on 127.0.0.1, its own
session, stopped by its id) and one Valkey with a password, writes ROWS real multilingual rows
as a folder of Parquet files (one block per file, so that more than one actor gets work), then
for each actor count submits the job with an empty cache (cold) and reads the driver's own
report: ``loupe: embedded N rows on the cluster (C computed, …) in S s``, the embedding phase
alone, model loads included. The whole job's wall time (read, embed, PCA map) is shown too.

    .venv/bin/python tests/bench/cluster_throughput.py [--rows 4000] [--actors 1 2] [--timeout 600]

Writes tests/bench/results/cluster_throughput.md. A job that does not end within --timeout is
stopped and reported as such: with as many actors as CPUs, Ray Data's readers may find no CPU
left (ray#44687); the backend therefore keeps one CPU (half of a single one) for the readers.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.cluster.client import ClusterClient  # noqa: E402
from engine.cluster.spec import ClusterJob  # noqa: E402
from engine.runtime.version import loupe_version  # noqa: E402
from tests.ray_head import LocalRayHead, ValkeyWithPassword, write_dataset_files  # noqa: E402

EMBEDDED = re.compile(r"loupe: embedded ([\d,]+) rows on the cluster \(([\d,]+) computed.*\) in ([\d.]+) s")
RESULT = ROOT / "tests" / "bench" / "results" / "cluster_throughput.md"


def run_once(
    head: LocalRayHead, valkey: ValkeyWithPassword, path: Path, actors: int, timeout_s: float
) -> dict[str, object]:
    valkey.flush()
    client = ClusterClient(head.address, token=head.token)
    job = ClusterJob(
        path=str(path),
        redis_url=valkey.url(with_password=True),
        text_column="text",
        method="pca",
        actors=actors,
        loupe_version=loupe_version(),
    )
    began = time.monotonic()
    job_id = client.submit(job)
    deadline = began + timeout_s
    state = client.state(job_id)
    while not state.terminal and time.monotonic() < deadline:
        time.sleep(2)
        state = client.state(job_id)
        print(f"  {time.monotonic() - began:6.1f} s  {state.describe()}", flush=True)
    wall = time.monotonic() - began
    if not state.terminal:
        client.stop(job_id)
        written = len(valkey.keys("loupe:v2:emb:*"))
        return {
            "actors": actors,
            "status": f"did not end in {timeout_s:.0f} s ({state.describe()}; {written:,} rows in the cache)",
        }
    found = EMBEDDED.search(client.logs(job_id))
    if state.status != "SUCCEEDED" or found is None:
        return {"actors": actors, "status": f"{state.status}: {state.message}"}
    rows, computed, seconds = int(found[1].replace(",", "")), int(found[2].replace(",", "")), float(found[3])
    return {
        "actors": actors,
        "status": "SUCCEEDED",
        "rows": rows,
        "computed": computed,
        "embed_s": seconds,
        "rows_per_s": computed / seconds,
        "wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--append", action="store_true", help="add rows to the table already written")
    args = parser.parse_args()

    head = LocalRayHead(num_cpus=args.cpus).start()
    valkey = ValkeyWithPassword().start()
    results = []
    try:
        data = write_dataset_files(head.temp_dir / "data", args.rows, name="bench")
        for actors in args.actors:
            print(f"{actors} actor(s), {args.rows} rows, cold cache", flush=True)
            results.append(run_once(head, valkey, data.parquet_folder, actors, args.timeout))
            print(f"  -> {results[-1]}", flush=True)
    finally:
        valkey.close()
        head.stop()
    lines = [
        "# Cluster throughput by actor count",
        "",
        f"`tests/bench/cluster_throughput.py --rows {args.rows} --actors {' '.join(map(str, args.actors))}`, "
        f"{time.strftime('%Y-%m-%d')}: a local Ray head (token auth, `--num-cpus={args.cpus}`), a local "
        "Valkey with a password, MiniLM on the CPU, an empty cache before each job. The rows are real "
        "multilingual sentences and stdlib docstrings, as a folder of 4 Parquet files.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work, no GPU; "
        f"Python {platform.python_version()}.",
        "",
        "| Ray CPUs | actors | status | rows computed | embedding phase (s) | rows/s | whole job (s) |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    rows = []
    for result in results:
        if result["status"] == "SUCCEEDED":
            rows.append(
                f"| {args.cpus} | {result['actors']} | succeeded | {result['computed']:,} "
                f"| {result['embed_s']:.1f} | {result['rows_per_s']:.0f} | {result['wall_s']:.1f} |"
            )
        else:
            rows.append(f"| {args.cpus} | {result['actors']} | {result['status']} | | | | |")
    text = "\n".join(lines + rows) + "\n"
    print(text)
    if args.append and RESULT.exists():
        RESULT.write_text(RESULT.read_text(encoding="utf-8") + "\n".join(rows) + "\n", encoding="utf-8")
    elif not args.no_write:
        RESULT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
