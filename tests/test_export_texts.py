"""Exported map data carries each row's text (CSV and Parquet), from ``write_data`` and from
``loupe export --data`` alike, so a reader can tell which text a point is without the dataset."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine.data.datasets import load_dataset
from engine.user.data_files import write_data
from tests.test_cli import CPU, ok, run_loupe

TEXTS = ["Le café « du coin »", "Поезд номер 1", "東京の駅で", "وصل القطار", "line\nbreak, “quoted”"]


def _read_csv(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))  # a 1.2 MB cell is a text here
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_data_ends_with_the_texts(tmp_path: Path, suffix: str) -> None:
    texts = [*TEXTS, "x" * 1_200_000]  # a cell over csv's default field limit of 128 KiB
    coords = np.arange(2 * len(texts), dtype=np.float32).reshape(-1, 2)
    labels = ["a", "b", "c", "d", "e", "f"]
    path = write_data(tmp_path / f"map{suffix}", coords, labels, texts=texts, extra={"kept": [True] * 6})
    if suffix == ".csv":
        rows = _read_csv(path)
        assert list(rows[0]) == ["row", "x", "y", "label", "kept", "text"]
        assert [row["text"] for row in rows] == texts
    else:
        table = pq.read_table(path)
        assert table.schema.names == ["row", "x", "y", "label", "kept", "text"]
        assert table.column("text").to_pylist() == texts


def test_write_data_takes_an_arrow_backed_dataset_as_it_is(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("text,label\n" + "".join(f'"{t}",{i}\n' for i, t in enumerate(TEXTS)), encoding="utf-8")
    dataset = load_dataset(source)
    coords = np.zeros((len(dataset), 2), np.float32)
    path = write_data(tmp_path / "map.parquet", coords, dataset.labels, texts=dataset.texts)
    assert pq.read_table(path).column("text").to_pylist() == TEXTS


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_loupe_export_data_has_the_texts_too(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / "rows.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((text, str(row % 2)) for row, text in enumerate(TEXTS * 2))
    out = tmp_path / f"map{suffix}"
    ok(run_loupe("export", source, "--data", out, "--method", "pca", "--quiet", *CPU))
    if suffix == ".csv":
        rows = _read_csv(out)
        assert list(rows[0]) == ["row", "x", "y", "label", "text"]
        assert [row["text"] for row in rows] == TEXTS * 2
    else:
        assert pq.read_table(out).column("text").to_pylist() == TEXTS * 2
