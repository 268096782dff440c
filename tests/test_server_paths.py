"""The embedded server where its folder is odd or its platform lacks what it needs.

A cache folder with a space or a newline in its path: the server starts, a second open reuses it,
and none is left behind (the process title used to be split on spaces, so the server went
unrecognised: a misleading "did not answer" and one leaked server per run). Without ``/proc`` or
``fcntl`` (macOS, Windows), opening the cache falls back to the in-process cache with a warning,
as DESIGN §3 says, instead of raising. Real servers throughout.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.cache import server as server_module
from engine.cache.connect import open_cache
from engine.cache.store import as_float32
from tests.conftest import valkey_pids_under


@pytest.fixture(params=["with space", "with\nnewline"], ids=["space", "newline"])
def odd_home(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A LOUPE_HOME whose path holds a space or a newline (short: sockets allow 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="lo", dir="/tmp"))
    home = root / str(request.param)
    monkeypatch.setenv("LOUPE_HOME", str(home))
    yield home
    for pid in valkey_pids_under(root):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def servers_settled(home: Path, count: int) -> bool:
    """Whether ``count`` servers run under ``home``, allowing a stopped one a moment to go."""
    deadline = time.monotonic() + 5
    while len(valkey_pids_under(home)) != count and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(valkey_pids_under(home)) == count


def test_a_folder_with_a_space_or_newline_gets_one_reused_server(
    odd_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for _run in range(2):  # each run used to leak one server
        first = open_cache()
        assert first.available and first.description.startswith("embedded Valkey"), first.description
        servers = valkey_pids_under(odd_home)
        assert len(servers) == 1
        first.set("test", "k", np.arange(3, dtype=np.float32))
        second = open_cache()  # attaches to the running server, starts no other
        assert valkey_pids_under(odd_home) == servers
        found = second.get("k")
        assert found is not None and as_float32(found).tolist() == [0.0, 1.0, 2.0]
        first.close()
        assert valkey_pids_under(odd_home) == servers  # the second holder keeps it
        second.close()
        assert servers_settled(odd_home, 0)
    assert "did not answer" not in caplog.text and "in-process" not in caplog.text


@pytest.mark.parametrize("lacking", ["/proc", "fcntl"])
def test_without_proc_or_fcntl_the_cache_falls_back_in_process(
    lacking: str, loupe_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if lacking == "/proc":
        monkeypatch.setattr(server_module, "_PROC", loupe_home / "no-proc")
    else:
        monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` raises ImportError
    with caplog.at_level(logging.WARNING):
        cache = open_cache()
    try:
        assert cache.description.startswith("in-process cache")
        assert f"needs {lacking}, which this system lacks" in caplog.text
        cache.set("test", "k", np.ones(2, dtype=np.float32))
        assert cache.get("k") is not None
        assert valkey_pids_under(loupe_home) == []
    finally:
        cache.close()


def test_the_cache_modules_import_and_open_without_fcntl(loupe_home: Path) -> None:
    """As on Windows: `import fcntl` fails, yet the modules import and open_cache falls back."""
    script = (
        "import sys; sys.modules['fcntl'] = None\n"
        "from engine.cache.connect import open_cache\n"
        "cache = open_cache(); print(cache.description); cache.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("in-process cache"), done.stdout
    assert valkey_pids_under(loupe_home) == []


def test_a_server_that_answers_but_is_not_recognised_is_stopped_and_said_so(
    loupe_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a space in the path used to cause, said truly: no leaked server, no "did not answer"."""
    monkeypatch.setattr(server_module, "_is_our_server", lambda pid, paths: False)
    paths = server_module.ServerPaths.in_directory(loupe_home / "valkey")
    began = time.monotonic()
    with pytest.raises(server_module.ServerStartError, match="could not be recognised"):
        server_module.EmbeddedServer.start_or_attach(paths)
    assert time.monotonic() - began < 5
    assert servers_settled(loupe_home, 0)
