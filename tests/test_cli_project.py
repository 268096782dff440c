"""``loupe project``: every method with parameters, analysis columns, every layer, given vectors."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.test_cli import CPU, LABELS, TEXTS, data_csv, ok, run_loupe  # noqa: F401  (data_csv: a fixture)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_tsne_with_parameters_and_analysis_columns(tmp_path: Path, data_csv: Path) -> None:  # noqa: F811
    out = tmp_path / "map.csv"
    args = [
        "project",
        data_csv,
        "--out",
        out,
        "--method",
        "tsne",
        "--param",
        "perplexity=2",
        "--analyse",
        *CPU,
    ]
    result = ok(run_loupe(*args))
    assert "trustworthiness 0." in result.stderr
    rows = read_rows(out)
    assert list(rows[0]) == ["row", "x", "y", "label", "cluster", "cluster_name", "faithfulness"]
    assert [row["label"] for row in rows] == LABELS
    assert all(0.0 <= float(row["faithfulness"]) <= 1.0 for row in rows)
    # The same seed and parameters give the same map (here, from the cache).
    again = tmp_path / "again.csv"
    ok(run_loupe("project", data_csv, "--out", again, "--method", "tsne", "--param", "perplexity=2", *CPU))
    assert [(r["x"], r["y"]) for r in read_rows(again)] == [(r["x"], r["y"]) for r in rows]


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("n_neighbors=-5", "n_neighbors must be at least 2, not -5."),
        ("bogus=1", "umap has no parameter 'bogus'"),
        ("n_neighbors", "--param takes NAME=VALUE, not 'n_neighbors'."),
    ],
)
def test_a_bad_parameter_is_one_sentence(tmp_path: Path, data_csv: Path, param: str, message: str) -> None:  # noqa: F811
    result = run_loupe("project", data_csv, "--out", tmp_path / "o.csv", "--param", param, "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("loupe: ") and message in result.stderr, result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_every_layer_in_one_aligned_file(tmp_path: Path, data_csv: Path) -> None:  # noqa: F811
    out = tmp_path / "layers.csv"
    ok(run_loupe("project", data_csv, "--out", out, "--layer", "all", "--method", "pca", "--quiet", *CPU))
    rows = read_rows(out)
    assert len(rows) == 7 * len(TEXTS)
    assert sorted({int(row["layer"]) for row in rows}) == list(range(7))


def test_vectors_next_to_the_table_are_mapped_without_a_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(0, 1, (20, 8)), rng.normal(6, 1, (20, 8))]).astype(np.float32)
    table = tmp_path / "points.csv"
    table.write_text("text\n" + "\n".join(f"point {i}" for i in range(40)) + "\n", encoding="utf-8")
    np.save(tmp_path / "points.npy", vectors)
    out = tmp_path / "map.csv"
    result = ok(run_loupe("project", table, "--out", out, "--method", "pca", "--model", tmp_path / "nowhere"))
    assert "Embedding" not in result.stderr  # no model was asked for (the model path does not exist)
    xs = np.array([float(row["x"]) for row in read_rows(out)])
    # PCA's first axis separates the two groups the vectors were drawn from.
    assert (np.sign(xs[:20]) != np.sign(xs[20:].mean())).all() or (
        np.sign(xs[20:]) != np.sign(xs[:20].mean())
    ).all()


def test_analysis_columns_are_the_engines_scores(
    tmp_path: Path,
    data_csv: Path,  # noqa: F811
    cache: Any,
    minilm: Any,
) -> None:
    """``--analyse`` writes what the engine's API scores (score_map, score_rows), not a copy of it:
    the same map flow run here, in this process, on the same cache gives the same columns."""
    from engine.api.flow import map_flow
    from engine.api.types import MapScores, OpenDataset, ProjectedMap, ScoreRows
    from engine.core.service import EngineService
    from engine.maps.projection import ProjectionParams

    out = tmp_path / "map.csv"
    result = ok(run_loupe("project", data_csv, "--out", out, "--method", "pca", "--analyse", *CPU))
    rows = read_rows(out)

    service = EngineService(cache, device="cpu")
    service.engine._spec, service.engine._loaded = minilm.spec, minilm
    try:
        dataset_id = service.open_dataset(OpenDataset(data_csv)).dataset_id
        steps = list(map_flow(service, dataset_id, ProjectionParams(method="pca"), preview=False))
        shown, scores = steps[-2], steps[-1]
        assert isinstance(shown, ProjectedMap) and isinstance(scores, MapScores)
        faithful = service.score_rows(ScoreRows(shown.map_id)).values
    finally:
        service.close()
    assert [int(row["cluster"]) for row in rows] == scores.labels.tolist()
    assert [row["cluster_name"] for row in rows] == [scores.names.get(int(c), "") for c in scores.labels]
    np.testing.assert_allclose([float(row["faithfulness"]) for row in rows], faithful, atol=1e-6)
    np.testing.assert_allclose([[float(row["x"]), float(row["y"])] for row in rows], shown.coords, rtol=1e-5)
    assert f"loupe: trustworthiness {scores.trustworthiness:.3f} (cosine)" in result.stderr
