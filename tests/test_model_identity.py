"""A model's identity in cache keys, and the memo of its file digests (model-digests.json).

The identity must change with anything that changes what the weights compute: the config
(activation, layer_norm_eps) and the tokenizer's files (do_lower_case, the vocabulary).
The memo is only a speed-up: corrupt, unreadable or raced by another process, it must never
stop a command.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.model.models import resolve_model
from engine.runtime.paths import cache_dir

TEXTS = ["Der Hund bellt.", "Le Chat Noir", "ＦＵＬＬＷＩＤＴＨ and UPPER case"]


def copy_model(source: Path, destination: Path) -> Path:
    """The model folder copied, its weights linked (the same bytes, not 90 MB more on disk)."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("*.safetensors"))
    for weights in source.glob("*.safetensors"):
        (destination / weights.name).symlink_to(weights)
    return destination


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert all(name in data for name in changes), f"{path.name} lacks one of {sorted(changes)}"
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


RECIPE_CHANGES: dict[str, Callable[[Path], None]] = {
    "activation": lambda folder: edit_json(folder / "config.json", hidden_act="relu"),
    "layer_norm_eps": lambda folder: edit_json(folder / "config.json", layer_norm_eps=1e-5),
    "do_lower_case": lambda folder: edit_json(folder / "tokenizer_config.json", do_lower_case=False),
    "vocabulary": lambda folder: (folder / "vocab.txt").write_text(
        (folder / "vocab.txt").read_text(encoding="utf-8").replace("[unused0]\n", "[unused-zero]\n", 1),
        encoding="utf-8",
    ),
}


@pytest.fixture
def minilm_folder() -> Path:
    return resolve_model("minilm").path


def row_keys(model: Path | str) -> list[str]:
    return Engine(Cache(None), model=str(model)).row_keys(TEXTS)


@pytest.mark.parametrize("change", sorted(RECIPE_CHANGES))
def test_same_weights_with_another_recipe_get_other_keys(
    minilm_folder: Path, tmp_path: Path, change: str
) -> None:
    same = copy_model(minilm_folder, tmp_path / "same" / "model")
    edited = copy_model(minilm_folder, tmp_path / "edited" / "model")
    RECIPE_CHANGES[change](edited)

    # Content addressing: an unchanged copy elsewhere shares every key with the original.
    assert row_keys(same) == row_keys("minilm")
    assert set(row_keys(edited)).isdisjoint(row_keys(same))
    assert resolve_model(str(edited)).identity != resolve_model(str(same)).identity


def test_another_activation_is_computed_not_served_from_the_cache(
    minilm_folder: Path, tmp_path: Path, cache: Cache
) -> None:
    """The user-visible bug: a relu copy of MiniLM was served MiniLM's (gelu) vectors."""
    original = copy_model(minilm_folder, tmp_path / "gelu" / "model")
    relu = copy_model(minilm_folder, tmp_path / "relu" / "model")
    RECIPE_CHANGES["activation"](relu)
    first = Engine(cache, model=str(original), device="cpu").embeddings(TEXTS[:1])

    other = Engine(cache, model=str(relu), device="cpu").embeddings(TEXTS[:1])

    assert other.computed == 1 and other.from_cache == 0
    assert not np.allclose(other.vectors, first.vectors, atol=1e-3)


# --- model-digests.json ----------------------------------------------------------------------

CORRUPT_MEMOS = {
    "not-utf8": b"\xff\xfe{\x00",
    "truncated-json": b'{"/some/file|1|2": "ab',
    "nested-100000-deep": b"[" * 100_000 + b"]" * 100_000,
    "a-list": b"[1, 2, 3]",
    "wrong-value-types": b'{"x": 5, "y": null}',
    "empty": b"",
}


@pytest.mark.parametrize("case", sorted(CORRUPT_MEMOS))
def test_a_corrupt_digest_memo_is_ignored_and_rewritten(case: str, caplog: pytest.LogCaptureFixture) -> None:
    memo = cache_dir() / "model-digests.json"
    expected = resolve_model("minilm").identity  # computed with a sound memo
    memo.write_bytes(CORRUPT_MEMOS[case])

    with caplog.at_level(logging.WARNING, logger="engine.model.models"):
        assert resolve_model("minilm").identity == expected

    stored = json.loads(memo.read_text(encoding="utf-8"))
    assert isinstance(stored, dict) and stored and all(isinstance(v, str) for v in stored.values())
    assert resolve_model("minilm").identity == expected  # and the rewritten memo serves


def test_digests_are_written_through_a_unique_temporary_name() -> None:
    """Two processes wrote through one fixed ``model-digests.tmp``; here that name is taken
    (by a folder, so no writer can use it) and the memo is still written."""
    folder = cache_dir()
    (folder / "model-digests.tmp").mkdir()
    resolve_model("minilm")
    assert json.loads((folder / "model-digests.json").read_text(encoding="utf-8"))
    leftovers = [
        p.name for p in folder.iterdir() if p.name not in ("model-digests.json", "model-digests.tmp")
    ]
    assert not [name for name in leftovers if "model-digests" in name]


def test_a_memo_that_cannot_be_written_never_stops_a_command(caplog: pytest.LogCaptureFixture) -> None:
    (cache_dir() / "model-digests.json").mkdir()  # neither readable as a file nor replaceable
    with caplog.at_level(logging.WARNING, logger="engine.model.models"):
        first = resolve_model("minilm").identity
    assert resolve_model("minilm").identity == first
    assert "model digests" in caplog.text
