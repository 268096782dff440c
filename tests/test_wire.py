"""engine.process.wire: what crosses to the engine process comes back equal, and nothing else is rebuilt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.api.types import EmbeddedRun, MapScores
from engine.data.datasets import Dataset
from engine.maps.projection import ProjectionParams
from engine.maps.sweep import SweepCell, SweepResult
from engine.model.attention_stats import AttentionStatistics
from engine.model.inference import AttentionMaps
from engine.process.wire import TEXTS_INLINE_MAX, Encoder, WireError, decode


def round_trip(value: Any, folder: Path) -> Any:
    encoded = Encoder(folder).encode(value)
    # What really travels is a JSON line: go through the text form, as the pipe does.
    return decode(json.loads(json.dumps(encoded)), folder)


def test_plain_values_keep_their_kinds(tmp_path: Path) -> None:
    value = {"a": (1, 2.5, None, True), 3: ["x", ("y",)], "path": Path("/tmp/x.csv")}
    back = round_trip(value, tmp_path)
    assert back == value
    assert isinstance(back["a"], tuple) and isinstance(back[3], list) and isinstance(back[3][1], tuple)
    assert 3 in back  # an int key stays an int, unlike plain JSON


def test_arrays_travel_as_npy_files_exactly(tmp_path: Path) -> None:
    arrays = [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.array([1, -1], np.int32),
        np.array(["a", "bé"]),
    ]
    back = round_trip(arrays, tmp_path)
    for original, copy in zip(arrays, back, strict=True):
        assert copy.dtype == original.dtype and np.array_equal(copy, original)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npy"] * 3


def test_long_text_lists_go_to_a_file_and_come_back_equal(tmp_path: Path) -> None:
    texts = [f'line {i} with "quotes", a newline\nand ünïcode' for i in range(TEXTS_INLINE_MAX + 1)]
    encoded = Encoder(tmp_path).encode(texts)
    assert set(encoded) == {"$texts"}
    assert decode(encoded, tmp_path) == texts
    short = texts[:3]
    assert Encoder(tmp_path).encode(short) == short  # a few texts stay in the message


def test_engine_result_types_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)

    def grid() -> np.ndarray:
        return rng.random((2, 4), dtype=np.float32)

    params = ProjectionParams.from_options("umap", {"n_neighbors": 5}, seed=3)
    values: list[Any] = [
        EmbeddedRun("r1", "d1", -1, rows=4, width=3, computed=3, from_cache=1, truncated=0, input_id="abc"),
        AttentionMaps(
            "hi there",
            ("[CLS]", "hi", "there"),
            ((0, 0), (0, 2), (3, 8)),
            (True, False, False),
            rng.random((2, 2, 3, 3), dtype=np.float32),
        ),
        AttentionStatistics(grid(), grid(), grid(), rows=5, requested=9),
        MapScores("m1", np.array([0, 1, -1], np.int32), {0: "cats", 1: "ships"}, 0.9, ((0.5, 1.0, "cats"),)),
        Dataset("d", ("a", "b"), ("x", "y"), columns={"score": [1.5, None]}, path=Path("/tmp/d.csv")),
        params,
        SweepResult(
            "n_neighbors",
            (5, 10),
            "min_dist",
            (0.1,),
            (
                (
                    SweepCell(5, 0.1, params, rng.random((4, 2), dtype=np.float32), 0.9),
                    SweepCell(10, 0.1, params, rng.random((4, 2), dtype=np.float32), 0.8),
                ),
            ),
            trust_rows=4,
        ),
    ]
    for value in values:
        back = round_trip(value, tmp_path)
        assert type(back) is type(value)
        for name in value.__dataclass_fields__:
            original, copy = getattr(value, name), getattr(back, name)
            if isinstance(original, np.ndarray):
                assert np.array_equal(copy, original), name
            elif name == "cells":
                assert copy[0][1].params == original[0][1].params
                assert np.array_equal(copy[0][1].coords, original[0][1].coords)
            else:
                assert copy == original, name


def test_object_arrays_and_other_objects_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WireError, match="pickle"):
        Encoder(tmp_path).encode(np.array([object()], dtype=object))
    with pytest.raises(WireError, match="cannot cross"):
        Encoder(tmp_path).encode({1, 2})


def test_a_message_cannot_name_another_type_or_file(tmp_path: Path) -> None:
    with pytest.raises(WireError, match="not a type"):
        decode({"$type": "Popen", "fields": {"args": ["sh"]}}, tmp_path)
    with pytest.raises(WireError, match="file name"):
        decode({"$array": "../../etc/passwd"}, tmp_path)
    with pytest.raises(WireError, match="Unexpected"):
        decode({"$eval": "1"}, tmp_path)
    # A file holding a pickled object array (as a hostile sender could write) is refused, unread.
    np.save(tmp_path / "v1.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        decode({"$array": "v1"}, tmp_path)


def test_an_arrow_text_column_travels_as_an_arrow_file(tmp_path: Path) -> None:
    import pyarrow as pa

    from engine.data.arrow import ArrowSequence

    words = [f"text {i} é" for i in range(TEXTS_INLINE_MAX * 3)]
    texts: ArrowSequence[str] = ArrowSequence(pa.chunked_array([words[:300], words[300:]]))  # two chunks
    encoded = Encoder(tmp_path).encode(texts)
    assert set(encoded) == {"$arrow"}
    back = decode(encoded, tmp_path)
    assert isinstance(back, ArrowSequence) and list(back) == words
    # A file that is not one column of text is refused.
    table = pa.table({"n": pa.array(range(5))})
    with pa.OSFile(str(tmp_path / "v9.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as out:
        out.write_table(table)
    with pytest.raises(WireError, match="one column of text"):
        decode({"$arrow": "v9"}, tmp_path)
