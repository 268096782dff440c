"""A finished headless command ends without Python's module teardown, but with everything else
a normal exit does (engine.runtime.quick_exit, desktop.launcher.run); the window does not.

Each case runs a real process: what ends a process cannot be tested inside pytest's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop import launcher

ROOT = Path(__file__).resolve().parent.parent

# A process that exits with code 3 after: a non-daemon thread still writing a file, an atexit
# handler, a line left in stdout's buffer, and an object whose __del__ runs only at teardown.
SCRIPT = """
import atexit, sys, threading, time
from engine.runtime.quick_exit import exit_without_teardown

class Noisy:
    def __del__(self):
        print("teardown ran", flush=True)

kept = Noisy()
atexit.register(lambda: print("atexit ran", flush=True))

def late_write():
    time.sleep(0.3)
    with open(sys.argv[2], "w", encoding="utf-8") as handle:
        handle.write("written")

threading.Thread(target=late_write).start()
print("buffered, ", end="")
if sys.argv[1] == "quick":
    exit_without_teardown(3)
sys.exit(3)
"""


def _run(how: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    written = tmp_path / f"{how}.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, how, str(written)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return result, written


def test_quick_exit_does_what_a_normal_exit_does_except_the_teardown(tmp_path: Path) -> None:
    normal, normal_file = _run("normal", tmp_path)
    quick, quick_file = _run("quick", tmp_path)
    # The control: a normal exit does all of it, teardown included.
    assert normal.returncode == 3
    assert normal.stdout == "buffered, atexit ran\nteardown ran\n"
    assert normal_file.read_text(encoding="utf-8") == "written"
    # The quick exit: the same code, the thread's write, the atexit handler and the buffered
    # output, and no teardown.
    assert quick.returncode == 3, quick.stderr
    assert quick.stdout == "buffered, atexit ran\n"
    assert quick_file.read_text(encoding="utf-8") == "written"
    assert "Traceback" not in quick.stderr


def test_a_closed_stdout_pipe_is_no_traceback() -> None:
    """``loupe ... | head``: the reader has gone before the last output is flushed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # the line must wait in the buffer
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "import time\nfrom engine.runtime.quick_exit import exit_without_teardown\n"
        "print('still in the buffer')\ntime.sleep(1)\nexit_without_teardown(0)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # gone before the child flushes its line
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0
    assert stderr == ""


def test_the_console_entry_point_is_run() -> None:
    """pyproject's ``loupe`` script and the bundle's entry use :func:`desktop.launcher.run`."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'loupe = "desktop.launcher:run"' in pyproject
    entry = (ROOT / "packaging" / "loupe_entry.py").read_text(encoding="utf-8")
    assert "from desktop.launcher import run" in entry


def test_the_window_is_not_headless(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the window means the ordinary exit (Qt cleans up at teardown)."""
    monkeypatch.setattr(launcher, "_open_gui", lambda args: 0)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert launcher._main([]) == (0, False)


def test_a_headless_command_is_headless(capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher._main(["logs"]) == (0, True)  # prints where the log file is
    assert "loupe.jsonl" in capsys.readouterr().out


def test_a_command_line_run_ends_with_its_exit_code_and_output(tmp_path: Path) -> None:
    """The real entry point: a bad input is exit code 2 and one line, a good one writes its file."""
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}}
    env["LOUPE_HOME"] = str(tmp_path / "home")
    missing = subprocess.run(
        [sys.executable, "-m", "desktop.launcher", "embed", str(tmp_path / "none.csv"),
         "--out", str(tmp_path / "x.npy"), "--no-cache", "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("loupe: No such file")
    data = tmp_path / "data.csv"
    data.write_text("text\nÉté à Zürich\n東京の夏\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    done = subprocess.run(
        [sys.executable, "-m", "desktop.launcher", "embed", str(data), "--out", str(out),
         "--device", "cpu", "--no-cache"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert np.load(out).shape == (2, 384)
    assert "Traceback" not in done.stderr
