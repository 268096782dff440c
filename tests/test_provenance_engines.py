"""Provenance names the model whichever engine the window holds (issue 14, item 1: the window's
export failed with ``'EngineProcess' object has no attribute 'spec'``). It asks the engine for
its identity through the API (``identify``), so no engine can lack what it reads."""

from __future__ import annotations

import pytest

from engine.api.types import Identify
from engine.cache.store import Cache
from engine.core.service import EngineService
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
    here = EngineService(cache, "minilm", "cpu", pooling=pooling)
    expected = provenance(here.identify(Identify()), DATASET, PARAMS, -1)
    assert not here.engine.model_loaded, "identifying the engine never loads the model"
    process = EngineProcess(cache, "minilm", "cpu", pooling=pooling)
    try:
        record = provenance(process.identify(Identify()), DATASET, PARAMS, -1)
    finally:
        process.close()
    assert record["model"] == expected["model"] and record["model"].startswith("model@")
    assert record["pooling"] == expected["pooling"] == (pooling or "mean")
    assert {key: record[key] for key in ("dataset", "layer", "method", "seed")} == {
        key: expected[key] for key in ("dataset", "layer", "method", "seed")
    }
