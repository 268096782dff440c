"""Provenance names the model whichever engine the window holds (issue 14, item 1: the window's
export failed with ``'EngineProcess' object has no attribute 'spec'``)."""

from __future__ import annotations

import pytest

from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.data.datasets import Dataset
from engine.maps.projection import ProjectionParams
from engine.model.models import Pooling
from engine.process.proxy import EngineProcess
from engine.user.export import provenance

TEXTS = ("Crème brûlée « oui »", "Привет, мир", "日本語の文")
DATASET = Dataset(name="mixed", texts=TEXTS, labels=("a", "b", "c"))
PARAMS = ProjectionParams(method="pca", seed=3)


@pytest.mark.parametrize("pooling", [None, "cls"])
def test_the_engine_process_gives_the_same_model_record_as_the_engine(pooling: Pooling | None) -> None:
    cache = Cache(None)
    expected = provenance(Engine(cache, "minilm", "cpu", pooling=pooling), DATASET, PARAMS, -1)
    process = EngineProcess(cache, "minilm", "cpu", pooling=pooling)
    try:
        record = provenance(process, DATASET, PARAMS, -1)
        assert process.pid is None, "the record is made without starting (or waiting on) the child"
    finally:
        process.close()
    assert record["model"] == expected["model"] and record["model"].startswith("model@")
    assert record["pooling"] == expected["pooling"] == (pooling or "mean")
    assert {key: record[key] for key in ("dataset", "layer", "method", "seed")} == {
        key: expected[key] for key in ("dataset", "layer", "method", "seed")
    }
