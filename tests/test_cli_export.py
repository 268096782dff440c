"""``loupe export``: figures and data without a window, each with a provenance sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from engine.data.datasets import load_dataset
from tests.test_cli import CPU, LABELS, TEXTS, data_csv, ok, run_loupe  # noqa: F401  (data_csv: a fixture)


def test_svg_figure_is_vector_and_its_sidecar_says_how_it_was_made(tmp_path: Path, data_csv: Path) -> None:  # noqa: F811
    figure = tmp_path / "map.svg"
    args = ["--method", "pca", "--param", "whiten=true", "--seed", "7", "--title", "My map"]
    ok(run_loupe("export", data_csv, "--figure", figure, *args, "--quiet", *CPU))
    svg = figure.read_text(encoding="utf-8")
    assert svg.count("<use") >= len(LABELS) and "<image" not in svg  # one mark per point, no bitmap
    assert "My map" in svg
    record = json.loads((tmp_path / "map.svg.json").read_text(encoding="utf-8"))
    assert record["dataset"]["fingerprint"] == load_dataset(data_csv).fingerprint
    assert record["dataset"]["rows"] == len(LABELS)
    assert record["method"] == "pca" and record["parameters"] == {"whiten": True} and record["seed"] == 7
    assert record["model"].startswith("model@") and record["layer"] == -1
    assert set(record["versions"]) >= {"numpy", "scikit-learn", "umap-learn", "matplotlib"}


def test_png_size_follows_inches_and_dpi(tmp_path: Path, data_csv: Path) -> None:  # noqa: F811
    figure = tmp_path / "map.png"
    size = ["--width", "4", "--height", "3", "--dpi", "50", "--no-legend", "--axes"]
    ok(run_loupe("export", data_csv, "--figure", figure, "--method", "pca", *size, "--quiet", *CPU))
    image = QImage(str(figure))
    assert (image.width(), image.height()) == (200, 150)


def test_parquet_data_with_analysis_columns_and_metadata(tmp_path: Path, data_csv: Path) -> None:  # noqa: F811
    import pyarrow.parquet as pq

    data = tmp_path / "map.parquet"
    ok(run_loupe("export", data_csv, "--data", data, "--method", "pca", "--analyse", "--quiet", *CPU))
    table = pq.read_table(data)
    assert table.schema.names == ["row", "x", "y", "label", "cluster", "cluster_name", "faithfulness", "text"]
    assert table.column("label").to_pylist() == LABELS
    assert table.column("text").to_pylist() == TEXTS
    inside = json.loads(table.schema.metadata[b"loupe"])
    beside = json.loads((tmp_path / "map.parquet.json").read_text(encoding="utf-8"))
    assert inside["dataset"] == beside["dataset"] and 0 <= beside["trustworthiness"] <= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "loupe export needs --figure"),
        (["--figure", "map.gif"], "the file name must end in .png or .svg or .pdf."),
        (["--data", "map.xlsx"], "the file name must end in .csv or .parquet."),
        (["--figure", "map.png", "--width", "0"], "width and height must be 0.5 to 100 inches"),
    ],
)
def test_bad_export_is_one_sentence(tmp_path: Path, data_csv: Path, args: list[str], message: str) -> None:  # noqa: F811
    args = [str(tmp_path / a) if a.startswith("map.") else a for a in args]
    result = run_loupe("export", data_csv, "--method", "pca", *args, "--quiet", *CPU)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("loupe: ") and message in result.stderr, result.stderr
    assert not list(tmp_path.glob("map.*"))


def test_a_table_with_its_own_vectors_is_exported_without_a_model(tmp_path: Path) -> None:
    """The sidecar says "precomputed vectors": no model is asked for, so a model that cannot be
    found (here a folder that does not exist) does not stop the export."""
    import numpy as np

    table = tmp_path / "points.csv"
    table.write_text("text\n" + "\n".join(f"point {i}" for i in range(12)) + "\n", encoding="utf-8")
    np.save(tmp_path / "points.npy", np.random.default_rng(0).normal(size=(12, 5)).astype(np.float32))
    data = tmp_path / "map.csv"
    nowhere = tmp_path / "nowhere"
    result = ok(run_loupe("export", table, "--data", data, "--method", "pca", "--model", nowhere))
    assert "Embedding" not in result.stderr
    record = json.loads((tmp_path / "map.csv.json").read_text(encoding="utf-8"))
    assert record["model"] == "precomputed vectors" and "pooling" not in record
    assert len(data.read_text(encoding="utf-8").splitlines()) == 13
