"""The demo dataset built from the standard library's docstrings."""

from __future__ import annotations

import gc
import inspect
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from engine.data.datasets import Dataset
from engine.data.demo_data import CATEGORIES, DATASET_NAME, OTHER, build_stdlib_dataset


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return build_stdlib_dataset()


@pytest.fixture(scope="module")
def unbounded() -> Dataset:
    return build_stdlib_dataset(max_rows=1_000_000)


def test_default_build_is_a_few_thousand_rows(demo: Dataset) -> None:
    assert demo.name == DATASET_NAME
    assert 2000 <= len(demo) <= 4000
    assert len(demo.sources) == len(demo.labels) == len(demo.texts)


def test_rows_fall_into_many_categories_each_with_a_handful_of_rows(demo: Dataset) -> None:
    counts = Counter(demo.labels)
    assert len(counts) >= 8
    assert set(counts) <= {*CATEGORIES, OTHER}
    assert min(counts.values()) >= 5, counts


def test_texts_are_unique_single_paragraph_lines(demo: Dataset) -> None:
    assert len(set(demo.texts)) == len(demo.texts)
    for text in demo.texts:
        assert len(text) >= 20
        assert text == text.strip()
        assert "\n" not in text and "  " not in text, text


def test_the_same_python_gives_the_same_dataset(demo: Dataset) -> None:
    again = build_stdlib_dataset()
    assert again == demo
    assert again.fingerprint == demo.fingerprint


def test_max_rows_keeps_an_ordered_subset_with_every_category(unbounded: Dataset) -> None:
    small = build_stdlib_dataset(max_rows=500)
    assert len(small) == 500
    assert set(small.labels) == set(unbounded.labels)
    position = {
        source_text: i for i, source_text in enumerate(zip(unbounded.sources, unbounded.texts, strict=True))
    }
    indices = [position[source_text] for source_text in zip(small.sources, small.texts, strict=True)]
    assert indices == sorted(indices)
    # The rows are spread through the library, not the first 500 files' worth.
    assert indices[-1] > len(unbounded) * 0.9


def test_a_tiny_max_rows_still_shows_every_category(unbounded: Dataset) -> None:
    tiny = build_stdlib_dataset(max_rows=len(set(unbounded.labels)))
    assert set(tiny.labels) == set(unbounded.labels)


def test_building_leaves_the_garbage_collector_as_it_was() -> None:
    assert gc.isenabled()
    build_stdlib_dataset(max_rows=10)
    assert gc.isenabled()
    gc.disable()
    try:
        build_stdlib_dataset(max_rows=10)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_max_rows_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        build_stdlib_dataset(max_rows=0)


def test_known_rows_have_their_qualified_names_and_categories(demo: Dataset) -> None:
    rows = {
        source: (label, text)
        for source, label, text in zip(demo.sources, demo.labels, demo.texts, strict=True)
    }
    label, text = rows["json.dumps"]
    assert label == "Persistence & formats"
    assert "JSON" in text
    assert rows["json"][0] == "Persistence & formats"
    assert rows["collections.OrderedDict.popitem"][0] == "Data types"
    assert rows["re.sub"][0] == "Text processing"
    # The text is the docstring's first paragraph, on one line; checked against the live objects.
    for source, obj in (("json.dumps", json.dumps), ("subprocess.run", subprocess.run)):
        docstring = inspect.getdoc(obj)
        assert docstring is not None
        assert rows[source][1] == " ".join(docstring.split("\n\n")[0].split())
        assert len(rows[source][1]) < len(" ".join(docstring.split()))


def test_skipped_and_private_code_gives_no_rows(unbounded: Dataset) -> None:
    tops = {source.split(".")[0] for source in unbounded.sources}
    for skipped in ("tkinter", "turtle", "turtledemo", "idlelib", "lib2to3", "ensurepip", "test",
                    "this", "antigravity", "encodings", "pytest", "numpy"):  # fmt: skip
        assert skipped not in tops
    for source in unbounded.sources:
        assert not any(part.startswith("_") for part in source.split(".")), source
        # Only packages and files are skipped by a test_ name: imghdr.test_jpeg is a public function.
        parts = source.split(".")
        assert not parts[0].startswith("test_") and not {"test", "tests"} & set(parts[:-1]), source


def test_building_imports_none_of_the_modules_it_reads() -> None:
    # A fresh interpreter, so a module imported earlier in this session cannot hide an import.
    script = textwrap.dedent(
        """
        import json, sys
        import engine.data.demo_data
        before = set(sys.modules)
        dataset = engine.data.demo_data.build_stdlib_dataset()
        print(json.dumps({"new": sorted(set(sys.modules) - before), "sources": list(dataset.sources)}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    report = json.loads(result.stdout)  # also fails if the build printed anything
    # Reading sysconfig's paths may load its generated data module; nothing else may appear.
    assert [name for name in report["new"] if not name.startswith("_sysconfigdata")] == []
    assert result.stderr == ""
    # The test means something only if the build read modules that were not yet imported.
    read = {source.split(".")[0] for source in report["sources"]}
    assert {"smtplib", "webbrowser", "xml", "tarfile"} <= read
