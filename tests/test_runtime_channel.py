"""engine.runtime.channel: private folders, errors as words and back, cancellable waits, exit
sentences; and the runtime's place in the layers (it imports no room above it)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grimp
import pytest

from engine.errors import BadInputError, JobCancelled, LoupeError, ModelError
from engine.runtime.channel import (
    KNOWN_ERRORS,
    PrivateFolder,
    UnexpectedError,
    error_from_record,
    error_record,
    exit_detail,
    stop_process,
    wait_cancellable,
    wait_for_event,
    wait_for_process,
)
from engine.runtime.jobs import CancelToken


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_private_folder_is_unique_private_and_removed_however_the_block_ends(temp_root: Path) -> None:
    with PrivateFolder("loupe-x-") as first, PrivateFolder("loupe-x-") as second:
        assert first != second and first.name.startswith("loupe-x-")
        if sys.platform != "win32":
            assert first.stat().st_mode & 0o777 == 0o700
        (first / "data.npy").write_bytes(b"x")
    assert list(temp_root.iterdir()) == []

    def fail_halfway() -> None:
        with PrivateFolder("loupe-x-") as folder:
            (folder / "half").write_text("written")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_halfway()
    assert list(temp_root.iterdir()) == []


def test_a_private_folder_can_outlive_a_block_and_be_removed_twice(temp_root: Path) -> None:
    folder = PrivateFolder("loupe-engine-")
    assert folder.path.is_dir()
    folder.remove()
    folder.remove()
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize(
    "error", [BadInputError("Column 'x' does not exist."), ModelError("No model."), LoupeError("Plain.")]
)
def test_a_known_error_makes_the_round_trip_as_its_own_kind(error: LoupeError) -> None:
    record = json.loads(json.dumps(error_record(error)))  # what crosses is plain JSON
    assert record["details"] == ""  # a sentence for the user needs no traceback
    again = error_from_record(record, "the test process")
    assert type(again) is type(error) and str(again) == str(error)


def test_a_cancelled_job_comes_back_cancelled() -> None:
    assert isinstance(error_from_record(error_record(JobCancelled()), "the test process"), JobCancelled)


def test_an_unexpected_error_carries_its_traceback_not_its_class() -> None:
    try:
        int("many")
    except ValueError as exc:
        record = error_record(exc)
    again = error_from_record(record, "the engine process")
    assert isinstance(again, UnexpectedError)
    assert str(again).startswith("ValueError: invalid literal for int()")
    assert again.what == "the engine process" and "Traceback" in again.details


class _OwnError(LoupeError):
    """A LoupeError kind outside the fixed table."""


def test_a_kind_outside_the_table_is_never_looked_up() -> None:
    # a LoupeError the table does not name keeps its sentence but not its class
    again = error_from_record(error_record(_OwnError("Your key is wrong.")), "the test process")
    assert type(again) is LoupeError and str(again) == "Your key is wrong."
    # names that would be dangerous to evaluate are only words
    for kind in ("os.system", "SystemExit", "KeyboardInterrupt", "__import__", "builtins.eval"):
        again = error_from_record({"type": kind, "message": "rm -rf /", "details": ""}, "the test process")
        assert isinstance(again, UnexpectedError) and again.kind == kind
    assert set(KNOWN_ERRORS) == {"LoupeError", "BadInputError", "ModelError", "JobCancelled"}


def test_a_caller_may_name_kinds_of_its_own() -> None:
    again = error_from_record(error_record(_OwnError("Stopped.")), "x", known={"_OwnError": _OwnError})
    assert type(again) is _OwnError


@pytest.mark.parametrize("record", [{}, {"type": None}, {"message": 3}, {"type": "X", "user_facing": "no"}])
def test_an_odd_record_is_an_unexpected_error_not_a_failure(record: dict[str, object]) -> None:
    assert isinstance(error_from_record(record, "the test process"), UnexpectedError)


def test_a_wait_ends_when_the_event_is_set() -> None:
    event = threading.Event()
    threading.Timer(0.05, event.set).start()
    wait_for_event(event, CancelToken(), poll_s=0.01)
    assert event.is_set()


def test_a_cancelled_wait_runs_the_action_and_raises_within_a_poll() -> None:
    token, actions = CancelToken(), []
    threading.Timer(0.05, token.cancel).start()
    start = time.monotonic()
    with pytest.raises(JobCancelled):
        wait_for_event(threading.Event(), token, poll_s=0.02, on_cancel=lambda: actions.append("stop"))
    assert actions == ["stop"] and time.monotonic() - start < 1.0


def test_a_wait_without_a_token_waits_until_done() -> None:
    calls = iter([False, False, True])
    wait_cancellable(lambda timeout: next(calls), None, poll_s=0.0)


def test_a_wait_on_a_process_gives_its_exit_code_and_a_cancel_stops_it() -> None:
    done = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert wait_for_process(done, CancelToken(), poll_s=0.01) == 3

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    token = CancelToken()
    token.cancel()
    try:
        with pytest.raises(JobCancelled):
            wait_for_process(sleeper, token, poll_s=0.01, on_cancel=lambda: stop_process(sleeper))
    finally:
        stop_process(sleeper)
    assert sleeper.returncode is not None


@pytest.mark.parametrize(
    ("code", "stderr", "detail"),
    [
        (-9, "", "it was stopped by the system (signal 9; perhaps it ran out of memory)"),
        (1, "Traceback\n  ...\nValueError: bad\n\n", "ValueError: bad"),
        (0, "", "it ended without a result"),
        (4, "  \n", "it ended with exit code 4"),
        (None, "", "it ended unexpectedly"),
    ],
)
def test_how_a_child_ended_in_words(code: int | None, stderr: str, detail: str) -> None:
    assert exit_detail(code, stderr) == detail


# The runtime sits below every other room of the engine: it may use engine.errors and the log
# records, never the rooms that use it (not even lazily or for type checking).
RUNTIME_MUST_NOT_IMPORT = ("maps", "model", "data", "process", "core", "api", "cli", "user", "cache")


def test_the_runtime_imports_no_room_above_it() -> None:
    graph = grimp.build_graph("engine", cache_dir=None)
    runtime = {"engine.runtime", *graph.find_descendants("engine.runtime")}
    offending = sorted(
        f"{module} -> {imported}"
        for module in runtime
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.split(".")[1:2] and imported.split(".")[1] in RUNTIME_MUST_NOT_IMPORT
    )
    assert offending == []
