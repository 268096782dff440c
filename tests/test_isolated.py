"""engine.runtime.isolated: whitelisted functions in a real child process, arrays in and out without pickles,
one-sentence errors, cancelling kills the child, and nothing is left in the temporary folder.

The runtime's own sample tasks (engine.runtime.sample_tasks) stand in for real work, and the
clustering task (engine.maps.isolated_tasks) is checked against an in-process fit."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.errors import BadInputError, JobCancelled, LoupeError
from engine.maps import isolated_tasks
from engine.maps.analysis import clusters
from engine.runtime import sample_tasks
from engine.runtime.isolated import Arrays, ChildFailed, TaskTable, run_isolated, serve
from engine.runtime.jobs import CancelToken

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """mkdtemp() makes its folders here, so a test can see them come and go."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as exc:
            outcome["error"] = exc
            outcome["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def run_sample(name: str, arrays: dict[str, Any], params: dict[str, Any] | None = None, **kw: Any) -> Arrays:
    return run_isolated(sample_tasks.TASKS, name, arrays, params, **kw)


def _wait_for_folder(root: Path) -> Path:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [p for p in root.glob("loupe-isolated-*") if (p / "stderr.txt").exists()]
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError("the child's folder never appeared")


def _child_pids(folder: Path) -> list[int]:
    """Processes whose command line names ``folder`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(folder).encode() in argv:
                pids.append(int(entry.name))
    return pids


def _wait_for_child(folder: Path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pids := _child_pids(folder):
            return pids[0]
        time.sleep(0.01)
    raise AssertionError("the child process never appeared")


def test_arrays_and_parameters_make_the_round_trip(temp_root: Path) -> None:
    ints = np.arange(12, dtype=np.int64).reshape(3, 4)
    floats = np.linspace(0, 1, 7, dtype=np.float32)
    result = run_sample("echo", {"ints": ints, "floats": floats}, {"scale": 2.0})

    assert sorted(result) == ["floats", "ints", "scaled_sum"]
    assert result["ints"].dtype == np.int64
    assert np.array_equal(result["ints"], ints)
    assert result["floats"].dtype == np.float32
    assert np.array_equal(result["floats"], floats)
    assert result["scaled_sum"][0] == pytest.approx(2.0 * (ints.sum() + floats.astype(np.float64).sum()))
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize("tasks", [sample_tasks.TASKS, isolated_tasks.TASKS])
def test_an_unknown_name_is_refused_by_parent_and_child(tmp_path: Path, tasks: TaskTable) -> None:
    with pytest.raises(ValueError, match="not a task"):
        run_isolated(tasks, "os.system", {})
    with pytest.raises(ValueError, match="not a task"):  # a task of another module is not one either
        run_isolated(tasks, "echo" if tasks is isolated_tasks.TASKS else "hdbscan", {})
    assert serve(tasks, ["os.system", str(tmp_path)]) == 2

    child = subprocess.run(
        [sys.executable, "-m", tasks.module, "builtins.eval", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert child.returncode == 2
    assert "unknown task 'builtins.eval'" in child.stderr
    assert list(tmp_path.iterdir()) == []  # it wrote nothing


def test_arrays_that_would_need_a_pickle_or_odd_names_are_refused() -> None:
    with pytest.raises(ValueError, match="Python objects"):
        run_sample("echo", {"things": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="plain identifier"):
        run_sample("echo", {"../escape": np.zeros(2)})


@pytest.mark.parametrize(
    ("error", "message", "expected"),
    [
        ("MemoryError", "", "The test process failed: MemoryError."),
        ("ValueError", "no good\nsecond line", "The test process failed: ValueError: no good."),
    ],
)
def test_an_exception_in_the_child_is_one_sentence(
    temp_root: Path, caplog: pytest.LogCaptureFixture, error: str, message: str, expected: str
) -> None:
    with pytest.raises(ChildFailed) as raised:
        run_sample("fail", {}, {"error": error, "message": message})

    assert str(raised.value) == expected
    assert "Traceback" not in str(raised.value)
    assert "Traceback" in caplog.text  # the details are in the log, not in the message
    assert list(temp_root.iterdir()) == []


def test_a_loupe_error_in_the_child_comes_back_as_itself(temp_root: Path) -> None:
    with pytest.raises(BadInputError) as raised:
        run_sample("fail", {}, {"error": "BadInputError", "message": "Column 'x' does not exist."})
    assert str(raised.value) == "Column 'x' does not exist."
    assert list(temp_root.iterdir()) == []


def test_parameters_use_the_runtime_s_one_format(temp_root: Path) -> None:
    """Nested values, tuples and paths go as the engine process's wire sends them."""
    result = run_sample("echo", {"x": np.ones(2)}, {"scale": 3, "nested": {"a": (1, 2)}, "at": Path("/x")})
    assert result["scaled_sum"].tolist() == [6.0]


def test_cancelling_kills_the_child_within_a_second(temp_root: Path) -> None:
    token = CancelToken()
    thread, outcome = _in_background(lambda: run_sample("sleep", {}, {"seconds": 20}, token=token))
    folder = _wait_for_folder(temp_root)
    if sys.platform != "win32":
        assert folder.stat().st_mode & 0o777 == 0o700  # private to this user
    pid = _wait_for_child(folder) if Path("/proc").is_dir() else None

    cancelled_at = time.monotonic()
    token.cancel()
    thread.join(5)

    assert isinstance(outcome.get("error"), JobCancelled)
    assert outcome["at"] - cancelled_at < 1.0
    if pid is not None:
        assert _child_pids(folder) == []
    assert list(temp_root.iterdir()) == []


@pytest.mark.skipif(not Path("/proc").is_dir() or sys.platform == "win32", reason="needs /proc and signals")
def test_a_child_killed_by_the_system_is_one_sentence(temp_root: Path) -> None:
    thread, outcome = _in_background(lambda: run_sample("sleep", {}, {"seconds": 20}))
    pid = _wait_for_child(_wait_for_folder(temp_root))

    os.kill(pid, signal.SIGKILL)  # what the out-of-memory killer does
    thread.join(5)

    error = outcome.get("error")
    assert isinstance(error, ChildFailed) and error.returncode == -signal.SIGKILL
    assert str(error) == (
        "The test process failed: it was stopped by the system (signal 9; perhaps it ran out of memory)."
    )
    assert list(temp_root.iterdir()) == []


def test_a_frozen_build_runs_in_this_process_and_says_so(
    temp_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with caplog.at_level(logging.INFO, logger="engine.runtime.isolated"):
        result = run_sample("echo", {"x": np.array([1.5, 2.5])}, {"scale": 1.0})

    assert result["scaled_sum"][0] == 4.0
    assert "running echo in this process" in caplog.text
    assert list(temp_root.iterdir()) == []  # no folder was needed


def _map(rows: int, seed: int = 0) -> np.ndarray:
    """A map like UMAP's: blobs of different spread."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-15, 15, size=(12, 2))
    which = rng.integers(0, len(centres), rows)
    spread = rng.uniform(0.3, 1.5, len(centres))[which][:, None]
    return (centres[which] + rng.normal(0, 1, size=(rows, 2)) * spread).astype(np.float32)


def test_hdbscan_in_the_child_gives_the_same_clusters(temp_root: Path) -> None:
    coords = _map(3000)
    here = clusters(coords)
    there = clusters(coords, isolate_above=0)

    assert here.count > 3
    assert np.array_equal(here.labels, there.labels)
    assert np.array_equal(here.probabilities, there.probabilities)
    assert (here.min_cluster_size, here.min_samples, here.max_cluster_size) == (
        there.min_cluster_size,
        there.min_samples,
        there.max_cluster_size,
    )
    assert list(temp_root.iterdir()) == []


def test_clusters_cancelled_before_the_fit_start_no_child(temp_root: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        clusters(_map(500), isolate_above=0, token=token)
    assert list(temp_root.iterdir()) == []


def test_a_child_that_cannot_start_is_one_sentence(temp_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(temp_root / "no-such-python"))
    with pytest.raises(LoupeError, match=r"^The test process could not be started: .*no-such-python'\.$"):
        run_sample("echo", {"x": np.zeros(3)})
    assert [p.name for p in temp_root.iterdir()] == []


def test_the_dataset_probe_is_an_isolated_task_and_skipped_where_no_child_can_start(
    temp_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.data import probe

    table = temp_root / "rows.csv"  # any file: the child reads it as the window would
    table.write_text("text\nhello\n")
    probe.check_in_child_process(table)
    assert [p.name for p in temp_root.iterdir()] == ["rows.csv"]  # its private folder is gone

    with caplog.at_level(logging.INFO, logger="engine.data.probe"):
        monkeypatch.setattr(sys, "executable", str(temp_root / "no-such-python"))
        probe.check_in_child_process(table)  # the in-process checks still run: not an error
        assert "could not start the dataset check" in caplog.text
        monkeypatch.setattr(sys, "frozen", True, raising=False)
        probe.check_in_child_process(table)
        assert "without a child check: a frozen build" in caplog.text
    assert [p.name for p in temp_root.iterdir()] == ["rows.csv"]


def test_a_bad_table_in_the_probe_is_its_own_sentence(temp_root: Path) -> None:
    from engine.data import probe

    empty = temp_root / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(BadInputError, match=r"empty\.parquet is empty\.$"):
        probe.check_in_child_process(empty)
