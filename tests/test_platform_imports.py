"""macOS and Windows, as far as Linux can tell (issue 17, item 8): no ``fcntl`` and no ``/proc``
at import time, and a headless command that runs on the in-process cache when the embedded
server's bookkeeping cannot.

Each check runs in a fresh interpreter where ``fcntl`` cannot be imported (``sys.modules``
holds None for it, which makes ``import fcntl`` raise ImportError as it does on Windows) and
where every look at ``/proc`` from Loupe's own code is recorded: an audit hook sees ``open``,
``os.listdir`` and ``os.scandir``, and ``os.stat`` (behind ``Path.is_file`` and ``exists``,
which raise no audit event) is wrapped. Third-party libraries choose their own platform paths,
so a look from their frames is not counted; a look from a frame under ``engine/`` or
``desktop/`` is.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import desktop
import engine

ROOT = Path(__file__).resolve().parent.parent

# Installed in the child before anything of Loupe's is imported; the child then prints, as its
# last line, the JSON list of /proc looks made from Loupe's frames.
SHIM = r"""
import json, os, sys
sys.modules["fcntl"] = None  # `import fcntl` raises ImportError, as on Windows
LOUPE_DIRS = tuple(os.path.join(sys.argv[1], name) + os.sep for name in ("engine", "desktop"))
looks = []

STDLIB = os.path.realpath(os.path.dirname(os.__file__)) + os.sep  # the base Python's, not a venv's

def _is_stdlib(filename):
    real = os.path.realpath(filename)
    return real.startswith(STDLIB) and os.sep + "site-packages" + os.sep not in real

def _loupe_caller():
    # The innermost frame that is neither the standard library nor this shim decides whose look
    # it is: Loupe's own code, or a third-party library's (which Loupe merely imported or called).
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<") or _is_stdlib(filename):
            frame = frame.f_back
            continue
        return f"{filename}:{frame.f_lineno}" if filename.startswith(LOUPE_DIRS) else None
    return None

def _record(path):
    try:
        text = os.fsdecode(path)
    except TypeError:
        return
    if text == "/proc" or text.startswith("/proc/"):
        caller = _loupe_caller()
        if caller:
            looks.append(f"{caller} -> {text}")

def _audit(event, args):
    looked = event in ("open", "os.listdir", "os.scandir")
    if looked and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _record(args[0])

sys.addaudithook(_audit)
_stat = os.stat

def _watched_stat(path, *args, **kwargs):
    if isinstance(path, (str, bytes, os.PathLike)):
        _record(path)
    return _stat(path, *args, **kwargs)

os.stat = _watched_stat
"""

IMPORT_ALL = r"""
import importlib
failures = []
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
print(json.dumps({"failures": failures, "looks": looks}))
"""

RUN_CLI = r"""
from pathlib import Path
import engine.cache.server as server
server._PROC = Path(sys.argv[2])  # a system without /proc, as the server module sees it
from desktop.launcher import main
code = main(sys.argv[3:])
print(json.dumps({"code": code, "looks": looks}))
"""


def all_modules() -> list[str]:
    names = []
    for package in (engine, desktop):
        names.append(package.__name__)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            names.append(module.name)
    return sorted(names)


def run_shimmed(
    body: str, *args: str, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    env = {name: value for name, value in os.environ.items() if name not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", SHIM + body, str(ROOT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result, json.loads(lines[-1])


def test_every_module_imports_without_fcntl_or_proc(tmp_path: Path) -> None:
    modules = all_modules()
    assert "engine.cache.server" in modules and "desktop.window" in modules
    _, report = run_shimmed(IMPORT_ALL, *modules, cwd=tmp_path)
    assert report["failures"] == []
    assert report["looks"] == []


def test_project_with_pca_falls_back_to_the_in_process_cache(loupe_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "tiny.csv"
    data.write_text(
        "text,label\n"
        + "".join(f'"Row {i}: a short sentence about topic {i % 3}.",t{i % 3}\n' for i in range(12)),
        encoding="utf-8",
    )
    out = tmp_path / "map.csv"
    args = ("project", str(data), "--method", "pca", "--out", str(out), "--device", "cpu")
    result, report = run_shimmed(RUN_CLI, str(tmp_path / "no-proc"), *args, cwd=tmp_path)

    assert report["code"] == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "in-process" in result.stderr.lower() or "memory" in result.stderr.lower(), result.stderr
    assert "fcntl" in result.stderr and "/proc" in result.stderr, result.stderr  # why, said once
    assert len(out.read_text(encoding="utf-8").strip().splitlines()) == 13
    assert not list(loupe_home.rglob("valkey.sock"))  # no server was started
    assert report["looks"] == []
