"""Precision: auto picks the hardware's low precision only where the model agrees with float32
(checked once per machine, remembered in JSON), explicit choices, and precision in the cache's
identity (a float32 run never takes bf16 vectors or a bf16 map)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.errors import BadInputError
from engine.model import precision as precision_module
from engine.model.inference import embed_texts
from engine.model.precision import (
    AGREEMENT,
    MEMO_NAME,
    PROBE_TEXTS,
    choose_precision,
    cpu_has_bf16_units,
    explicit_precision,
    lowest_cosine,
    remembered_precision,
)
from tests.texts import MULTILINGUAL

needs_bf16_units = pytest.mark.skipif(not cpu_has_bf16_units(), reason="this CPU has no bf16 units")


def memo_path() -> Path:
    from engine.runtime.paths import cache_dir

    return cache_dir() / MEMO_NAME


@needs_bf16_units
def test_auto_picks_bf16_on_this_cpu_and_stays_within_agreement_on_multilingual_text(minilm: Any) -> None:
    chosen = choose_precision(minilm, "auto")
    assert chosen == "bfloat16"
    exact = embed_texts(minilm, MULTILINGUAL).vectors
    low = embed_texts(replace(minilm, precision=chosen), MULTILINGUAL).vectors
    assert not np.array_equal(exact, low), "bf16 really computed in bf16"
    assert lowest_cosine(exact, low) >= AGREEMENT


@needs_bf16_units
def test_the_verdict_is_remembered_in_json_and_a_corrupt_memo_is_checked_again(
    minilm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real_agreement = precision_module.agreement

    def counted(model: Any, dtype: str) -> float:
        checks.append(dtype)
        return real_agreement(model, dtype)

    monkeypatch.setattr(precision_module, "agreement", counted)
    assert remembered_precision(minilm.spec.identity, "cpu", "auto") is None  # never checked here
    assert choose_precision(minilm, "auto") == "bfloat16"
    assert choose_precision(minilm, "auto") == "bfloat16"
    assert checks == ["bfloat16"], "checked once, then remembered"
    assert remembered_precision(minilm.spec.identity, "cpu", "auto") == "bfloat16"
    stored = json.loads(memo_path().read_text(encoding="utf-8"))
    [(key, verdict)] = stored.items()
    assert minilm.spec.identity in key and "bfloat16" in key and "torch" in key
    assert verdict["lowest_cosine"] >= AGREEMENT and verdict["texts"] == len(PROBE_TEXTS)

    memo_path().write_text("{not json", encoding="utf-8")
    assert choose_precision(minilm, "auto") == "bfloat16"
    assert checks == ["bfloat16", "bfloat16"]


@needs_bf16_units
def test_a_model_that_disagrees_is_kept_in_float32(minilm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision_module, "agreement", lambda model, dtype: 0.9990)
    assert choose_precision(minilm, "auto") == "float32"
    assert remembered_precision(minilm.spec.identity, "cpu", "auto") == "float32"


def test_explicit_precisions() -> None:
    assert explicit_precision("fp32", "cpu") == "float32"
    assert explicit_precision("bf16", "cpu") == "bfloat16"  # works everywhere (emulated: a warning)
    assert explicit_precision("fp16", "cuda") == "float16"
    with pytest.raises(BadInputError, match="only on a GPU"):
        explicit_precision("fp16", "cpu")
    with pytest.raises(BadInputError, match="Unknown precision"):
        explicit_precision("fp8", "cpu")


def test_fp32_is_untouched_by_autocast(minilm: Any) -> None:
    """An explicit fp32 model computes exactly as before (the ST-equality tests rely on it)."""
    from engine.model.inference import _embed_batch

    plain = embed_texts(replace(minilm, precision="float32"), MULTILINGUAL[:4]).vectors
    for i, text in enumerate(MULTILINGUAL[:4]):
        np.testing.assert_array_equal(_embed_batch(minilm, [text, text], -1, False)[0][0], plain[i])


def bf16_engine(cache: Any, minilm: Any) -> Any:
    from engine.core.engine import Engine

    made = Engine(cache, device="cpu", precision="bf16")
    made._spec = minilm.spec
    made._loaded = replace(minilm, precision="bfloat16")
    return made


def test_precision_is_part_of_the_cache_identity(engine: Any, cache: Any, minilm: Any) -> None:
    from engine.maps.projection import ProjectionParams

    low = bf16_engine(cache, minilm)
    texts = MULTILINGUAL[:6]
    first = low.embeddings(texts)
    assert first.computed == len(texts)
    hit = cache.get(low.row_keys(texts)[0])
    assert hit is not None and hit.meta["precision"] == "bfloat16"

    # A float32 run never takes bf16 vectors: it computes them again and stores float32 ones.
    exact = engine.embeddings(texts)
    assert exact.computed == len(texts)
    assert exact.input_id != first.input_id, "a bf16 map is never served for float32 vectors"
    np.testing.assert_array_equal(exact.vectors, embed_texts(minilm, texts).vectors)
    assert cache.get(engine.row_keys(texts)[0]).meta["precision"] == "float32"

    # A bf16 run takes float32 vectors; its run keeps its own name (and so its own maps).
    again = low.embeddings(texts)
    assert again.computed == 0 and again.input_id == first.input_id
    np.testing.assert_array_equal(again.vectors, exact.vectors)

    params = ProjectionParams(method="pca", seed=1)
    engine.projection(exact.vectors, params, input_id=exact.input_id)
    assert low.cached_map(texts, params) is None, "the float32 map is not the bf16 run's"
    assert engine.cached_map(texts, params) is not None


def engine_with(cache: Any, minilm: Any, requested: str, computes_in: str) -> Any:
    """An Engine asked for ``requested`` whose model computes in ``computes_in`` (what auto or
    the explicit choice resolved to on some machine): the session's real model, no check run."""
    from engine.core.engine import Engine

    made = Engine(cache, device="cpu", precision=requested)
    made._spec = minilm.spec
    made._loaded = replace(minilm, precision=computes_in)
    return made


def test_auto_rows_serve_auto_on_any_machine_and_never_fp32(cache: Any, minilm: Any) -> None:
    """A cluster's GPUs compute auto's rows in fp16, a desktop's CPU in bf16, another desktop
    without bf16 units in fp32: auto's promise (within 0.9999 of float32, checked on the model)
    holds for all of them, so their rows and maps serve each other; an fp32 run recomputes."""
    from engine.maps.projection import ProjectionParams

    texts = MULTILINGUAL[:5]
    bf16_desktop = engine_with(cache, minilm, "auto", "bfloat16")
    first = bf16_desktop.embeddings(texts)
    assert first.computed == len(texts)
    stored = cache.get(bf16_desktop.row_keys(texts)[0])
    assert stored is not None and stored.meta == {"precision": "bfloat16", "checked": True}
    params = ProjectionParams(method="pca", seed=1)
    bf16_desktop.projection(first.vectors, params, input_id=first.input_id)

    fp32_desktop = engine_with(cache, minilm, "auto", "float32")  # auto found no low precision here
    warm = fp32_desktop.embeddings(texts)
    assert warm.computed == 0 and warm.input_id == first.input_id
    np.testing.assert_array_equal(warm.vectors, first.vectors)
    assert fp32_desktop.cached_map(texts, params) is not None, "the map opens warm too"

    exact = engine_with(cache, minilm, "fp32", "float32")
    assert exact.embeddings(texts).computed == len(texts), "fp32 promises float32 vectors"
    assert exact.cached_map(texts, params) is None


def test_an_explicit_low_precision_takes_only_its_own_dtype(cache: Any, minilm: Any) -> None:
    texts = MULTILINGUAL[5:9]
    engine_with(cache, minilm, "bf16", "bfloat16").embeddings(texts)
    stored = cache.get(engine_with(cache, minilm, "bf16", "bfloat16").row_keys(texts)[0])
    assert stored is not None and stored.meta == {"precision": "bfloat16"}, "explicit: not auto's check"
    # An unchecked bf16 row does not serve auto where auto computes in float32 ...
    assert engine_with(cache, minilm, "auto", "float32").embeddings(texts).computed == len(texts)
    # ... and an explicit fp16 engine (a cluster's final map on a CPU node) names its dtype
    # without resolving the device, so it takes float32 rows and raises nothing.
    from engine.core.precision_rules import serves

    def no_device() -> str:
        raise AssertionError("an explicit precision needs no device")

    def fp16_serves(stored: str, checked: bool) -> bool:
        return serves(stored, checked=checked, requested="fp16", resolved=no_device)

    assert fp16_serves("float16", False) and fp16_serves("float32", False)
    assert not fp16_serves("bfloat16", True)


def test_a_cluster_job_carries_its_precision() -> None:
    from engine.cluster.spec import ClusterJob

    job = ClusterJob(path="/data/rows.parquet", redis_url="redis://cache:6379/0", precision="fp16")
    assert ClusterJob.from_json(job.to_json()).precision == "fp16"
    older = json.loads(job.to_json())
    del older["precision"]
    assert ClusterJob.from_json(json.dumps(older)).precision == "auto"
    with pytest.raises(BadInputError, match="precision must be one of"):
        ClusterJob.from_json(json.dumps({**older, "precision": "fp8"}))


@needs_bf16_units
def test_a_bf16_vector_does_not_depend_on_its_batch(minilm: Any) -> None:
    """The hardening rule in bf16: a row's vector is the same alone, in any batch, cached or not."""
    low = replace(minilm, precision="bfloat16")
    texts = [f"Row number {i} of a batch that is cut in many ways." for i in range(40)]
    texts += MULTILINGUAL
    reference = embed_texts(low, texts, batch_size=32).vectors
    for size in (1, 2, 3, 7, 16, 64, 128):
        np.testing.assert_array_equal(embed_texts(low, texts, batch_size=size).vectors, reference)
    # A part of the rows (as a partly cached run computes them) gives the same vectors.
    part = list(range(5, 45, 3))
    np.testing.assert_array_equal(embed_texts(low, [texts[i] for i in part]).vectors, reference[part])


def test_the_cli_takes_precision_from_the_option_or_the_settings(tmp_path: Path) -> None:
    from engine.user.settings import Settings, load_settings, save_settings
    from tests.test_cli import ok, run_loupe

    data = tmp_path / "rows.csv"
    data.write_text("text\nDer Zug kommt um acht.\n北京欢迎你。\nA short English line.\n", encoding="utf-8")
    refused = run_loupe("embed", data, "--out", tmp_path / "a.npy", "--device", "cpu", "--precision", "fp16")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "fp16 runs only on a GPU" in refused.stderr

    save_settings(replace(load_settings(), precision="fp32"))
    assert load_settings().precision == "fp32" and Settings().precision == "auto"
    exact = ok(run_loupe("embed", data, "--out", tmp_path / "b.npy", "--device", "cpu"))
    assert "(3 computed" in exact.stderr
    low = ok(run_loupe("embed", data, "--out", tmp_path / "c.npy", "--device", "cpu", "--precision", "bf16"))
    assert "(0 computed, 3 from cache" in low.stderr, "a bf16 run takes float32 vectors"
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.load(tmp_path / "c.npy"))
