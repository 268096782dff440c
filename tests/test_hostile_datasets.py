"""Hostile dataset files: each is one sentence (BadInputError) or a sensible result, never a crash.

A crafted Arrow file, JSON nested 100,000 deep, lone surrogates in JSONL and a ``.npy`` whose
header claims 298 GiB; the crash-prone loads run in a subprocess, so a regression fails the
test instead of killing the test run.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine.data.datasets import load_dataset
from engine.data.probe import check_in_child_process
from engine.data.readers import MAX_JSON_DEPTH
from engine.errors import BadInputError

TEXTS = [
    "Grüße aus München: „Straße“ und Öl.",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "日本語のテキストです。",
    "مرحبا بالعالم",
    "“Curly quotes” and emoji 🎉🚀",
]
ROOT = Path(__file__).resolve().parents[1]


def one_sentence(call: Callable[[], object], *fragments: str) -> str:
    """The BadInputError's message, checked to be one line that holds every fragment."""
    with pytest.raises(BadInputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message.endswith("."), message
    assert all(fragment in message for fragment in fragments), message
    return message


def corrupted_arrow(path: Path) -> Path:
    """An Arrow IPC file of multilingual texts whose string offset for row 3 points 1 GiB away."""
    texts = TEXTS * 4
    table = pa.table({"text": texts, "label": ["de", "ru", "ja", "ar", "en"] * 4})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data = bytearray(path.read_bytes())
    offsets = np.cumsum([0] + [len(t.encode()) for t in texts]).astype("<i4").tobytes()
    where = data.find(offsets[:16])
    assert where > 0, "the offsets buffer is where the test expects it"
    struct.pack_into("<i", data, where + 4 * 3, 2**30)
    path.write_bytes(bytes(data))
    return path


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )


# -- item 8: a crafted Arrow file -------------------------------------------------------------

LOAD_AND_TOUCH = """
import sys
from pathlib import Path
from engine.data.datasets import load_dataset
from engine.errors import BadInputError
try:
    dataset = load_dataset(Path(sys.argv[1]), check_in_child=True)
    print("loaded", sum(len(t) for t in dataset.texts))
except BadInputError as exc:
    print("refused:", exc)
"""


def test_a_corrupted_arrow_offset_is_a_sentence_not_a_sigbus(tmp_path: Path) -> None:
    """Before: the process reading it died with SIGBUS (exit -7) when a text was first read."""
    path = corrupted_arrow(tmp_path / "damaged.arrow")
    done = run_python(LOAD_AND_TOUCH, str(path))
    assert done.returncode == 0, f"the loading process died: {done.returncode} {done.stderr[-2000:]}"
    assert done.stdout.startswith("refused: Cannot read") and "Offset invariant" in done.stdout
    # and this very process survives it, with the child check and without
    one_sentence(lambda: load_dataset(path, check_in_child=True), "damaged.arrow", "Arrow")
    one_sentence(lambda: load_dataset(path), "damaged.arrow", "Arrow")


def test_a_sound_arrow_file_loads_through_the_child_check(tmp_path: Path) -> None:
    path = tmp_path / "sound.arrow"
    table = pa.table({"text": TEXTS, "lang": ["de", "ru", "ja", "ar", "en"]})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    dataset = load_dataset(path, check_in_child=True)
    assert list(dataset.texts) == TEXTS


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the child through /proc (Linux)")
def test_a_reader_killed_by_a_signal_in_the_child_is_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash that validation does not catch: the child check's reader dies of SIGBUS.

    The file is a named pipe, so the child's reader waits in ``open`` until the test kills it
    with the very signal the damaged Arrow file raised.
    """
    fifo = tmp_path / "stuck.parquet"
    os.mkfifo(fifo)
    children = tmp_path / "children"
    children.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(children))  # the child's private folder goes here
    outcome: list[BaseException] = []

    def check() -> None:
        try:
            check_in_child_process(fifo)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=check)
    thread.start()
    pid = None
    for _ in range(3000):  # wait (up to ~30 s) for the child to appear
        pid = _child_reading(children)
        if pid is not None:
            break
        thread.join(timeout=0.01)
    assert pid is not None, "the child check never started"
    os.kill(pid, signal.SIGBUS)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], BadInputError), outcome
    message = str(outcome[0])
    assert "crashed" in message and "SIGBUS" in message and "stuck.parquet" in message and "\n" not in message


def _child_reading(folder: Path) -> int | None:
    """The probe child whose private working folder is in ``folder`` (the path it reads is in
    that folder's call file, not on its command line)."""
    wanted = str(folder.resolve()).encode() + b"/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"engine.data.probe" in arguments and any(a.startswith(wanted) for a in arguments):
            return int(entry.name)
    return None


def test_the_child_check_runs_with_a_safe_import_path(tmp_path: Path) -> None:
    """A ``json.py`` in the folder Loupe was started from must not run in the child."""
    (tmp_path / "json.py").write_text("raise SystemExit('the planted json.py ran')\n")
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text("raise SystemExit('the planted engine ran')\n")
    path = tmp_path / "rows.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": TEXTS}), path)
    code = (
        "import sys; from pathlib import Path; from engine.data.probe import check_in_child_process; "
        "check_in_child_process(Path(sys.argv[1])); print('ok')"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(  # -P: this parent must not import them either; the child is under test
        [sys.executable, "-P", "-c", code, str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert done.stdout.strip() == "ok", done.stderr


# -- item 12: JSON nested 100,000 deep, lone surrogates, a .npy that claims 298 GiB ------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("array.json", "[" * 100_000 + "]" * 100_000),
        ("in_a_row.json", '[{"text": "Grüße", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}]"),
        ("objects.json", '{"a": ' * 100_000 + "1" + "}" * 100_000),
        (
            "lines.jsonl",
            '{"text": "Привет"}\n' + '{"text": "x", "m": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
        ),
        ("just_too_deep.json", '[{"text": "日本語", "meta": ' + "[" * 500 + "]" * 500 + "}]"),
    ],
)
def test_json_nested_too_deeply_is_a_sentence(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    one_sentence(lambda: load_dataset(path), name, "too deeply", f"at most {MAX_JSON_DEPTH} levels")


def test_json_nested_a_little_still_loads(tmp_path: Path) -> None:
    rows = [{"text": text, "meta": {"tags": [["a", "b"]], "source": {"lang": "de"}}} for text in TEXTS]
    path = tmp_path / "nested.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    dataset = load_dataset(path)
    assert list(dataset.texts) == TEXTS and dataset.columns["meta"][0]["source"] == {"lang": "de"}


def test_a_lone_surrogate_in_jsonl_becomes_a_replacement_character(tmp_path: Path) -> None:
    """JSON may escape a lone UTF-16 half (\\ud800); text cannot hold one, so it reads as U+FFFD.

    Pairs (an emoji as two escapes) stay the emoji, and an escaped backslash before "ud800" is
    the literal text it says. Before: UnicodeEncodeError and a traceback.
    """
    lines = [
        r'{"text": "Grüße \ud800 aus München", "label": "de"}',
        r'{"text": "pair \ud83c\udf89 stays, \\ud800 is text, low \udc00 alone", "label": "en"}',
        r'{"text": "Привет \uDBFF", "label": "\udfff"}',
        r'{"text": "end \ud800", "lab\ud800el": "x"}',
    ]
    path = tmp_path / "surrogates.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = load_dataset(path)
    assert list(dataset.texts) == [
        "Grüße \ufffd aus München",
        "pair 🎉 stays, \\ud800 is text, low \ufffd alone",
        "Привет \ufffd",
        "end \ufffd",
    ]
    assert list(dataset.labels)[:3] == ["de", "en", "\ufffd"]
    assert "lab\ufffdel" in dataset.columns


def test_a_surrogate_encoded_as_utf8_bytes_is_still_utf8(tmp_path: Path) -> None:
    """Bytes ED A0 80 (a surrogate encoded like a character, as CESU-8 does) in a UTF-8 file.

    Before: the file failed UTF-8 and was read as Windows-1252, every Cyrillic and Japanese
    text turned to mojibake; now only the surrogate is U+FFFD, and a pair is its emoji.
    """
    text = "text,label\nПривет \ud800 мир,ru\n日本語 \ud83c\udf89,ja\n"
    path = tmp_path / "cesu.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    dataset = load_dataset(path)
    assert list(dataset.texts) == ["Привет \ufffd мир", "日本語 🎉"] and list(dataset.labels) == ["ru", "ja"]


def test_a_lone_surrogate_in_a_json_file_loads_too(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(r'[{"text": "مرحبا \ud800"}, {"text": "“ok”"}]', encoding="utf-8")
    assert list(load_dataset(path).texts) == ["مرحبا \ufffd", "“ok”"]


def test_a_number_of_5000_digits_is_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "digits.jsonl"
    path.write_text('{"text": "Öl", "n": ' + "7" * 5000 + "}\n", encoding="utf-8")
    one_sentence(lambda: load_dataset(path), "digits.jsonl", "4,300 digits")


def npy_claiming(path: Path, shape: tuple[int, int], dtype: str = "<f4") -> Path:
    """A .npy file whose header says ``shape`` but which holds only a few bytes of data."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64)
    return path


def test_a_npy_claiming_298_gib_is_refused_before_any_allocation(tmp_path: Path) -> None:
    table = tmp_path / "rows.csv"
    table.write_text("text\n" + "\n".join(TEXTS) + "\n", encoding="utf-8")
    npy_claiming(tmp_path / "rows.npy", (len(TEXTS), 16_000_000_000))  # 5 × 16e9 × 4 bytes = 298 GiB
    tracemalloc.start()
    try:
        one_sentence(lambda: load_dataset(table), "rows.npy", "claims", "holds 64 bytes")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000, f"{peak:,} bytes allocated"


@pytest.mark.parametrize(
    ("shape", "dtype", "fragment"),
    [
        ((5, 4), "|O", "numbers"),  # objects would need a pickle
        ((5,), "<f4", "[rows, dim]"),
        ((7, 2), "<f4", "7 rows"),
        ((5, 2), "<c8", "numbers"),
        ((5, 0), "<f4", "dim at least 1"),  # numpy could not even view it ("zeros in shape")
    ],
)
def test_npy_headers_that_do_not_fit_are_sentences(
    tmp_path: Path, shape: tuple[int, ...], dtype: str, fragment: str
) -> None:
    table = tmp_path / "rows.csv"
    table.write_text("text\n" + "\n".join(TEXTS) + "\n", encoding="utf-8")
    npy_claiming(tmp_path / "rows.npy", shape, dtype)  # type: ignore[arg-type]
    one_sentence(lambda: load_dataset(table), "rows.npy", fragment)


def test_a_npy_with_a_broken_header_is_a_sentence(tmp_path: Path) -> None:
    table = tmp_path / "rows.csv"
    table.write_text("text\n" + "\n".join(TEXTS) + "\n", encoding="utf-8")
    (tmp_path / "rows.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': __import__('os')}")
    one_sentence(lambda: load_dataset(table), "rows.npy")


def test_a_sound_npy_still_gives_vectors(tmp_path: Path) -> None:
    table = tmp_path / "rows.csv"
    table.write_text("text\n" + "\n".join(TEXTS) + "\n", encoding="utf-8")
    vectors = np.arange(len(TEXTS) * 3, dtype=np.float64).reshape(len(TEXTS), 3)
    np.save(tmp_path / "rows.npy", vectors)
    dataset = load_dataset(table)
    assert dataset.vectors is not None and np.array_equal(dataset.vectors, vectors.astype(np.float32))


def test_a_hugging_face_index_cannot_point_outside_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["../elsewhere"]}))
    one_sentence(lambda: load_dataset(folder), "saved Hugging Face dataset")
    (folder / "dataset_dict.json").unlink()
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "/etc/passwd"}]}))
    one_sentence(lambda: load_dataset(folder), "saved Hugging Face dataset")


def test_a_parquet_column_nested_too_deeply_is_a_sentence(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    nested: object = "Grüße"
    for _ in range(MAX_JSON_DEPTH + 8):
        nested = [nested]
    pq.write_table(pa.table({"text": TEXTS, "meta": [nested] * len(TEXTS)}), tmp_path / "deep.parquet")
    one_sentence(lambda: load_dataset(tmp_path / "deep.parquet"), "deep.parquet", "'meta' nests values")
