"""Which column is the label: by name, else a column of a few short categories, else none at all.

Before: a dataset whose labels sit in ``section``, ``topic`` or ``lang`` opened as "(no label)"
with an empty made-up ``label`` column; now the Dataset says whether its labels are real.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.data.columns import MAX_LABEL_CHARS, MAX_LABELS
from engine.data.datasets import NO_LABEL, load_csv, load_dataset
from engine.errors import BadInputError

# Package descriptions in the style of Debian's, in the languages a user's data holds.
DESCRIPTIONS = {
    "de": "Werkzeug zum Verwalten von Paketen: „apt“ lädt, prüft und installiert Pakete samt Abhängigkeiten.",
    "ru": "Утилита для управления пакетами: загружает, проверяет и устанавливает пакеты с зависимостями.",
    "ja": "パッケージ管理ツール：依存関係を含めてパッケージを取得し、検証してインストールします。",
    "ar": "أداة لإدارة الحزم: تنزّل الحزم وتتحقق منها وتثبّتها مع اعتمادياتها.",
    "en": "Package tool — fetches, checks and installs packages with their “dependencies” 📦.",
}
SECTIONS = ["admin", "utils", "libs", "net"]


def debian_rows(count: int = 40) -> list[dict[str, object]]:
    langs = list(DESCRIPTIONS)
    return [
        {
            "package": f"paket-{i}",
            "section": SECTIONS[i % len(SECTIONS)],
            "lang": langs[i % len(langs)],
            "description": f"{DESCRIPTIONS[langs[i % len(langs)]]} ({i})",
            "size": 1000 + i,
        }
        for i in range(count)
    ]


def write_jsonl(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def write_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("writer", [write_jsonl, write_csv])
def test_a_column_of_a_few_short_categories_is_the_label(tmp_path: Path, writer: object) -> None:
    rows = debian_rows()
    suffix = ".jsonl" if writer is write_jsonl else ".csv"
    dataset = load_dataset(writer(tmp_path / f"debian{suffix}", rows))  # type: ignore[operator]
    assert dataset.text_column == "description"
    assert dataset.label_column == "section" and dataset.has_labels  # first such column in file order
    assert list(dataset.labels) == [r["section"] for r in rows]
    assert "section" not in dataset.columns and "lang" in dataset.columns  # lang stays a column
    assert dataset.column_names == ("description", "section", "package", "lang", "size")


def test_the_text_column_numbers_ids_and_long_values_are_never_guessed_as_labels(tmp_path: Path) -> None:
    rows = [
        {
            "id": f"row-{i}",  # one value per row: an id, not a category
            "year": str(2000 + i % 3),  # numbers: not a label even in CSV, where they are text
            "title": ("Ein sehr langer Titel über Paketverwaltung " * 2)[: MAX_LABEL_CHARS + 1] + str(i % 2),
            "text": DESCRIPTIONS["de"] + f" {i}",
        }
        for i in range(20)
    ]
    dataset = load_dataset(write_csv(tmp_path / "none.csv", rows))
    assert dataset.label_column is None and not dataset.has_labels
    assert list(dataset.labels) == [""] * 20  # the placeholder, which no view should show
    assert "label" not in dataset.columns and dataset.column_names[0] == "text"


def test_too_many_categories_or_too_few_rows_are_no_label(tmp_path: Path) -> None:
    many = [
        {"text": f"{DESCRIPTIONS['ru']} {i}", "topic": f"тема {i % (MAX_LABELS + 1)}"} for i in range(200)
    ]
    assert load_dataset(write_jsonl(tmp_path / "many.jsonl", many)).label_column is None
    # two distinct values in three rows: more than half the rows, so no pattern to colour by
    few = [
        {"text": "日本語 一", "topic": "a"},
        {"text": "日本語 二", "topic": "b"},
        {"text": "日本語 三", "topic": "a"},
    ]
    assert load_dataset(write_jsonl(tmp_path / "few.jsonl", few)).label_column is None
    constant = [{"text": f"مرحبا {i}", "topic": "same"} for i in range(10)]
    assert load_dataset(write_jsonl(tmp_path / "constant.jsonl", constant)).label_column is None
    enough = few * 2
    assert load_dataset(write_jsonl(tmp_path / "enough.jsonl", enough)).label_column == "topic"


def test_a_column_named_like_a_label_wins_over_a_guess(tmp_path: Path) -> None:
    rows = [{**row, "Category": f"kat-{i % 3}"} for i, row in enumerate(debian_rows())]
    assert load_dataset(write_jsonl(tmp_path / "named.jsonl", rows)).label_column == "Category"


def test_the_label_and_text_columns_can_be_chosen_or_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "debian.jsonl", debian_rows())
    chosen = load_dataset(path, label_column="lang")
    assert chosen.label_column == "lang" and chosen.labels[:2] == ("de", "ru") and "section" in chosen.columns
    refused = load_dataset(path, label_column=NO_LABEL)
    assert refused.label_column is None and set(refused.columns) == {"package", "section", "lang", "size"}
    as_text = load_dataset(path, text_column="package", label_column="section")
    assert as_text.texts[0] == "paket-0" and "description" in as_text.columns
    with pytest.raises(BadInputError, match="no column 'topic'"):
        load_dataset(path, label_column="topic")


def test_parquet_dictionary_columns_are_categories_too(tmp_path: Path) -> None:
    rows = debian_rows()
    table = pa.table(
        {
            "description": [str(r["description"]) for r in rows],
            "lang": pa.array([str(r["lang"]) for r in rows]).dictionary_encode(),
        }
    )
    pq.write_table(table, tmp_path / "dict.parquet")
    dataset = load_dataset(tmp_path / "dict.parquet")
    assert dataset.label_column == "lang" and dataset.labels[:3] == ("de", "ru", "ja")


def test_load_csv_still_guesses_no_label(tmp_path: Path) -> None:
    dataset = load_csv(write_csv(tmp_path / "debian.csv", debian_rows()))
    assert dataset.label_column is None and "section" in dataset.columns
