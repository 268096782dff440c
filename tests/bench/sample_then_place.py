"""Maps of very many rows: fit UMAP on a spread sample, then place the rest (engine.maps.placement).

At ``--rows`` real rows (tests/bench/scale_texts.py's vectors) it fits the full map once and,
for each ``--sample`` size, fits a map on a seeded random sample of that many rows (every part
of the data in proportion) and places the other rows at the similarity-weighted mean of their
k nearest sampled rows. Reports seconds (fit, place, total) and trustworthiness
(engine.maps.analysis.trustworthiness: k = 10, cosine, the same 2,000 rows for every map).

``--million`` instead builds 1,000,000 realistic rows from the real ones (each a real row plus
noise of the size of the distance to its nearest neighbours, so that the rows stay on the data's
shape and no two are equal), fits a sample and places the rest, and reports seconds, the peak
memory of the process, and the map's trustworthiness (no full fit to compare with at that size).

    .venv/bin/python tests/bench/sample_then_place.py --vectors /tmp/scale_vectors.npy \
        --sample 10000 20000
    .venv/bin/python tests/bench/sample_then_place.py --vectors /tmp/scale_vectors.npy --million \
        --sample 50000
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def load(path: Path, layer: int) -> npt.NDArray[np.float32]:
    stored = np.load(path, mmap_mode="r")
    return np.ascontiguousarray(stored[layer] if stored.ndim == 3 else stored, dtype=np.float32)


def million_rows(real: npt.NDArray[np.float32], rows: int, seed: int) -> npt.NDArray[np.float32]:
    """``rows`` rows, each a real unit row plus Gaussian noise a third of a typical neighbour gap."""
    rng = np.random.default_rng(seed)
    unit = real / np.linalg.norm(real, axis=1, keepdims=True)
    probe = unit[rng.choice(len(unit), 500, replace=False)]
    similarity = np.sort(probe @ unit.T, axis=1)[:, -6]  # the 5th nearest other row
    gap = float(np.median(np.sqrt(np.maximum(2 - 2 * similarity, 0))))
    scale = gap / 3 / np.sqrt(unit.shape[1])
    out = np.empty((rows, unit.shape[1]), np.float32)
    for start in range(0, rows, 100_000):
        stop = min(start + 100_000, rows)
        source = unit[rng.integers(0, len(unit), stop - start)]
        out[start:stop] = source + rng.normal(scale=scale, size=source.shape).astype(np.float32)
    return out


def sample_then_place(
    vectors: npt.NDArray[np.float32], sample: int, seed: int
) -> tuple[npt.NDArray[np.float32], float, float]:
    from engine.maps.placement import place_rows
    from engine.maps.projection import ProjectionParams, project

    chosen = np.sort(np.random.default_rng(seed).choice(len(vectors), sample, replace=False))
    rest = np.setdiff1d(np.arange(len(vectors)), chosen)
    started = time.perf_counter()
    fitted = project(vectors[chosen], ProjectionParams(method="umap", seed=seed))
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    placed = place_rows(vectors[chosen], fitted, vectors[rest])
    place_seconds = time.perf_counter() - started
    coords = np.empty((len(vectors), 2), np.float32)
    coords[chosen], coords[rest] = fitted, placed
    return coords, fit_seconds, place_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=Path, required=True)
    parser.add_argument("--layer", type=int, default=-1)
    parser.add_argument("--rows", type=int, help="only the first ROWS real rows")
    parser.add_argument("--sample", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--million", action="store_true")
    args = parser.parse_args()
    from engine.maps.analysis import trustworthiness
    from engine.maps.projection import ProjectionParams, project

    vectors = load(args.vectors, args.layer)[: args.rows]
    if args.million:
        started = time.perf_counter()
        vectors = million_rows(vectors, 1_000_000, args.seed)
        print(f"built {len(vectors):,} rows in {time.perf_counter() - started:.0f} s (not timed below)")
    print(f"{len(vectors):,} rows x {vectors.shape[1]}, seed {args.seed}")
    print("| map | fit s | place s | total s | trustworthiness |")
    print("|---|---|---|---|---|")
    if not args.million:
        started = time.perf_counter()
        full = project(vectors, ProjectionParams(method="umap", seed=args.seed))
        seconds = time.perf_counter() - started
        print(
            f"| full fit, {len(vectors):,} rows | {seconds:.1f} | - | {seconds:.1f} | "
            f"{trustworthiness(vectors, full):.4f} |",
            flush=True,
        )
    for sample in args.sample:
        coords, fit_seconds, place_seconds = sample_then_place(vectors, sample, args.seed)
        print(
            f"| fit {sample:,}, place {len(vectors) - sample:,} | {fit_seconds:.1f} | {place_seconds:.1f} | "
            f"{fit_seconds + place_seconds:.1f} | {trustworthiness(vectors, coords):.4f} |",
            flush=True,
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak memory of the process: {peak:.1f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
