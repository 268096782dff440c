"""Comparing two embeddings of the same rows on the real engine: the cached part of a
comparison (engine/core/comparing.py) against hostile cache values, and what the comparison's
files hold (engine/user/compare_export.py, engine/user/compare_figure.py).

The rows are real multilingual text in many scripts plus demo rows (the standard library's
docstrings), embedded by the real MiniLM; the cache is the test's embedded Valkey server, and
hostile values are planted through a raw client as tests/test_cache_trust.py does.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.api.types import Compare, Comparison, OpenDataset, Side
from engine.cache.store import Cache
from engine.maps.projection import ProjectionParams
from tests.test_cache_trust import float32_payload, plant, seal, stored_values_are_valid
from tests.test_export_fonts import LABELS as SCRIPT_LABELS
from tests.test_export_texts import TEXTS as SCRIPT_TEXTS

# Real sentences in many scripts; labels in many scripts too (CJK, Arabic, Cyrillic, accents).
MULTILINGUAL = [
    ("Le chat dort sur le canapé près de la fenêtre.", "français"),
    ("Der Hund läuft schnell über die grüne Wiese.", "Deutsch"),
    ("Кошка спит на коврике у двери.", "Русский"),
    ("Поезд отправляется с первой платформы в полдень.", "Русский"),
    ("猫がマットの上で寝ている。", "日本語"),
    ("東京の駅で友達に会いました。", "日本語"),
    ("القطة نائمة على السجادة.", "العربية"),
    ("وصل القطار إلى المحطة في الصباح.", "العربية"),
    ("我们明天早上去公园散步。", "中文"),
    ("El mercado de valores cayó después del anuncio del banco.", "español"),
    ("A previsão do tempo indica chuva forte amanhã.", "português"),
    ("Ο ήλιος λάμπει πάνω από τη θάλασσα.", "Ελληνικά"),
    ("The “quoted” cat 🐈 sat on the mat.", "emoji 🎉"),
    ("Stock markets fell sharply after the central bank raised interest rates.", "finance"),
    ("The striker scored twice in the second half to win the match.", "sport"),
    ("Knead the dough for ten minutes, then let it rise in a warm place.", "food"),
    *((text, label) for text, label in zip(SCRIPT_TEXTS, SCRIPT_LABELS, strict=True)),
]
PCA = ProjectionParams.from_options("pca", {}, seed=0)


def demo_and_multilingual_rows(demo_rows: int = 80) -> list[tuple[str, str]]:
    """The multilingual rows, then ``demo_rows`` of the demo dataset (texts all distinct, so no
    neighbour list depends on how a tie between identical rows is broken)."""
    from engine.data.demo_data import build_stdlib_dataset

    demo = build_stdlib_dataset(max_rows=demo_rows)
    rows = MULTILINGUAL + list(zip(demo.texts, demo.labels, strict=True))
    seen: set[str] = set()
    unique = [(text, label) for text, label in rows if not (text in seen or seen.add(text))]
    return unique


def write_rows_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture
def rows_csv(tmp_path: Path) -> Path:
    return write_rows_csv(tmp_path / "rows.csv", demo_and_multilingual_rows(40))


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """The multilingual rows alone: enough for the cache's checks, quick to embed twice."""
    return write_rows_csv(tmp_path / "small.csv", MULTILINGUAL)


def compare(service: Any, path: Path, base: Side, against: Side, k: int = 5) -> tuple[Any, Comparison]:
    opened = service.open_dataset(OpenDataset(path))
    return opened, service.compare(Compare(opened.dataset_id, base, against, PCA, k))


# -- the cached comparison against hostile values ------------------------------------------------

HOSTILE = {
    "wrong-shape": lambda rows, key: seal(
        {"dtype": "float32", "shape": [rows - 1], "codec": "raw", "meta": {"cka": 0.5, "exact": True}},
        float32_payload(np.ones(rows - 1)),
        key,
    ),
    "overlap-above-one": lambda rows, key: seal(
        {"dtype": "float32", "shape": [rows], "codec": "raw", "meta": {"cka": 0.5, "exact": True}},
        float32_payload(np.full(rows, 1.5)),
        key,
    ),
    "cka-a-string": lambda rows, key: seal(
        {"dtype": "float32", "shape": [rows], "codec": "raw", "meta": {"cka": "0.5", "exact": True}},
        float32_payload(np.ones(rows)),
        key,
    ),
    "cka-above-one": lambda rows, key: seal(
        {"dtype": "float32", "shape": [rows], "codec": "raw", "meta": {"cka": 7.0, "exact": True}},
        float32_payload(np.ones(rows)),
        key,
    ),
    "overlap-nan": lambda rows, key: seal(
        {"dtype": "float32", "shape": [rows], "codec": "raw", "meta": {"cka": 0.5, "exact": True}},
        float32_payload(np.full(rows, np.nan)),
        key,
    ),
    "exact-not-a-boolean": lambda rows, key: seal(
        {"dtype": "float32", "shape": [rows], "codec": "raw", "meta": {"cka": 0.5, "exact": "yes"}},
        float32_payload(np.ones(rows)),
        key,
    ),
    # Inside [0, 1] but no Jaccard overlap of two lists of 5 rows (j / (10 - j)) is 0.37.
    "overlap-not-a-jaccard": lambda rows, key: seal(
        {"dtype": "float32", "shape": [rows], "codec": "raw", "meta": {"cka": 0.5, "exact": True}},
        float32_payload(np.full(rows, 0.37)),
        key,
    ),
    # No CKA (stored for a space with every row in one place, where it is NaN): these spaces
    # are not that. And a NaN written by a JSON writer that allows it.
    "cka-null": lambda rows, key: seal(
        {"dtype": "float32", "shape": [rows], "codec": "raw", "meta": {"cka": None, "exact": True}},
        float32_payload(np.ones(rows)),
        key,
    ),
    "cka-nan": lambda rows, key: seal(
        {"dtype": "float32", "shape": [rows], "codec": "raw", "meta": {"cka": float("nan"), "exact": True}},
        float32_payload(np.ones(rows)),
        key,
    ),
    "int64-overlaps": lambda rows, key: seal(
        {"dtype": "int64", "shape": [rows], "codec": "raw", "meta": {"cka": 0.5, "exact": True}},
        np.ones(rows, np.int64).tobytes(),
        key,
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_cached_comparison_is_recomputed(
    service: Any, cache: Cache, small_csv: Path, case: str
) -> None:
    base, against = Side(layer=1), Side(layer=-1)
    _, first = compare(service, small_csv, base, against)
    assert not first.from_cache
    rows = len(first.overlap)
    plant("cmp", lambda key: HOSTILE[case](rows, key))
    invalid_before = cache.stats.invalid

    _, again = compare(service, small_csv, base, against)

    assert cache.stats.invalid - invalid_before == 1
    assert not again.from_cache  # a miss: recomputed, never served
    assert np.array_equal(again.overlap, first.overlap) and again.cka == first.cka
    stored_values_are_valid("cmp", cache)  # and the hostile value was overwritten
    _, third = compare(service, small_csv, base, against)
    assert third.from_cache and np.array_equal(third.overlap, first.overlap)


def test_a_degenerate_space_caches_its_nan_cka(cache: Cache) -> None:
    """The loader's checks refuse planted values, not true ones: a space with every row in one
    place has no CKA (NaN), and that comes back from the cache as it was computed."""
    from engine.core.comparing import Comparer
    from engine.core.runs import precomputed_run

    rng = np.random.default_rng(0)
    spread_out = precomputed_run(rng.standard_normal((12, 8)).astype(np.float32))
    one_place = precomputed_run(np.ones((12, 8), np.float32))
    first = Comparer(cache).space_scores(spread_out, one_place, 3)
    again = Comparer(cache).space_scores(spread_out, one_place, 3)
    assert first.computed and not again.computed
    assert np.isnan(first.cka) and np.isnan(again.cka)
    assert np.array_equal(first.overlap, again.overlap) and cache.stats.invalid == 0


def test_a_rerun_embeds_nothing_and_reads_the_comparison_from_the_cache(service: Any, rows_csv: Path) -> None:
    _, first = compare(service, rows_csv, Side(layer=1), Side(layer=-1))
    _, again = compare(service, rows_csv, Side(layer=1), Side(layer=-1))
    assert first.base.run.computed == first.against.run.computed == len(first.overlap)
    assert again.base.run.computed == again.against.run.computed == 0
    assert not first.from_cache and again.from_cache
    assert np.array_equal(again.displacement, first.displacement)


# -- the files ------------------------------------------------------------------------------------


def test_rows_and_sidecar_keep_every_script(service: Any, rows_csv: Path, tmp_path: Path) -> None:
    from engine.user.compare_export import COLUMNS, comparison_provenance, write_comparison_rows

    opened, comparison = compare(service, rows_csv, Side(layer=1), Side(layer=-1))
    dataset = opened.dataset
    record = comparison_provenance(
        comparison, dataset_source=str(rows_csv), dataset_fingerprint=dataset.fingerprint
    )
    for suffix in (".csv", ".parquet"):
        out = write_comparison_rows(tmp_path / f"rows{suffix}", dataset, comparison, record)
        if suffix == ".csv":
            with out.open(newline="", encoding="utf-8") as handle:
                read = list(csv.DictReader(handle))
            assert list(read[0]) == list(COLUMNS)
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(out)
            assert table.column_names == list(COLUMNS)
            assert json.loads(table.schema.metadata[b"loupe"])["base"]["layer"] == 1
            read = table.to_pylist()
        assert [row["text"] for row in read] == list(dataset.texts)
        assert [row["label"] for row in read] == list(dataset.labels)
        assert [int(row["row"]) for row in read] == list(range(len(dataset)))
        assert np.allclose([float(row["neighbour_overlap"]) for row in read], comparison.overlap, atol=1e-6)
        sidecar = json.loads((tmp_path / f"rows{suffix}.json").read_text(encoding="utf-8"))
        assert sidecar["base"]["layer"] == 1 and sidecar["against"]["layer"] == -1
        assert sidecar["base"]["model_identity"] == sidecar["against"]["model_identity"]
        assert sidecar["base"]["layer_index"] == 1 and sidecar["against"]["layer_index"] == 6
        assert sidecar["dataset"]["fingerprint"] == dataset.fingerprint
        assert sidecar["method"] == "pca" and sidecar["k"] == 5
        scores = sidecar["scores"]
        assert scores["mean_overlap"] == pytest.approx(comparison.mean_overlap)
        assert scores["cka"] == pytest.approx(comparison.cka)
        assert set(scores["overlap_by_label"]) >= {"日本語", "العربية", "Русский", "français"}


@pytest.mark.parametrize("suffix", [".svg", ".pdf", ".png"])
def test_the_figure_in_every_format(service: Any, rows_csv: Path, tmp_path: Path, suffix: str) -> None:
    from engine.user.compare_figure import save_comparison_figure

    opened, comparison = compare(service, rows_csv, Side(layer=1), Side(layer=-1))
    record = {"dataset": {"fingerprint": opened.dataset.fingerprint}}
    out = save_comparison_figure(
        tmp_path / f"pair{suffix}",
        comparison,
        opened.dataset.labels,
        movers=10,
        provenance=record,
        titles=("Avant · layer 1", "После · 最後"),
    )
    data = out.read_bytes()
    if suffix == ".svg":
        import xml.etree.ElementTree as ET

        root = ET.fromstring(data)  # well-formed XML
        texts = "".join(node.text or "" for node in root.iter() if node.tag.endswith("text"))
        # Text is kept as text (not outlines), in every script, titles and legend alike.
        for kept in ("Avant · layer 1", "После · 最後", "日本語", "العربية", "Русский", "français"):
            assert kept in texts, kept
        assert opened.dataset.fingerprint in data.decode("utf-8")  # the provenance in the metadata
        movers = next(node for node in root.iter() if node.get("id") == "LineCollection_1")
        assert len([node for node in movers.iter() if node.tag.endswith("path")]) == 10  # A -> B lines
    elif suffix == ".pdf":
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    else:
        from PIL import Image

        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(out) as image:
            assert image.size == (2600, 1200)
            assert opened.dataset.fingerprint in image.info.get("Description", "")
    assert not list(tmp_path.glob("*.tmp*"))  # the save was atomic: nothing left beside it


def test_a_figure_without_labels_and_with_more_movers_than_rows(service: Any, tmp_path: Path) -> None:
    from engine.user.compare_figure import save_comparison_figure

    path = tmp_path / "plain.csv"
    path.write_text("text\n" + "\n".join(text for text, _ in MULTILINGUAL) + "\n", encoding="utf-8")
    _, comparison = compare(service, path, Side(layer=2), Side(layer=-1))
    out = save_comparison_figure(tmp_path / "plain.svg", comparison, None, movers=10_000)
    assert b"<svg" in out.read_bytes()
