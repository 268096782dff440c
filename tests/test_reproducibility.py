"""The same rows, model, method, parameters and seed give bit-identical maps in every cache state.

A warm cache (some rows embedded earlier, in other batches), a cold one and ``--no-cache`` must
give the same coordinates, to the bit, for UMAP, PCA and t-SNE: in the command line and in the
engine process the window uses. The real MiniLM on multilingual rows of many lengths, because
the old failure came from padding: a row batched with longer rows came out a few 1e-8 off, and
UMAP made a different map of that.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine.api.types import Embed, EmbeddedRun, OpenDataset, Project
from engine.cache.connect import open_cache
from engine.cache.store import Cache
from engine.data.demo_data import build_stdlib_dataset
from engine.maps.projection import METHODS, ProjectionParams
from engine.model.inference import embed_texts
from engine.process.proxy import EngineProcess
from tests.test_cli import ok, run_loupe

MULTILINGUAL = [
    "Ein Werkzeug zur Verwaltung von Paketen, das Abhängigkeiten automatisch auflöst.",
    "Bibliothèque de rendu de polices « TrueType » ; prend en charge l’anticrénelage.",
    "Herramienta de línea de órdenes para convertir imágenes entre formatos.",
    "Утилита для сжатия файлов с поддержкой многопоточности и больших архивов.",
    "画像を変換するためのコマンドラインツールです。多くの形式に対応しています。",
    "用于管理软件包的工具，可以自动解决依赖关系。",
    "أداة لإدارة الحزم تقوم بحل الاعتماديات تلقائيًا.",
    "Biblioteca para leitura e escrita de arquivos compactados no formato “zip”.",
    "Emoji in a commit message 🚀✨ — and “typographic quotes” too.",
    "Ελληνικά: ένα εργαλείο για την ανάλυση κειμένου.",
]


def rows() -> list[str]:
    """About 120 rows of many token lengths: the demo's docstrings and multilingual lines."""
    texts = list(build_stdlib_dataset(max_rows=90).texts)
    mixed = [f"{a} {b}" for a, b in zip(MULTILINGUAL, MULTILINGUAL[3:] + MULTILINGUAL[:3], strict=True)]
    return texts + MULTILINGUAL + mixed + [line.split(",")[0] for line in MULTILINGUAL]


def warm_subset(texts: list[str]) -> list[str]:
    """Every third row: embedded first, in batches of their own, so a later run mixes both."""
    return texts[::3]


def write_rows(path: Path, texts: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((text, f"group {i % 4}") for i, text in enumerate(texts))
    return path


def test_a_rows_vector_does_not_depend_on_the_rows_embedded_with_it(minilm: Any) -> None:
    texts = rows()
    everything = embed_texts(minilm, texts).vectors
    some = warm_subset(texts)
    np.testing.assert_array_equal(embed_texts(minilm, some).vectors, everything[::3])
    np.testing.assert_array_equal(embed_texts(minilm, texts, batch_size=5).vectors, everything)
    # Reversed: the same rows, other neighbours in the length order.
    np.testing.assert_array_equal(embed_texts(minilm, texts[::-1]).vectors, everything[::-1])


def export_map(csv_path: Path, out: Path, method: str, *extra: str) -> np.ndarray[Any, Any]:
    """``loupe export --data`` as Parquet (exact float32, where the CSV keeps 6 digits)."""
    ok(
        run_loupe(
            "export", csv_path, "--data", out, "--method", method, "--seed", "1", "--device", "cpu", *extra
        )
    )
    table = pq.read_table(out)
    return np.column_stack([table["x"].to_numpy(), table["y"].to_numpy()])


def test_the_command_line_gives_the_same_map_warm_cold_and_without_cache(tmp_path: Path) -> None:
    """UMAP (the method that amplified the old difference) in all three states; PCA and t-SNE
    from the mixed cache the UMAP runs leave (a third of the rows embedded alone, the rest by the
    map's run) against ``--no-cache``. Nine commands: each loads the model, so kept few."""
    texts = rows()
    data = write_rows(tmp_path / "rows.csv", texts)
    cold = export_map(data, tmp_path / "umap-cold.parquet", "umap")
    ok(run_loupe("cache", "clear"))
    some = write_rows(tmp_path / "some.csv", warm_subset(texts))
    ok(run_loupe("embed", some, "--out", tmp_path / "some.npy", "--device", "cpu"))
    warm = export_map(data, tmp_path / "umap-warm.parquet", "umap")
    none = export_map(data, tmp_path / "umap-none.parquet", "umap", "--no-cache")
    np.testing.assert_array_equal(warm, none)
    np.testing.assert_array_equal(cold, none)
    for method in ("pca", "tsne"):
        warm = export_map(data, tmp_path / f"{method}-warm.parquet", method)
        none = export_map(data, tmp_path / f"{method}-none.parquet", method, "--no-cache")
        np.testing.assert_array_equal(warm, none, err_msg=method)


@pytest.fixture
def cached_engine() -> Iterator[EngineProcess]:
    """The window's engine (a child process) on the embedded cache of this test's LOUPE_HOME."""
    cache = open_cache()
    engine = EngineProcess(cache, "minilm", "cpu")
    yield engine
    engine.close()
    cache.close()


def embedded(engine: EngineProcess, path: Path) -> EmbeddedRun:
    return engine.embed(Embed(engine.open_dataset(OpenDataset(path)).dataset_id))


def window_maps(engine: EngineProcess, path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """What the window does on opening a dataset: open it, embed it, then each method's map."""
    run = embedded(engine, path)
    return {
        method: engine.project(Project(run.run_id, ProjectionParams.from_options(method, seed=1))).coords
        for method in METHODS
    }


def test_the_window_engine_gives_the_same_map_warm_cold_and_without_cache(
    cached_engine: EngineProcess, tmp_path: Path
) -> None:
    texts = rows()
    data = write_rows(tmp_path / "rows.csv", texts)
    cold = window_maps(cached_engine, data)
    cached_engine.cache.clear()
    embedded(cached_engine, write_rows(tmp_path / "warm.csv", warm_subset(texts)))
    warm = window_maps(cached_engine, data)
    assert embedded(cached_engine, data).computed == 0
    uncached = EngineProcess(Cache(None), "minilm", "cpu", no_cache=True)
    try:
        none = window_maps(uncached, data)
    finally:
        uncached.close()
    for method in METHODS:
        np.testing.assert_array_equal(warm[method], none[method], err_msg=method)
        np.testing.assert_array_equal(cold[method], none[method], err_msg=method)
