"""Neighbour overlaps at 50,000 real rows: exact kNN against approximate indexes, per space.

Rows: first paragraphs of docstrings from this machine's stdlib and site-packages (see
scale_texts.py), embedded with all-MiniLM-L6-v2 at layer 1 and the last layer, the two spaces
`loupe compare --layer 1 --against-layer -1` compares. For each space and each method, a fresh
process loads the vectors and times the import of the method's library (and, for pynndescent,
numba's compiling, which happens on the first call), building the index and the queries; the
parent then scores recall@k against the exact lists, and what the approximation does to the
comparison: the per-row Jaccard overlap of the two spaces' lists computed from approximate
lists against the same from exact ones.

    .venv/bin/python tests/bench/compare_at_scale.py --vectors /tmp/scale_vectors.npy [--save]

--vectors reads [2, rows, 384] float32 from an earlier run; with --save a missing file is
made (gathering the texts and embedding them took 21 minutes on two shared cores). Prints
Markdown. faiss-hnsw is what Loupe ships (engine.maps.neighbour_index's approximate path);
usearch, not a dependency, is measured where it is importable, e.g. after
`pip install --target /tmp/extra usearch==2.26.6 numkong` and with /tmp/extra on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
K = 10
SPACES = ("layer 1", "last layer")
# Each candidate at the settings measured; the chosen one is what engine.maps.neighbour_index uses.
METHODS = ("exact", "faiss-hnsw", "faiss-ivf", "pynndescent", "usearch")


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms == 0, 1, norms), dtype=np.float32)


def _drop_self(found: np.ndarray, k: int) -> np.ndarray:
    """k of each row's k + 1 results without the row itself (the last one where it is absent)."""
    rows = np.arange(len(found))[:, None]
    keep = found != rows
    keep[keep.sum(axis=1) > k, -1] = False
    return found[keep].reshape(len(found), k)


def _faiss_hnsw(unit: np.ndarray, k: int) -> tuple[np.ndarray, dict[str, float]]:
    """What Loupe ships above its threshold: engine.maps.neighbour_index's HNSW path."""
    began = time.perf_counter()
    import faiss  # noqa: F401  (timed apart from the work)

    from engine.maps import neighbour_index

    imported = time.perf_counter()
    lists = neighbour_index.nearest(unit, k, exact_up_to=0)
    # Building and searching are one call there; the build is single-threaded, the search not.
    return lists.indices, _times(began, imported, time.perf_counter())


def _faiss_ivf(unit: np.ndarray, k: int) -> tuple[np.ndarray, dict[str, float]]:
    began = time.perf_counter()
    import faiss

    imported = time.perf_counter()
    lists = int(4 * np.sqrt(len(unit)))
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(unit.shape[1]), unit.shape[1], lists, faiss.METRIC_INNER_PRODUCT
    )
    index.train(unit)
    index.add(unit)
    built = time.perf_counter()
    index.nprobe = 32
    _, found = index.search(unit, k + 1)
    return _drop_self(found, k), _times(began, imported, built)


def _pynndescent(unit: np.ndarray, k: int) -> tuple[np.ndarray, dict[str, float]]:
    began = time.perf_counter()
    import pynndescent

    imported = time.perf_counter()
    # The all-rows graph is what NNDescent builds; it includes each row as its own first neighbour.
    index = pynndescent.NNDescent(unit, metric="cosine", n_neighbors=30, random_state=0)
    found, _ = index.neighbor_graph
    built = time.perf_counter()
    return _drop_self(found[:, : k + 1], k), _times(began, imported, built)


def _usearch(unit: np.ndarray, k: int) -> tuple[np.ndarray, dict[str, float]]:
    began = time.perf_counter()
    from usearch.index import Index

    imported = time.perf_counter()
    # The shipped HNSW settings, in float32 (usearch stores bfloat16 unless told otherwise).
    index = Index(ndim=unit.shape[1], metric="ip", dtype="f32", connectivity=32, expansion_add=80)
    index.expansion_search = 64
    index.add(np.arange(len(unit)), unit, threads=1)
    built = time.perf_counter()
    found = index.search(unit, k + 1).keys.astype(np.intp)
    return _drop_self(found, k), _times(began, imported, built)


def _exact(unit: np.ndarray, k: int) -> tuple[np.ndarray, dict[str, float]]:
    from engine.maps.analysis import knn_indices

    began = time.perf_counter()
    found = knn_indices(unit, k)
    return found, _times(began, began, time.perf_counter())


def _times(began: float, imported: float, built: float) -> dict[str, float]:
    done = time.perf_counter()
    return {
        "import_s": imported - began,
        "build_s": built - imported,
        "search_s": done - built,
        "total_s": done - began,
    }


CALLS = {
    "exact": _exact,
    "faiss-hnsw": _faiss_hnsw,
    "faiss-ivf": _faiss_ivf,
    "pynndescent": _pynndescent,
    "usearch": _usearch,
}


def child(method: str, vectors_path: Path, space: int, rows: int, out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    unit = _unit(np.load(vectors_path, mmap_mode="r")[space, :rows])
    found, times = CALLS[method](unit, K)
    np.save(out, found)
    print(json.dumps(times))


def run_child(
    method: str, vectors: Path, space: int, rows: int, folder: Path
) -> tuple[np.ndarray, dict[str, Any]]:
    out = folder / f"{method}-{space}-{rows}.npy"
    command = [sys.executable, __file__, "--child", method, "--vectors", str(vectors)]
    command += ["--space", str(space), "--rows", str(rows), "--out", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return np.load(out), json.loads(finished.stdout.strip().splitlines()[-1])


def recall(approximate: np.ndarray, exact: np.ndarray) -> float:
    shared = (approximate[:, :, None] == exact[:, None, :]).any(axis=2).sum(axis=1)
    return float(shared.mean() / exact.shape[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=Path, default=Path("/tmp/loupe_compare_at_scale.npy"))
    parser.add_argument(
        "--save", action="store_true", help="gather and embed the rows when --vectors is missing"
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--sizes", default="10000,20000,30000,40000,50000", help="smaller sizes timed for the threshold"
    )
    parser.add_argument("--child", choices=METHODS)
    parser.add_argument("--space", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.vectors, args.space, args.rows, args.out)
        return
    sys.path.insert(0, str(ROOT))
    if not args.vectors.exists():
        if not args.save:
            raise SystemExit(f"{args.vectors} is missing: run with --save to embed the rows")
        embed = [sys.executable, str(ROOT / "tests/bench/scale_texts.py"), "--rows", str(args.rows)]
        subprocess.run(
            [*embed, "--save", str(args.vectors)],
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    vectors = np.load(args.vectors, mmap_mode="r")
    rows = min(args.rows, vectors.shape[1])
    # usearch is no dependency of Loupe: measured where it is on the path, skipped elsewhere.
    methods = [m for m in args.methods.split(",") if m and (m != "usearch" or find_spec("usearch"))]
    from engine.maps import comparison, neighbour_index

    print(f"# compare_at_scale: {rows:,} rows x {vectors.shape[2]}, k = {K}\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    load = os.getloadavg()[0]
    print(f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, no GPU; load average at start {load:.1f}")
    command = " ".join([".venv/bin/python", "tests/bench/compare_at_scale.py", *sys.argv[1:]])
    print(f"- command: `{command}`")
    print(f"- shipped: `neighbour_index.index_kind({rows})` = `{neighbour_index.index_kind(rows)}`\n")

    with tempfile.TemporaryDirectory(prefix="cmp_scale") as folder:
        lists: dict[tuple[str, int], np.ndarray] = {}
        print("## Time per space (fresh process; import includes numba's compiling for pynndescent)\n")
        print("| space | method | import s | build s | search s | total s | recall@10 |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for space, name in enumerate(SPACES):
            for method in ["exact", *(m for m in methods if m != "exact")]:
                found, times = run_child(method, args.vectors, space, rows, Path(folder))
                lists[method, space] = found
                hit = recall(found, lists["exact", space])
                print(
                    f"| {name} | {method} | {times['import_s']:.1f} | {times['build_s']:.1f} | "
                    f"{times['search_s']:.1f} | {times['total_s']:.1f} | {hit:.4f} |",
                    flush=True,
                )

        print("\n## The comparison from approximate lists against exact ones (layer 1 vs last layer)\n")
        base = np.asarray(vectors[0, :rows])
        against = np.asarray(vectors[1, :rows])
        cka = comparison.linear_cka(base, against)
        exact_overlap = comparison.neighbour_overlap(lists["exact", 0], lists["exact", 1])
        print(f"Linear CKA (does not use neighbours): {cka:.4f}\n")
        print("| method | mean overlap: exact lists | method's lists | mean abs difference per row |", end="")
        print(" rows off by > 0.2 | correlation |")
        print("|---|---:|---:|---:|---:|---:|")
        for method in methods:
            if method == "exact":
                continue
            overlap = comparison.neighbour_overlap(lists[method, 0], lists[method, 1])
            difference = float(np.abs(overlap - exact_overlap).mean())
            correlation = float(np.corrcoef(overlap, exact_overlap)[0, 1])
            far = float((np.abs(overlap - exact_overlap) > 0.2).mean())
            print(
                f"| {method} | {exact_overlap.mean():.4f} | {overlap.mean():.4f} | {difference:.4f} |", end=""
            )
            print(f" {far:.2%} | {correlation:.4f} |")

        sizes = [int(size) for size in args.sizes.split(",") if size]
        if sizes:
            print("\n## Where the approximate index becomes faster (last layer, total s, fresh process)\n")
            print("| rows | exact | faiss-hnsw (shipped settings) | recall@10 |")
            print("|---:|---:|---:|---:|")
            for size in sizes:
                exact, exact_times = run_child("exact", args.vectors, 1, size, Path(folder))
                found, times = run_child("faiss-hnsw", args.vectors, 1, size, Path(folder))
                hit = recall(found, exact)
                print(
                    f"| {size:,} | {exact_times['total_s']:.1f} | {times['total_s']:.1f} | {hit:.4f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
