"""engine.runtime.exchange: the runtime's one temporary-file format (JSON plus .npy files), with
the dataclasses and Arrow class the caller allows and nothing else rebuilt."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from engine.data.arrow import ArrowSequence
from engine.runtime.exchange import TEXTS_INLINE_MAX, Exchange, ExchangeError


@dataclass(frozen=True)
class Point:
    x: float
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Secret:
    value: str


def round_trip(exchange: Exchange, value: Any, folder: Path) -> Any:
    return exchange.decode(json.loads(json.dumps(exchange.encode(value, folder))), folder)


def test_values_arrays_and_allowed_dataclasses_come_back_equal(tmp_path: Path) -> None:
    exchange = Exchange([Point])
    value = {
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "point": Point(1.5, ("a",)),
        3: (None, True, Path("/x")),
        "texts": [f"text {i}" for i in range(TEXTS_INLINE_MAX + 1)],
    }
    back = round_trip(exchange, value, tmp_path)
    assert back["array"].dtype == np.int16 and np.array_equal(back["array"], value["array"])
    assert back["point"] == value["point"] and back[3] == value[3] and back["texts"] == value["texts"]
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".jsonl", ".npy"]  # only files it wrote


def test_only_the_callers_dataclasses_cross(tmp_path: Path) -> None:
    with pytest.raises(ExchangeError, match="Secret cannot cross to the engine process"):
        Exchange([Point], peer="the engine process").encode(Secret("x"), tmp_path)
    sent = Exchange([Secret]).encode(Secret("x"), tmp_path)
    with pytest.raises(ExchangeError, match="not a type"):
        Exchange([Point]).decode(sent, tmp_path)
    with pytest.raises(ExchangeError, match="pickle"):
        Exchange().encode(np.array([{}], dtype=object), tmp_path)
    with pytest.raises(ExchangeError, match="file name"):
        Exchange().decode({"$array": "../v1"}, tmp_path)


def test_an_arrow_text_column_goes_as_an_arrow_file_only_when_the_caller_allows(tmp_path: Path) -> None:
    texts = ArrowSequence(pa.chunked_array([[f"row {i}" for i in range(TEXTS_INLINE_MAX + 5)]]))
    with_arrow, folder = Exchange(arrow_texts=ArrowSequence), tmp_path / "arrow"
    folder.mkdir()
    sent = with_arrow.encode(texts, folder)
    assert "$arrow" in sent
    back = with_arrow.decode(sent, folder)
    assert isinstance(back, ArrowSequence) and list(back) == list(texts)
    with pytest.raises(ExchangeError, match="Arrow"):
        Exchange().decode(sent, folder)
    assert "$texts" in Exchange().encode(texts, tmp_path)  # without it: plain lines of text
