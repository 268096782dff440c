"""Session files a stranger made: any bytes, any JSON and any session with any field replaced
either load or give the project's own one-sentence error (BadInputError), never anything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import BadInputError
from engine.maps.projection import ProjectionParams
from engine.user.session import DatasetRef, SavedFilter, Session, ViewState, load_session, session_to_json
from tests.strategies import JSON

VALID = session_to_json(
    Session(
        dataset=DatasetRef(path="/data/reviews.csv", fingerprint="abc"),
        projection=ProjectionParams.from_options("umap", {"n_neighbors": "30"}, seed=7),
        view=ViewState(x_range=(0.0, 1.0), y_range=(-1.0, 2.0), filter=SavedFilter("stars", "> 3")),
        selection=(1, 2),
    )
)


def paths(data: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path in a session's JSON object (``("view", "x_range")``, ...)."""
    found = []
    for key, value in data.items():
        found.append((*prefix, key))
        if isinstance(value, dict):
            found += paths(value, (*prefix, key))
    return found


def replaced(data: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    copy = json.loads(json.dumps(data))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def loads_or_one_sentence(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "s.loupe.json"
    path.write_bytes(raw)
    try:
        session = load_session(path)
    except BadInputError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 400, message
    else:
        assert isinstance(session, Session)
        session_to_json(session)  # what loaded can be saved again


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_json_nested_100000_deep_is_one_sentence(tmp_path: Path, opening: str) -> None:
    path = tmp_path / "deep.loupe.json"
    path.write_text(opening * 100_000, encoding="utf-8")
    with pytest.raises(BadInputError, match="nested too deeply"):
        load_session(path)


def test_a_deeply_nested_field_is_one_sentence(tmp_path: Path) -> None:
    """A field nested as deep as json.loads allows, or deeper: the message shows it safely."""
    for depth in (900, 5_000, 50_000):
        deep = "[" * depth + "]" * depth
        text = json.dumps(VALID).replace('"model": "minilm"', f'"model": {deep}')
        loads_or_one_sentence(tmp_path, text.encode())


@given(raw=st.binary(max_size=300))
def test_any_bytes(tmp_path: Path, raw: bytes) -> None:
    loads_or_one_sentence(tmp_path, raw)


@given(value=JSON)
def test_any_json(tmp_path: Path, value: object) -> None:
    loads_or_one_sentence(tmp_path, json.dumps(value).encode())


@given(where=st.sampled_from(paths(VALID)), value=JSON | st.integers(-(2**70), 2**70))
def test_a_session_with_any_field_replaced(tmp_path: Path, where: tuple[str, ...], value: object) -> None:
    loads_or_one_sentence(tmp_path, json.dumps(replaced(VALID, where, value)).encode())


@given(where=st.sampled_from(paths(VALID)))
def test_a_session_with_any_field_missing(tmp_path: Path, where: tuple[str, ...]) -> None:
    data = json.loads(json.dumps(VALID))
    target = data
    for key in where[:-1]:
        target = target[key]
    del target[where[-1]]
    loads_or_one_sentence(tmp_path, json.dumps(data).encode())
