"""The engine's API is declared once (engine.api): the process proxy's methods, the worker's
dispatch and the wire's types are derived from it, and mypy sees the proxy as an EngineAPI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.api import types as api
from engine.api.methods import calls, wire_types
from engine.api.protocol import EngineAPI
from engine.cache.store import Cache
from engine.core.runs import Clustering, EmbeddingRun
from engine.core.service import EngineService
from engine.data.datasets import Dataset
from engine.errors import LoupeError
from engine.maps.projection import ProjectionParams
from engine.maps.sweep import SweepCell
from engine.process.proxy import EngineProcess
from engine.process.wire import TYPES, Encoder, WireError, decode
from engine.process.worker import Worker
from engine.runtime.jobs import CancelToken

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)
PARAMS = ProjectionParams.from_options("umap", {"n_neighbors": 5}, seed=3)
COORDS = RNG.random((3, 2), dtype=np.float32)
MAP = api.ProjectedMap("m1", "r1", PARAMS, COORDS)
SAMPLES_RUN = api.EmbeddedRun("r1", "d1", -1, 3, 384, 2, 1, 0, "abc")
SIDE = api.Side("models/tuned", 2, "cls")
COMPARED = api.ComparedSide(
    SIDE,
    api.EngineIdentity("models/tuned", "model@y", "tuned", "cls", "cpu", 128, 4),
    api.EmbeddedRun("r2", "d1", 2, 3, 256, 3, 0, 0, "def"),
    MAP,
)
DATASET = Dataset(
    "mixed", ("Crème brûlée 🍮", "Привет", "日本語"), ("a", "b", "c"), columns={"n": [1, None, 2.5]}
)
GRID = RNG.random((2, 3), dtype=np.float32)
MAPS = api.AttentionMaps(
    "hi é", ("[CLS]", "hi", "é"), ((0, 0), (0, 2), (3, 4)), (True, False, False), RNG.random((2, 3, 3, 3))
)
STATISTICS = api.AttentionStatistics(GRID, GRID, GRID, rows=2, requested=3)
CELL = SweepCell(5, 0.1, PARAMS, COORDS, 0.8)

# One value of every type the wire may carry (a new type must add one here).
SAMPLES: dict[str, Any] = {
    "Identify": api.Identify(),
    "EngineIdentity": api.EngineIdentity("minilm", "model@x", "minilm", "mean", "cpu", 256, 6),
    "Preload": api.Preload(),
    "ModelReady": api.ModelReady("float32"),
    "OpenDataset": api.OpenDataset(Path("/tmp/données.csv"), "text", None, None),
    "OpenedDataset": api.OpenedDataset("d1", DATASET),
    "Dataset": DATASET,
    "CloseDataset": api.CloseDataset("d1"),
    "Closed": api.Closed("d1"),
    "Embed": api.Embed("d1", 3),
    "EmbeddedRun": api.EmbeddedRun("r1", "d1", -1, 3, 384, 2, 1, 0, "abc"),
    "FindCachedMap": api.FindCachedMap("d1", PARAMS, -1),
    "ProjectionParams": PARAMS,
    "MaybeMap": api.MaybeMap(MAP),
    "Project": api.Project("r1", PARAMS),
    "MapSample": api.MapSample("d1", PARAMS, -1),
    "PlaceRows": api.PlaceRows("p1"),
    # A progressive map: NaN for the rows not placed yet, the run once every row is.
    "ProgressiveMap": api.ProgressiveMap(
        "p1", "d1", PARAMS, np.array([[0.5, 1.0], [np.nan, np.nan], [2.0, -1.0]], np.float32), 2, 3
    ),
    "MaybeProgressive": api.MaybeProgressive(
        api.ProgressiveMap(
            "p1", "d1", PARAMS, COORDS, 3, 3, api.EmbeddedRun("r1", "d1", -1, 3, 384, 2, 1, 0, "abc")
        )
    ),
    "ProjectedMap": MAP,
    "ScoreMap": api.ScoreMap("m1"),
    "MapScores": api.MapScores(
        "m1", np.array([0, -1, 0], np.int32), {0: "crème"}, 0.75, ((0.5, 0.25, "crème"),)
    ),
    "ScoreRows": api.ScoreRows("m1", 5),
    "Faithfulness": api.Faithfulness("m1", np.array([0.5, 1.0, 0.0], np.float32)),
    "FindNeighbours": api.FindNeighbours("r1", 1, 2),
    "Neighbours": api.Neighbours(1, np.array([0, 2], np.intp), np.array([0.1, 0.2], np.float32)),
    "MapLayers": api.MapLayers("d1", PARAMS),
    "LayerMaps": api.LayerMaps((COORDS, COORDS)),
    "Sweep": api.Sweep("r1", PARAMS, "n_neighbors", ("5", "10"), "min_dist", ("0.1",)),
    "SweepResult": api.SweepResult("n_neighbors", (5,), "min_dist", (0.1,), ((CELL,),), trust_rows=3),
    "SweepCell": CELL,
    "AttendRow": api.AttendRow("d1", 2, "models/tuned"),
    "Side": SIDE,
    "Compare": api.Compare("d1", api.Side(), SIDE, PARAMS, 5),
    "ComparedSide": COMPARED,
    "Comparison": api.Comparison(
        "d1",
        COMPARED,
        COMPARED,
        PARAMS,
        5,
        np.array([0.0, 0.5, 1.5], np.float32),
        np.array([1.0, 0.25, 0.0], np.float32),
        0.4166,
        0.93,
        {"crème": 0.5, "日本": 0.25},
        True,
        False,
    ),
    "RowAttention": api.RowAttention(2, MAPS),
    "AttentionMaps": MAPS,
    "AttendRows": api.AttendRows("d1", (0, 2)),
    "GroupAttention": api.GroupAttention((0, 2), STATISTICS),
    "AttentionStatistics": STATISTICS,
}


def assert_same(copy: Any, original: Any) -> None:
    assert type(copy) is type(original)
    if isinstance(original, np.ndarray):
        nan_too = original.dtype.kind in "fc"  # a NaN (a row not placed yet) must come back NaN
        assert copy.dtype == original.dtype and np.array_equal(copy, original, equal_nan=nan_too)
    elif dataclasses.is_dataclass(original):
        for field in dataclasses.fields(original):
            assert_same(getattr(copy, field.name), getattr(original, field.name))
    elif isinstance(original, tuple | list):
        assert len(copy) == len(original)
        for a, b in zip(copy, original, strict=True):
            assert_same(a, b)
    elif isinstance(original, dict):
        assert list(copy) == list(original)
        for key in original:
            assert_same(copy[key], original[key])
    else:
        assert copy == original


@pytest.fixture
def process() -> Iterator[EngineProcess]:
    engine = EngineProcess(Cache(None), "minilm", "cpu", no_cache=True)
    yield engine
    engine.close()


def test_the_proxy_the_worker_and_the_service_have_exactly_the_apis_calls() -> None:
    names = set(calls())
    assert names == {
        "identify", "preload", "open_dataset", "close_dataset", "embed", "find_cached_map", "map_sample",
        "place_rows", "project",
        "score_map", "score_rows", "find_neighbours", "map_layers", "sweep", "attend_row", "attend_rows",
        "compare",
    }  # fmt: skip
    # The proxy: one generated method per call, each overriding the protocol's declaration.
    generated = {name for name, value in vars(EngineProcess).items() if name in names and callable(value)}
    assert generated == names
    public = {name for name in dir(EngineProcess) if not name.startswith("_")}
    assert public - names == {"cache", "call", "close", "pid", "reconfigured", "start", "started"}
    # The service implements each of them, and nothing the API does not declare.
    service_public = {name for name in dir(EngineService) if not name.startswith("_")}
    assert service_public - names == {"cache", "close", "reconfigured"}
    assert isinstance(EngineService(Cache(None)), EngineAPI)
    assert isinstance(EngineProcess(Cache(None)), EngineAPI)


def test_the_worker_dispatches_exactly_the_apis_calls_and_checks_the_request_type() -> None:
    worker = Worker(EngineService(Cache(None)), iter(()), sys.stdout)  # type: ignore[arg-type]
    token = CancelToken()
    for name, call in calls().items():
        # Accepted as a name (the type check is what stops it), refused for another request's type.
        other = api.Identify() if call.request is not api.Identify else api.Preload()
        with pytest.raises(LoupeError, match=f"call {name} takes a {call.request.__name__}, not a "):
            worker.dispatch(name, other, token, lambda *a: None)
    for name in ("engine", "__init__", "os.system", "reconfigured", "close", "cache"):
        with pytest.raises(LoupeError, match="no call named"):
            worker.dispatch(name, api.Identify(), token, lambda *a: None)
    assert worker.dispatch("close_dataset", api.CloseDataset("x"), token, lambda *a: None) == api.Closed("x")


def test_the_child_refuses_a_request_of_the_wrong_type(process: EngineProcess) -> None:
    with pytest.raises(LoupeError, match="call embed takes a Embed, not a Project"):
        process.call("embed", api.Project("r1", PARAMS))
    with pytest.raises(LoupeError, match="no call named 'engine'"):
        process.call("engine", api.Identify())
    assert process.identify(api.Identify()).pooling == "mean"  # and serves on


def test_the_wire_carries_exactly_the_apis_types_and_each_round_trips(tmp_path: Path) -> None:
    assert dict(TYPES) == dict(wire_types())
    assert set(SAMPLES) == set(wire_types()), "every wire type needs a sample here"
    for call in calls().values():
        assert call.request.__name__ in TYPES and call.result.__name__ in TYPES
    for name, value in SAMPLES.items():
        assert type(value) is wire_types()[name]
        encoded = Encoder(tmp_path).encode(value)
        back = decode(json.loads(json.dumps(encoded)), tmp_path)  # through the text form, as the pipe
        assert_same(back, value)


def test_a_dataclass_the_api_does_not_name_is_refused(tmp_path: Path) -> None:
    run = EmbeddingRun(np.eye(2, dtype=np.float32), 2, 0, 0, "x")  # the vectors stay in the engine
    for value in (run, Clustering(np.array([0], np.int32), {0: "a"})):
        with pytest.raises(WireError, match="cannot cross"):
            Encoder(tmp_path).encode(value)
        with pytest.raises(WireError, match="not a type"):
            decode({"$type": type(value).__name__, "fields": {}}, tmp_path)


def test_mypy_sees_the_engine_process_as_an_engine_api(tmp_path: Path) -> None:
    snippet = tmp_path / "uses_the_api.py"
    snippet.write_text(
        "from engine.api.protocol import EngineAPI\n"
        "from engine.api.types import Embed, EmbeddedRun, Project\n"
        "from engine.cache.store import Cache\n"
        "from engine.process.proxy import EngineProcess, start_engine\n"
        "\n"
        "def use(cache: Cache) -> None:\n"
        "    process: EngineAPI = EngineProcess.started(cache)\n"
        "    run: EmbeddedRun = process.embed(Embed('d1'))\n"
        "    engine: EngineAPI = start_engine(cache)\n"
        "    reveal_type(EngineProcess.started(cache).project)\n"
        "    engine.embed(Project(run.run_id, 1))\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = result.stdout.splitlines()
    assert any(
        ":10: note: Revealed type is" in line
        and "engine.api.types.Project" in line
        and "ProjectedMap" in line
        for line in lines
    ), result.stdout
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 2, result.stdout  # the wrong request, and a wrong field in it
    assert all(":11:" in line for line in errors), result.stdout
    assert any('"embed" of "EngineAPI" has incompatible type "Project"' in line for line in errors)
