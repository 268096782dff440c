"""Loading a 1M-row Parquet file: ``load_dataset`` vs ``pandas.read_parquet`` + a list of str.

Writes N short rows (text, label, an integer column; every 100th text blank) to a Parquet file,
then loads it in a fresh process per way and run (``--repeat``, best time shown), timing the
load and reading the process's peak RSS (``VmHWM``, else ``ru_maxrss``) above what the imports
alone cost:

- ``loupe``: ``load_dataset`` (texts stay in Arrow buffers), then one pass over every text;
- ``arrow-pylist``: ``pyarrow.parquet.read_table`` + ``to_pylist`` of the texts, stripped,
  blanks dropped (what a loader that wants a ``list[str]`` does);
- ``pandas``: ``pandas.read_parquet`` + ``tolist``, stripped, blanks dropped (when pandas
  imports with ``--pandas-python``, default this Python).

    .venv/bin/python tests/bench/load_parquet_1m.py [--rows 1000000] [--pandas-python PY]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, re, resource, sys, time
from pathlib import Path

def peak_kb():
    # VmHWM is this process's own peak; ru_maxrss can carry the parent's peak across exec.
    try:
        return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

way, path = sys.argv[1], Path(sys.argv[2])
if way == "loupe":
    import pyarrow, pyarrow.parquet, pyarrow.compute
    from engine.data.datasets import load_dataset
elif way == "arrow-pylist":
    import pyarrow, pyarrow.parquet
else:
    import pandas, pyarrow
base = peak_kb()
began = time.perf_counter()
if way == "loupe":
    dataset = load_dataset(path)
    texts, rows = dataset.texts, len(dataset)
elif way == "arrow-pylist":
    column = pyarrow.parquet.read_table(path)["text"].to_pylist()
    texts = [t for t in (c.strip() for c in column) if t]
    del column
    rows = len(texts)
else:
    frame = pandas.read_parquet(path)
    texts = [t for t in (c.strip() for c in frame["text"].tolist()) if t]
    rows = len(texts)
load_s = time.perf_counter() - began
began = time.perf_counter()
chars = sum(len(t) for t in texts)
iterate_s = time.perf_counter() - began
peak = peak_kb()
print(json.dumps({"way": way, "rows": rows, "chars": chars, "load_s": load_s, "iterate_s": iterate_s,
                  "peak_mb": peak / 1024, "above_imports_mb": (peak - base) / 1024}))
"""


def write_parquet(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [" " if i % 100 == 0 else f"Row {i}: a short sentence about topic {i % 97}." for i in range(rows)]
    table = pa.table(
        {
            "text": pa.array(texts, pa.string()),
            "label": pa.array([f"topic {i % 7}" for i in range(rows)], pa.string()),
            "n": pa.array(range(rows), pa.int64()),
        }
    )
    pq.write_table(table, path)


def run(python: str, way: str, path: Path) -> dict[str, Any] | str:
    done = subprocess.run(
        [python, "-c", CHILD, way, str(path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way; the best time is shown")
    parser.add_argument("--pandas-python", default=sys.executable, help="a Python with pandas and pyarrow")
    args = parser.parse_args()
    ways = (("loupe", sys.executable), ("arrow-pylist", sys.executable), ("pandas", args.pandas_python))
    results: dict[str, list[dict[str, Any]]] = {way: [] for way, _ in ways}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.parquet"
        write_parquet(path, args.rows)
        print(f"{args.rows} rows, {path.stat().st_size / 2**20:.1f} MB of Parquet")
        for _ in range(args.repeat):  # interleaved, so a slow moment of the machine hits every way
            for way, python in ways:
                result = run(python, way, path)
                if isinstance(result, str):
                    print(f"{way:>13}: not run ({result})")
                else:
                    results[way].append(result)
    for way, runs in results.items():
        if runs:
            print(
                f"{way:>13}: load {min(r['load_s'] for r in runs):.2f} s (best of {len(runs)}), "
                f"one pass over the texts {min(r['iterate_s'] for r in runs):.2f} s, "
                f"peak RSS {max(r['peak_mb'] for r in runs):.0f} MB "
                f"({max(r['above_imports_mb'] for r in runs):.0f} MB above the imports), "
                f"{runs[0]['rows']} rows"
            )


if __name__ == "__main__":
    main()
