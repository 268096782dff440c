"""A synthetic dataset for the GUI benchmarks: a Parquet table and its precomputed vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def synthetic_dataset(rows: int, folder: Path) -> Path:
    """A Parquet table with ``rows`` short texts, a label and a score, and its vectors beside it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 64)).astype(np.float32) * 4
    label = rng.integers(0, 12, rows)
    vectors = centres[label] + rng.normal(size=(rows, 64)).astype(np.float32)
    table = pa.table(
        {
            "text": [f"row {i} of cluster {c}" for i, c in enumerate(label)],
            "label": [f"cluster {c}" for c in label],
            "score": rng.random(rows),
        }
    )
    path = folder / "synthetic.parquet"
    pq.write_table(table, path)
    np.save(folder / "synthetic.npy", vectors)
    return path
