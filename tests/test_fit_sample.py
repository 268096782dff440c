"""``--fit-sample N``: a map fitted on a spread sample of N rows, every other row placed on it.

Run as the real command line (``python -m desktop.launcher``, tests/test_cli.py's ``run_loupe``)
on real multilingual sentences plus demo rows, with the real model and the test's private cache.
The rows in the sample must keep the positions a plain fit of those rows alone gives them (the
command's own cache serves the same vectors to both), the map must hold every row, a second run
must be served warm from the cache, never by a full fit's map, and the same N and seed must give
a bit-identical map.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq
import pytest

from engine.maps.fit_sample import spread_sample
from tests.test_cli import cache_counts, ok, run_loupe
from tests.test_compare_engine import MULTILINGUAL, demo_and_multilingual_rows, write_rows_csv

CPU = ("--device", "cpu", "--precision", "fp32")
SEED = "7"
SAMPLE = 90
FITTED_ON_A_SAMPLE = "Fitting the map on a spread sample"


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, str]]:
    return demo_and_multilingual_rows(220)


def coords_of(path: Path) -> npt.NDArray[np.float64]:
    with path.open(newline="", encoding="utf-8") as handle:
        return np.array([(float(row["x"]), float(row["y"])) for row in csv.DictReader(handle)])


def parquet_coords(path: Path) -> npt.NDArray[np.float32]:
    table = pq.read_table(path, columns=["x", "y"])
    return np.column_stack([table["x"].to_numpy(), table["y"].to_numpy()])


def proj_values() -> int:
    return cache_counts(ok(run_loupe("cache", "stats")).stdout).get("proj", 0)


def test_the_sample_keeps_its_fit_every_row_is_mapped_and_a_second_run_is_warm(
    tmp_path: Path, rows: list[tuple[str, str]]
) -> None:
    data = write_rows_csv(tmp_path / "rows.csv", rows)
    assert any(not text.isascii() for text, _ in rows) and len(rows) > 2 * SAMPLE
    args = ("project", data, "--seed", SEED, *CPU)
    first = ok(run_loupe(*args, "--fit-sample", SAMPLE, "--out", tmp_path / "a.csv"))
    assert FITTED_ON_A_SAMPLE in first.stderr and "Placing rows" in first.stderr, first.stderr
    mapped = coords_of(tmp_path / "a.csv")
    assert mapped.shape == (len(rows), 2) and np.isfinite(mapped).all()
    assert len(np.unique(mapped, axis=0)) > len(rows) * 0.9  # placed rows are not piled on a few points

    # The sample's rows alone, fitted in full: the same positions (the cache gives the same vectors).
    sample = spread_sample(len(rows), SAMPLE, int(SEED))
    alone = write_rows_csv(tmp_path / "sample.csv", [rows[i] for i in sample])
    ok(run_loupe("project", alone, "--seed", SEED, *CPU, "--out", tmp_path / "alone.csv"))
    np.testing.assert_array_equal(coords_of(tmp_path / "alone.csv"), mapped[sample])
    # A placed row lies among the sampled rows' map, not off it.
    low, high = mapped[sample].min(axis=0), mapped[sample].max(axis=0)
    assert ((mapped >= low - 1e-6) & (mapped <= high + 1e-6)).all()

    # Warm: the map comes from the cache, neither fitted nor placed again, nothing new stored.
    stored = proj_values()
    again = ok(run_loupe(*args, "--fit-sample", SAMPLE, "--out", tmp_path / "b.csv"))
    assert FITTED_ON_A_SAMPLE not in again.stderr and "Placing rows" not in again.stderr, again.stderr
    assert "Embedding" not in again.stderr, again.stderr
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert proj_values() == stored

    # A full fit of the same rows is its own map: never the sample's, and computed.
    full = ok(run_loupe(*args, "--out", tmp_path / "full.csv"))
    assert FITTED_ON_A_SAMPLE not in full.stderr and "Projecting (UMAP)" in full.stderr, full.stderr
    assert proj_values() == stored + 1
    assert not np.array_equal(coords_of(tmp_path / "full.csv"), mapped)
    # Another sample size, or another seed, is another map as well.
    ok(run_loupe(*args, "--fit-sample", SAMPLE + 10, "--out", tmp_path / "c.csv"))
    assert proj_values() == stored + 2

    # A sample not below the rows is a full fit, says so, and is served the full fit's map.
    whole = ok(run_loupe(*args, "--fit-sample", len(rows), "--out", tmp_path / "whole.csv"))
    assert f"--fit-sample {len(rows)} is not below the dataset's {len(rows)} rows: fitting every row" in (
        whole.stderr
    )
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "full.csv").read_bytes()
    assert proj_values() == stored + 2


def test_the_same_sample_and_seed_give_a_bit_identical_map(
    tmp_path: Path, rows: list[tuple[str, str]]
) -> None:
    data = write_rows_csv(tmp_path / "rows.csv", rows)
    args = ("export", data, "--fit-sample", SAMPLE, *CPU)
    ok(run_loupe(*args, "--seed", SEED, "--data", tmp_path / "a.parquet"))
    ok(run_loupe(*args, "--seed", SEED, "--data", tmp_path / "b.parquet", "--no-cache"))  # computed again
    first, second = parquet_coords(tmp_path / "a.parquet"), parquet_coords(tmp_path / "b.parquet")
    assert first.dtype == np.float32 and first.shape == (len(rows), 2)
    assert first.tobytes() == second.tobytes()
    sidecar = json.loads((tmp_path / "a.parquet.json").read_text(encoding="utf-8"))
    assert sidecar["fit_sample"] == SAMPLE and sidecar["seed"] == int(SEED)
    # Another seed draws another sample (and fits it with another seed): another map.
    ok(run_loupe(*args, "--seed", "8", "--data", tmp_path / "c.parquet"))
    assert parquet_coords(tmp_path / "c.parquet").tobytes() != first.tobytes()


def test_tsne_fits_a_sample_and_places_the_rest(tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    data = write_rows_csv(tmp_path / "rows.csv", rows)
    args = ("project", data, "--method", "tsne", "--param", "perplexity=10", "--seed", SEED, *CPU)
    done = ok(run_loupe(*args, "--fit-sample", 40, "--out", tmp_path / "t.csv"))
    assert FITTED_ON_A_SAMPLE in done.stderr, done.stderr
    mapped = coords_of(tmp_path / "t.csv")
    assert mapped.shape == (len(rows), 2) and np.isfinite(mapped).all()
    sample = spread_sample(len(rows), 40, int(SEED))
    ok(
        run_loupe(
            "project",
            write_rows_csv(tmp_path / "s.csv", [rows[i] for i in sample]),
            *args[2:],
            "--out",
            tmp_path / "s_out.csv",
        )
    )
    np.testing.assert_array_equal(coords_of(tmp_path / "s_out.csv"), mapped[sample])


def test_layer_all_fits_each_layer_on_the_sample(tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    """``--layer all --fit-sample``: one map per hidden state, each fitted on the sample. The
    last layer's map is the one ``--layer -1`` makes (earlier layers are then turned onto their
    neighbour, engine.maps.layer_maps), and not a full fit's."""
    data = write_rows_csv(tmp_path / "rows.csv", rows)
    args = ("project", data, "--seed", SEED, *CPU)
    ok(run_loupe(*args, "--fit-sample", SAMPLE, "--layer", "all", "--out", tmp_path / "all.csv"))
    with (tmp_path / "all.csv").open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    by_layer = {
        layer: np.array([(float(r["x"]), float(r["y"])) for r in table if int(r["layer"]) == layer])
        for layer in sorted({int(row["layer"]) for row in table})
    }
    assert sorted(by_layer) == list(range(7))  # MiniLM: the embedding layer and 6 transformer layers
    assert all(coords.shape == (len(rows), 2) and np.isfinite(coords).all() for coords in by_layer.values())
    ok(run_loupe(*args, "--fit-sample", SAMPLE, "--out", tmp_path / "last.csv"))
    np.testing.assert_array_equal(coords_of(tmp_path / "last.csv"), by_layer[6])
    ok(run_loupe(*args, "--out", tmp_path / "full.csv"))
    assert coords_of(tmp_path / "full.csv").tobytes() != by_layer[6].tobytes()


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        (("--fit-sample", "20"), "--fit-sample must be at least 30 rows (twice n_neighbors (15)), not 20."),
        (
            ("--fit-sample", "39", "--param", "n_neighbors=20"),
            "--fit-sample must be at least 40 rows (twice n_neighbors (20)), not 39.",
        ),
        (
            ("--fit-sample", "50", "--method", "tsne"),
            "--fit-sample must be at least 90 rows (3 × perplexity (30)), not 50.",
        ),
        (("--fit-sample", "100", "--method", "pca"), "--fit-sample is for umap and tsne"),
        (("--fit-sample", "0"), "argument --fit-sample: must be at least 1, not 0"),
        (("--fit-sample", "many"), "argument --fit-sample: 'many' is not a whole number"),
    ],
)
def test_a_bad_sample_size_is_one_sentence_and_exit_2(
    tmp_path: Path, options: tuple[str, ...], sentence: str
) -> None:
    data = write_rows_csv(tmp_path / "rows.csv", MULTILINGUAL)
    done = run_loupe("project", data, *options, *CPU, "--out", tmp_path / "out.csv")
    assert done.returncode == 2, done.stderr
    assert sentence in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "out.csv").exists()
    assert "Embedding" not in done.stderr  # refused before any row is embedded
