"""Loading datasets: every format through ``load_dataset``, and every bad input as one sentence."""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.data.arrow import ArrowSequence
from engine.data.datasets import Dataset, check_writable, guess_label_column, load_csv, load_dataset
from engine.errors import BadInputError

ROWS: list[dict[str, Any]] = [
    {"id": 1, "text": "The cat sat on the mat.", "label": "animals", "score": 0.5},
    {"id": 2, "text": "   ", "label": "blank", "score": 1.5},
    {"id": 3, "text": "Ships sail, slowly; across the sea.", "label": "sea", "score": 2.0},
    {"id": 4, "text": "Déjà vu: « café » crème.", "label": "food", "score": -1.0},
]
KEPT = [ROWS[0], ROWS[2], ROWS[3]]
TEXTS = tuple(row["text"] for row in KEPT)
LABELS = tuple(row["label"] for row in KEPT)


def write_csv(path: Path, rows: list[dict[str, Any]], delimiter: str = ",", encoding: str = "utf-8") -> Path:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n\n", encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_hf_split(folder: Path, rows: list[dict[str, Any]], shards: int = 1) -> Path:
    """What ``datasets.Dataset.save_to_disk`` writes: Arrow *stream* shards, state.json, dataset_info.json."""
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(rows)
    files = []
    step = -(-len(rows) // shards)
    for shard in range(shards):
        name = f"data-{shard:05d}-of-{shards:05d}.arrow"
        with pa.OSFile(str(folder / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.slice(shard * step, step))
        files.append({"filename": name})
    (folder / "state.json").write_text(json.dumps({"_data_files": files, "_split": None}))
    features = {
        "text": {"dtype": "string", "_type": "Value"},
        "label": {"names": ["neg", "pos"], "_type": "ClassLabel"},
    }
    (folder / "dataset_info.json").write_text(json.dumps({"features": features}))
    return folder


def one_sentence(call: Callable[[], object], *fragments: str) -> str:
    """The BadInputError's message, checked to be one line that holds every fragment."""
    with pytest.raises(BadInputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- formats -------------------------------------------------------------------------------------


def test_csv_guesses_text_and_label_skips_blanks_and_keeps_numbers(tmp_path: Path) -> None:
    dataset = load_dataset(write_csv(tmp_path / "rows.csv", ROWS))
    assert dataset.texts == TEXTS and dataset.labels == LABELS
    assert dataset.text_column == "text" and dataset.skipped_blank == 1
    assert dataset.name == "rows" and dataset.path == tmp_path / "rows.csv"
    assert set(dataset.columns) == {"id", "score"}
    assert list(dataset.columns["id"]) == [1, 3, 4]  # integers, not "1"
    assert list(dataset.columns["score"]) == [0.5, 2.0, -1.0]
    assert dataset.vectors is None and dataset.sources == ()


def test_chosen_columns_win_over_the_guesses(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rows.csv", ROWS)
    dataset = load_dataset(path, text_column="label", label_column="id")
    assert list(dataset.texts) == [row["label"] for row in ROWS]
    assert list(dataset.labels) == ["1", "2", "3", "4"]
    assert set(dataset.columns) == {"text", "score"}


@pytest.mark.parametrize("name", ["Category", "labels", "class"])
def test_label_column_is_guessed_by_name(tmp_path: Path, name: str) -> None:
    rows = [{"text": row["text"], name: row["label"]} for row in ROWS]
    assert load_dataset(write_csv(tmp_path / "rows.csv", rows)).labels == LABELS
    assert guess_label_column(["text", "label", "class"]) == "label"
    assert guess_label_column(["text", "topic"]) is None


def test_text_column_is_the_longest_text_not_a_long_number(tmp_path: Path) -> None:
    rows = [{"code": "1234567890123456789012345678901234567890", "title": "short words", "tag": "x"}] * 3
    assert load_dataset(write_csv(tmp_path / "rows.csv", rows)).text_column == "title"


@pytest.mark.parametrize(
    ("suffix", "delimiter"), [(".tsv", "\t"), (".tab", "\t"), (".csv", ";"), (".csv", "\t")]
)
def test_tab_and_semicolon_separated_files(tmp_path: Path, suffix: str, delimiter: str) -> None:
    dataset = load_dataset(write_csv(tmp_path / f"rows{suffix}", ROWS, delimiter))
    assert dataset.texts == TEXTS and dataset.labels == LABELS


@pytest.mark.parametrize("wrap", [None, "data", "rows"])
def test_json_list_or_wrapped_list(tmp_path: Path, wrap: str | None) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(ROWS if wrap is None else {"meta": {"v": 1}, wrap: ROWS}), encoding="utf-8")
    dataset = load_dataset(path)
    assert dataset.texts == TEXTS and dataset.labels == LABELS
    assert list(dataset.columns["score"]) == [0.5, 2.0, -1.0]


def test_json_list_of_strings_is_a_text_column(tmp_path: Path) -> None:
    path = tmp_path / "texts.json"
    path.write_text(json.dumps(["one", " ", "two"]))
    dataset = load_dataset(path)
    assert dataset.texts == ("one", "two") and dataset.skipped_blank == 1


def test_json_column_of_mixed_types_is_kept_as_text(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    write_jsonl(path, [{"text": "a b c", "extra": 1}, {"text": "d e f", "extra": "two"}, {"text": "g h"}])
    assert list(load_dataset(path).columns["extra"]) == ["1", "two", None]


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_json_lines(tmp_path: Path, suffix: str) -> None:
    dataset = load_dataset(write_jsonl(tmp_path / f"rows{suffix}", ROWS))
    assert dataset.texts == TEXTS and dataset.labels == LABELS and dataset.skipped_blank == 1


def test_parquet(tmp_path: Path) -> None:
    dataset = load_dataset(write_parquet(tmp_path / "rows.parquet", ROWS))
    assert dataset.texts == TEXTS and dataset.labels == LABELS
    assert list(dataset.columns["id"]) == [1, 3, 4] and dataset.skipped_blank == 1
    assert np.asarray(dataset.columns["score"]).dtype == np.float64


def test_parquet_nulls_are_blank_texts_and_empty_labels(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"text": "kept", "label": None},
        {"text": None, "label": "x"},
        {"text": "also kept", "label": "y"},
    ]
    dataset = load_dataset(write_parquet(tmp_path / "nulls.parquet", rows))
    assert (
        dataset.texts == ("kept", "also kept") and dataset.labels == ("", "y") and dataset.skipped_blank == 1
    )


@pytest.mark.parametrize("stream", [False, True])
def test_arrow_ipc_file_or_stream(tmp_path: Path, stream: bool) -> None:
    table = pa.Table.from_pylist(ROWS)
    path = tmp_path / "rows.arrow"
    opener = pa.ipc.new_stream if stream else pa.ipc.new_file
    with pa.OSFile(str(path), "wb") as sink, opener(sink, table.schema) as writer:
        writer.write_table(table)
    assert load_dataset(path).texts == TEXTS


def test_plain_text_is_one_row_per_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes(b"first line\r\n\r\n  second line  \n\nthird, with a comma\n")
    dataset = load_dataset(path)
    assert dataset.texts == ("first line", "second line", "third, with a comma")
    assert dataset.skipped_blank == 2 and dataset.labels == ("", "", "") and dataset.name == "lines"


def test_folder_of_text_files_is_one_row_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "b.txt").write_text("Second file.\nIt has two lines.\n", encoding="utf-8")
    (folder / "a.txt").write_text("First file.", encoding="utf-8")
    (folder / "empty.txt").write_text("\n \n", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    dataset = load_dataset(folder)
    assert dataset.texts == ("First file.", "Second file.\nIt has two lines.")
    assert dataset.sources == ("a.txt", "b.txt") and dataset.skipped_blank == 1 and dataset.name == "notes"


def test_text_is_not_guessed_from_the_label_column(tmp_path: Path) -> None:
    rows = [{"text": "a b", "label": "positive"}, {"text": "c d", "label": "negative"}]
    dataset = load_dataset(write_jsonl(tmp_path / "short.jsonl", rows))
    assert dataset.texts == ("a b", "c d") and dataset.labels == ("positive", "negative")
    only = load_dataset(write_jsonl(tmp_path / "only.jsonl", [{"label": "x y", "n": 1}]))
    assert only.texts == ("x y",) and only.labels == ("",) and only.text_column == "label"


def test_hugging_face_folder_written_by_hand(tmp_path: Path) -> None:
    rows = [{"text": row["text"], "label": i % 2} for i, row in enumerate(ROWS)]
    rows.append({"text": "no label here", "label": -1})
    dataset = load_dataset(write_hf_split(tmp_path / "saved", rows, shards=2))
    assert list(dataset.texts) == [TEXTS[0], TEXTS[1], TEXTS[2], "no label here"]
    assert dataset.labels == ("neg", "neg", "pos", "")  # ClassLabel numbers become their names
    assert dataset.skipped_blank == 1 and dataset.name == "saved"


def test_hugging_face_dataset_dict_folder(tmp_path: Path) -> None:
    folder = tmp_path / "dict"
    write_hf_split(folder / "train", [{"text": "train row", "label": 1}])
    write_hf_split(folder / "test", [{"text": "test row", "label": 0}])
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    dataset = load_dataset(folder)
    assert dataset.texts == ("train row", "test row") and dataset.labels == ("pos", "neg")
    assert list(dataset.columns["split"]) == ["train", "test"]


def test_real_hugging_face_save_to_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    saved = datasets.Dataset.from_dict({"text": ["a b", " ", "c d"], "label": [1, 0, 0]}, features=features)
    saved.save_to_disk(str(tmp_path / "real"), num_shards=2)
    dataset = load_dataset(tmp_path / "real")
    assert dataset.texts == ("a b", "c d") and dataset.labels == ("pos", "neg")


def test_vectors_beside_the_table_lose_the_skipped_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rows.csv", ROWS)
    vectors = np.arange(len(ROWS) * 3, dtype=np.float64).reshape(len(ROWS), 3)
    np.save(tmp_path / "rows.npy", vectors)
    dataset = load_dataset(path)
    assert dataset.vectors is not None and dataset.vectors.dtype == np.float32
    np.testing.assert_array_equal(dataset.vectors, vectors[[0, 2, 3]])
    assert not dataset.vectors.flags.writeable


def test_vectors_beside_a_folder(tmp_path: Path) -> None:
    folder = write_hf_split(tmp_path / "saved", [{"text": "one", "label": 0}, {"text": "two", "label": 1}])
    np.save(tmp_path / "saved.npy", np.eye(2, dtype=np.float32))
    dataset = load_dataset(folder)
    assert dataset.vectors is not None and dataset.vectors.tolist() == [[1.0, 0.0], [0.0, 1.0]]


# --- encodings and sizes -------------------------------------------------------------------------


def test_windows_1252_csv_with_accents(tmp_path: Path) -> None:
    rows = [{"text": "Café crème brûlée à Noël", "label": "é"}, {"text": "niño – “quoted” €5", "label": "ñ"}]
    dataset = load_dataset(write_csv(tmp_path / "latin.csv", rows, ";", encoding="cp1252"))
    assert dataset.texts == ("Café crème brûlée à Noël", "niño – “quoted” €5") and dataset.labels == (
        "é",
        "ñ",
    )


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_utf8_with_bom_and_utf16(tmp_path: Path, encoding: str) -> None:
    dataset = load_dataset(write_csv(tmp_path / "bom.csv", ROWS, encoding=encoding))
    assert dataset.text_column == "text" and "id" in dataset.columns  # no BOM glued to the first name
    assert dataset.texts == TEXTS


def test_a_3_mb_cell_is_kept_whole(tmp_path: Path) -> None:
    huge = "word " * 600_000 + "end"
    rows = [{"text": huge, "label": "big"}, {"text": "small", "label": "small"}]
    dataset = load_dataset(write_csv(tmp_path / "huge.csv", rows))
    assert len(dataset.texts[0]) == len(huge) and dataset.texts[0].endswith("word end")
    assert dataset.texts[1] == "small"


def test_fingerprint_is_the_same_from_csv_parquet_jsonl_and_a_plain_dataset(tmp_path: Path) -> None:
    prints = {
        load_dataset(write_csv(tmp_path / "rows.csv", ROWS)).fingerprint,
        load_dataset(write_parquet(tmp_path / "rows.parquet", ROWS)).fingerprint,
        load_dataset(write_jsonl(tmp_path / "rows.jsonl", ROWS)).fingerprint,
        Dataset(name="other", texts=TEXTS, labels=LABELS).fingerprint,
    }
    assert len(prints) == 1
    changed = [dict(ROWS[0], label="other"), *ROWS[1:]]
    assert load_dataset(write_csv(tmp_path / "changed.csv", changed)).fingerprint not in prints


def test_datasets_compare_and_hash_by_content(tmp_path: Path) -> None:
    first = load_dataset(write_parquet(tmp_path / "rows.parquet", ROWS))
    second = load_dataset(write_parquet(tmp_path / "rows.parquet", ROWS))
    plain = Dataset(name="rows", texts=TEXTS, labels=LABELS, text_column="text", skipped_blank=1)
    assert first == second == plain and hash(first) == hash(plain)
    assert {first, second, plain} == {plain}


def test_200k_row_parquet_stays_in_arrow(tmp_path: Path) -> None:
    rows = 200_000
    texts = ["" if i % 50 == 0 else f"row {i} says something" for i in range(rows)]
    table = pa.table({"text": texts, "label": [f"k{i % 3}" for i in range(rows)], "n": list(range(rows))})
    path = tmp_path / "big.parquet"
    pq.write_table(table, path)
    del table, texts
    tracemalloc.start()
    try:
        dataset = load_dataset(path)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # 196k Python strings would take >10 MB of Python heap; the texts stay in Arrow buffers.
    assert python_peak < 4 * 2**20, python_peak
    assert isinstance(dataset.texts, ArrowSequence) and isinstance(dataset.labels, ArrowSequence)
    assert len(dataset) == rows - rows // 50 and dataset.skipped_blank == rows // 50
    assert (
        dataset.texts[0] == "row 1 says something" and dataset.texts[-1] == f"row {rows - 1} says something"
    )
    assert dataset.labels[48] == "k1" and list(dataset.columns["n"][:3]) == [1, 2, 3]
    assert sum(1 for _ in dataset.texts) == len(dataset)


def test_load_csv_still_reads_any_suffix_without_guessing_a_label(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "export.data", ROWS)
    dataset = load_csv(path, "text")
    assert dataset.texts == TEXTS and dataset.labels == ("", "", "")
    assert load_csv(path, label_column="label").labels == LABELS


def test_arrow_sequence_behaves_like_a_tuple() -> None:
    seq: ArrowSequence[str] = ArrowSequence(pa.chunked_array([["a", "b"], [], ["c", "d", "e"]]))
    items = ("a", "b", "c", "d", "e")
    assert len(seq) == 5 and seq == items and items == seq and list(seq) == list(items)
    assert seq[2] == "c" and seq[-1] == "e" and seq[np.int64(3)] == "d"
    assert seq[1:4] == items[1:4] and seq[::-2] == items[::-2] and seq[4:1] == ()
    assert "d" in seq and seq.index("c") == 2 and hash(seq) == hash(items)
    with pytest.raises(IndexError):
        seq[5]


# --- bad input -----------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    one_sentence(lambda: load_dataset(tmp_path / "nope.csv"), "No such file", "nope.csv")


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet", ".txt", ".tsv"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.touch()
    one_sentence(lambda: load_dataset(path), "is empty")


def test_file_of_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n \n\n")
    one_sentence(lambda: load_dataset(path), "is empty")


def test_header_only(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    one_sentence(lambda: load_dataset(path), "no rows below its header")


def test_only_blank_texts(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text('text,label\n"  ",a\n,b\n')
    one_sentence(lambda: load_dataset(path), "only blank texts", "'text'")


@pytest.mark.parametrize("kind", ["random", "png", "random-no-nul"])
def test_binary_garbage_named_csv(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(7)
    if kind == "png":
        chunk = b"IHDR" + struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
        data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    else:
        data = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
        if kind == "random-no-nul":
            data = data.replace(b"\x00", b"\x01")
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    one_sentence(lambda: load_dataset(path), "data.csv")


def test_missing_column_lists_the_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rows.csv", ROWS)
    one_sentence(lambda: load_dataset(path, text_column="body"), "'body'", "id, text, label, score")
    one_sentence(lambda: load_dataset(path, label_column="topic"), "'topic'", "id, text, label, score")


def test_unsupported_suffix_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04")
    one_sentence(lambda: load_dataset(path), ".xlsx", ".csv", ".parquet", ".jsonl", "Hugging Face")


def test_npy_with_the_wrong_row_count(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rows.csv", ROWS)
    np.save(tmp_path / "rows.npy", np.zeros((len(KEPT), 4), np.float32))  # blank row missing
    one_sentence(lambda: load_dataset(path), "rows.npy", "3 rows", "has 4")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (np.array([{"a": 1}] * 4, dtype=object), "rows.npy"),
        (np.zeros(4, np.float32), "[rows, dim]"),
        (np.array([[0.0], [np.inf], [np.nan], [2.0]]), "row 2"),  # row 1 is blank: skipped
    ],
)
def test_npy_that_cannot_be_vectors(tmp_path: Path, content: np.ndarray, fragment: str) -> None:
    path = write_csv(tmp_path / "rows.csv", ROWS)
    np.save(tmp_path / "rows.npy", content, allow_pickle=True)
    one_sentence(lambda: load_dataset(path), fragment)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("bad.json", '[{"text": "a"},', "not valid JSON"),
        ("bad.jsonl", '{"text": "a"}\n{"text": b}\n', "line 2"),
        ("scalar.json", "42", "list of objects"),
        ("numbers.jsonl", "1\n2\n", "JSON objects"),
    ],
)
def test_malformed_json(tmp_path: Path, name: str, content: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    one_sentence(lambda: load_dataset(path), fragment, name)


def test_garbage_parquet_and_broken_hugging_face_folder(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    path.write_bytes(b"not parquet at all" * 10)
    one_sentence(lambda: load_dataset(path), "Parquet", "rows.parquet")
    folder = write_hf_split(tmp_path / "saved", [{"text": "a", "label": 0}])
    (folder / "state.json").write_text("{}")
    one_sentence(lambda: load_dataset(folder), "Hugging Face", "saved")


def test_folder_without_anything_to_read(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# hi")
    one_sentence(lambda: load_dataset(tmp_path), "folder without .txt or .parquet files")


def test_a_folder_of_parquet_files_is_one_dataset_in_file_name_order(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "shards"
    folder.mkdir()
    # Written out of order, and the second shard's label column is missing (schemas unify).
    pq.write_table(
        pa.table({"text": ["Ünïcödé zweite Datei", "Привет"], "label": ["b", "b"]}), folder / "part-1.parquet"
    )
    pq.write_table(pa.table({"text": ["東京は日本の首都です。", "first file"]}), folder / "part-0.parquet")
    dataset = load_dataset(folder)
    assert list(dataset.texts) == ["東京は日本の首都です。", "first file", "Ünïcödé zweite Datei", "Привет"]
    (folder / "part-2.parquet").write_bytes(b"not parquet" * 20)
    one_sentence(lambda: load_dataset(folder), "Parquet files in", "shards")


def test_table_without_text(tmp_path: Path) -> None:
    path = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": [0.5, 1.5]}), path)
    one_sentence(lambda: load_dataset(path), "no column of text", "a, b")
    assert load_dataset(path, text_column="a").texts == ("1", "2")  # chosen: read as text


# --- output paths --------------------------------------------------------------------------------


def test_check_writable_accepts_a_new_file_and_leaves_nothing_behind(tmp_path: Path) -> None:
    check_writable(tmp_path / "out.CSV", (".csv",))
    (tmp_path / "old.npy").write_bytes(b"x")
    check_writable(tmp_path / "old.npy", (".npy",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npy"]
    assert (tmp_path / "old.npy").read_bytes() == b"x"


def test_check_writable_refuses_what_cannot_be_written(tmp_path: Path) -> None:
    one_sentence(lambda: check_writable(tmp_path / "out.txt", (".png", ".svg")), ".png or .svg")
    one_sentence(lambda: check_writable(tmp_path / "missing" / "out.csv", (".csv",)), "does not exist")
    (tmp_path / "dir.csv").mkdir()
    one_sentence(lambda: check_writable(tmp_path / "dir.csv", (".csv",)), "is a folder")
    one_sentence(lambda: check_writable(Path("/proc/loupe-out.csv"), (".csv",)), "Cannot write")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_check_writable_refuses_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        one_sentence(lambda: check_writable(folder / "out.csv", (".csv",)), "Cannot write")
    finally:
        folder.chmod(0o700)


def test_an_empty_text_column_name_is_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("text,lang\nHallo Welt,de\nПривет,ru\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="has no column ''"):
        load_dataset(path, text_column="")


def test_the_split_a_saved_dataset_dict_adds_is_never_the_guessed_label(tmp_path: Path) -> None:
    folder = tmp_path / "dict"
    write_hf_split(folder / "train", [{"text": f"train row {i}"} for i in range(4)])
    write_hf_split(folder / "test", [{"text": f"test row {i}"} for i in range(4)])
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    dataset = load_dataset(folder)
    assert dataset.label_column is None and not dataset.has_labels
    assert list(dataset.columns["split"]) == ["train"] * 4 + ["test"] * 4
