"""Shared fixtures: a private Loupe home per test, the real model once per session, and a
check that no test leaves a Loupe worker thread or Valkey server running.

``QT_QPA_PLATFORM=offscreen`` must be set before Qt is first imported, or pytest-qt aborts
the run on a machine without a display; this module is imported before any test module.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parent.parent
# The offscreen screen is 800 x 800 unless told otherwise, and a new window never opens larger
# than its screen: give the tests a 1920 x 1080 desktop screen (same 96 dpi), the size most
# users have. (The platform's options are split at ':' and ',', which such a path cannot hold.)
_SCREEN = ROOT / "tests" / "offscreen_screen.json"
if os.environ["QT_QPA_PLATFORM"] == "offscreen" and not set(":,") & set(str(_SCREEN)):
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_SCREEN}"
# numba's compiled UMAP kernels survive between test runs here; every run still starts
# from an empty Loupe cache (LOUPE_HOME below).
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".pytest_cache" / "numba"))


# One Hypothesis profile for every property test: 200 examples, no per-example deadline (this
# machine's timings are noisy), and fixtures such as tmp_path shared across a test's examples
# (the tests write each example's files under their own names). A module asks for fewer examples
# with its own @settings where an example is slow.
settings.register_profile(
    "loupe",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("loupe")


NO_HANG_S = 3.0  # what "never a hang" means for one cache call in the tests


def timed(call: Callable[[], Any]) -> Any:
    """The result of ``call``, asserting it came back within :data:`NO_HANG_S`."""
    began = time.monotonic()
    result = call()
    elapsed = time.monotonic() - began
    assert elapsed < NO_HANG_S, f"cache call took {elapsed:.1f} s"
    return result


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def valkey_pids_under(directory: Path) -> list[int]:
    """Pids of valkey/redis servers whose command line mentions ``directory``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if state != "Z" and "-server" in cmdline and str(directory) in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture(autouse=True)
def loupe_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh LOUPE_HOME (short path: unix sockets allow 107 bytes); servers in it are killed after."""
    home = Path(tempfile.mkdtemp(prefix="lt", dir="/tmp"))
    monkeypatch.setenv("LOUPE_HOME", str(home))
    for name in (
        "LOUPE_REDIS_URL",
        "LOUPE_REDIS_PASSWORD",
        "LOUPE_REDIS_CA",
        "LOUPE_CACHE_MAXMEMORY",
        "LOUPE_CACHE_KEY",
        "LOUPE_CACHE_KEY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    yield home
    for pid in valkey_pids_under(home):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_leaked_loupe_threads() -> Iterator[None]:
    """Fail a test that leaves one of Loupe's worker threads alive."""
    before = {t.ident for t in threading.enumerate()}
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("loupe-") and t.ident not in before]
    assert not leaked, f"worker threads left running: {leaked}"


@pytest.fixture(scope="session")
def minilm() -> object:
    """The real default model, loaded once for the whole session (LoadedModel)."""
    from engine.model.models import load_model, resolve_model

    home = tempfile.mkdtemp(prefix="lm", dir="/tmp")
    previous = os.environ.get("LOUPE_HOME")
    os.environ["LOUPE_HOME"] = home  # resolve_model memoises the weights digest under the cache dir
    try:
        return load_model(resolve_model("minilm"), device="cpu")
    finally:
        if previous is None:
            os.environ.pop("LOUPE_HOME", None)
        else:
            os.environ["LOUPE_HOME"] = previous


# -- the cache and an engine on it --------------------------------------------------------------


@pytest.fixture
def cache() -> Iterator[Any]:
    """A cache on the embedded server of this test's LOUPE_HOME (a real Valkey, never a mock)."""
    from engine.cache.connect import open_cache

    opened = open_cache()
    assert opened.description.startswith("embedded Valkey"), opened.description
    yield opened
    opened.close()


@pytest.fixture
def engine(cache: Any, minilm: Any) -> Any:
    """An Engine on the embedded cache that reuses the session's model (no second load), in
    float32: the tests that use it compare with sentence-transformers and with float32 vectors."""
    from engine.core.engine import Engine

    made = Engine(cache, precision="fp32")
    made._spec = minilm.spec
    made._loaded = minilm
    return made


@pytest.fixture
def service(engine: Any) -> Any:
    """The engine's API in this process (EngineService) over ``engine``: the session's model."""
    from engine.core.service import EngineService

    made = EngineService(engine.cache, device="cpu")
    made.engine = engine
    return made


# -- the window, as users run it -----------------------------------------------------------------


def window_args(**overrides: object) -> argparse.Namespace:
    """The command line the window tests start from: the demo, on the CPU, the embedded cache."""
    values: dict[str, object] = {
        "command": "demo", "model": "minilm", "device": "cpu", "redis": None, "no_cache": False, "rows": 300,
    }  # fmt: skip
    values.update(overrides)
    return argparse.Namespace(**values)


def exported(qtbot: Any, window: Any, what: str, path: Path, timeout: int = 120_000) -> tuple[Path, Path]:
    """Export the window's map ("map") or data ("data") to ``path`` and wait for the job to write
    it: the file and its provenance sidecar (written last). The status line may have moved on by
    then (a job finishing): a failure is looked for in it while waiting."""
    sidecar = path.with_name(path.name + ".json")
    window.status_label.setText("")
    (window.export_map if what == "map" else window.export_data)(path)

    def failed() -> bool:
        return bool(window.status_label.text().startswith("Export failed"))

    qtbot.waitUntil(lambda: failed() or sidecar.is_file(), timeout=timeout)  # renamed into place whole
    assert not failed(), window.status_label.text()
    return path, sidecar


def shown_method(window: Any) -> str | None:
    """The method of the real map on show (None: none yet, or only the PCA preview)."""
    shown = window.model.shown
    return None if shown is None or shown.preview else str(shown.map.params.method)


@pytest.fixture
def window(qtbot: Any) -> Iterator[Any]:
    """The window as the app makes it: its engine (and the model) in a child process.

    Desktop tests use this one. A test that needs the engine in this process (to patch or count
    what it computes, or because it makes no engine call at all) uses ``in_process_window`` and
    says why in a comment.
    """
    from desktop.app import create_window
    from engine.process.proxy import EngineProcess

    shown = create_window(window_args())
    assert isinstance(shown.engine, EngineProcess)
    qtbot.addWidget(shown)
    shown.show()
    yield shown
    shown.close()


@pytest.fixture
def reopened(qtbot: Any) -> Iterator[list[Any]]:
    """Windows a test opens itself (a session reopened in a new window, say), closed after it."""
    made: list[Any] = []
    yield made
    for shown in made:
        shown.close()


@pytest.fixture
def in_process_window(qtbot: Any, minilm: object) -> Iterator[Any]:
    """The window with its engine in this process, sharing the session's model (no second load)."""
    from desktop.app import create_window
    from engine.core.service import EngineService

    shown = create_window(window_args(), in_process=True)
    assert isinstance(shown.engine, EngineService)
    shown.engine.engine._loaded = minilm  # the session's model: no second load
    qtbot.addWidget(shown)
    shown.show()
    yield shown
    shown.close()
