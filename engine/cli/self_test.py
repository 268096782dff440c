"""``loupe self-test``: does this installation work? Five checks, one line each, in seconds.

Each check runs what Loupe itself runs (no test doubles) and says what it measured:

- ``cache server``: the bundled (or installed) valkey-server starts in a private temporary
  folder on its own socket, answers PING and a SET/GET, and is stopped again;
- ``embeddings``: the default model embeds three fixed texts (English, accented Latin, CJK) to
  the reference vectors that sentence-transformers computed (``resources/self_test_vectors.json``,
  made by ``tests/make_self_test_vectors.py``) within 1e-5, as the largest absolute difference of
  any component;
- ``umap``: a small UMAP runs, and its numba kernels are read from or written to Loupe's numba
  cache folder (the files there are counted before and after);
- ``engine process``: the engine's child process starts, answers ``identify`` and is closed;
- ``qt offscreen``: a child process draws a small pyqtgraph plot offscreen into an image that is
  not blank (a child, so that a broken Qt can neither abort this process nor need a display).

Exit status 0 when every check passes, 1 otherwise; a failed check is one sentence, never a
traceback. Nothing here names a path of the source tree, so a frozen bundle runs it the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.runtime.channel import PrivateFolder, child_env, python_command
from engine.runtime.paths import resource_folders

# Where the reference vectors are looked for when this variable does not name a file.
VECTORS_VARIABLE = "LOUPE_SELF_TEST_VECTORS"
VECTORS_NAME = "self_test_vectors.json"
EMBEDDING_TOLERANCE = 1e-5
# The child that draws offscreen (desktop/map/draw_check.py): named, never imported, since the
# engine never imports Qt.
DRAW_CHECK_MODULE = "desktop.map.draw_check"
_CHILD_TIMEOUT_S = 120.0


class CheckFailed(Exception):
    """A check ran and found something wrong: its message is the one sentence shown."""


class CheckSkipped(Exception):
    """A check that does not apply on this system (its message says why); it does not fail the run."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    seconds: float
    detail: str
    skipped: bool = False

    def line(self) -> str:
        verdict = "skip" if self.skipped else "ok" if self.passed else "FAIL"
        return f"{self.name:<15} {verdict:<4} {self.seconds:6.2f} s  {self.detail}"


def self_test_command() -> int:
    """Run every check, print a line for each as it finishes, then the total; 0 when all pass."""
    began = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="loupe-self-test-") as scratch:
        for name, check in CHECKS:
            result = run_check(name, check, Path(scratch))
            print(result.line(), flush=True)
            results.append(result)
    failed = [result.name for result in results if not result.passed]
    total = time.perf_counter() - began
    if failed:
        print(f"self-test FAILED in {total:.1f} s: {', '.join(failed)}", flush=True)
        return 1
    print(f"self-test passed: {len(results)} checks in {total:.1f} s", flush=True)
    return 0


def run_check(name: str, check: Callable[[Path], str], scratch: Path) -> CheckResult:
    """Time ``check(scratch)``; any exception it raises becomes a failed line with one sentence."""
    began = time.perf_counter()
    try:
        detail, passed = check(scratch), True
    except KeyboardInterrupt:
        raise
    except CheckFailed as exc:
        detail, passed = str(exc), False
    except CheckSkipped as exc:
        return CheckResult(name, True, time.perf_counter() - began, str(exc), skipped=True)
    except BaseException as exc:  # an unexpected error still fails only its own line, with no traceback
        detail, passed = _one_line(f"{type(exc).__name__}: {exc}"), False
    return CheckResult(name, passed, time.perf_counter() - began, detail)


# -- the checks --------------------------------------------------------------------------------


def check_cache_server(scratch: Path) -> str:
    from engine.cache.server import EmbeddedServer, ServerPaths, find_server_binary

    if not sys.platform.startswith("linux"):
        # The server's bookkeeping needs /proc and fcntl: elsewhere Loupe caches in memory.
        raise CheckSkipped(
            f"the embedded cache server runs on Linux only; on {sys.platform} the cache is in memory"
        )
    binary = find_server_binary()
    server = EmbeddedServer.start_or_attach(ServerPaths.in_directory(scratch / "valkey"))
    try:
        import redis

        client = redis.Redis(unix_socket_path=str(server.paths.socket), socket_timeout=5)
        try:
            if not client.ping():
                raise CheckFailed("The cache server did not answer PING.")
            value = os.urandom(16)
            client.set("loupe:self-test", value)
            if client.get("loupe:self-test") != value:
                raise CheckFailed("The cache server gave back another value than the one set.")
            info = client.info("server")
        finally:
            client.close()
    finally:
        server.release()
    version = info.get("valkey_version") or info.get("redis_version") or "?"
    return f"{binary.name} {version} ({binary}): PING and SET/GET answered, stopped"


def check_embeddings(scratch: Path) -> str:
    import numpy as np

    from engine.model.inference import embed_texts
    from engine.model.models import DEFAULT_MODEL, load_model, resolve_model

    where = find_reference_vectors()
    try:
        reference = json.loads(where.read_text(encoding="utf-8"))
        texts = [str(text) for text in reference["texts"]]
        expected = np.asarray(reference["vectors"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckFailed(f"The reference vectors {where} cannot be read ({exc}).") from None
    if reference.get("model") != DEFAULT_MODEL or expected.shape[0] != len(texts):
        raise CheckFailed(f"The reference vectors {where} are not {len(texts)} vectors of {DEFAULT_MODEL}.")
    model = load_model(resolve_model(DEFAULT_MODEL), device="cpu")
    vectors = embed_texts(model, texts).vectors
    if vectors.shape != expected.shape:
        raise CheckFailed(f"The model gave vectors of shape {vectors.shape}, the reference {expected.shape}.")
    differences = np.abs(vectors.astype(np.float64) - expected).max(axis=1)
    worst = int(differences.argmax())
    measured = f"max |difference| {differences.max():.1e} (limit {EMBEDDING_TOLERANCE:.0e})"
    if not differences.max() <= EMBEDDING_TOLERANCE:
        raise CheckFailed(f"{measured}, on text {worst + 1} {texts[worst]!r}, against {where}.")
    return f"{len(texts)} texts by {DEFAULT_MODEL} equal sentence-transformers' vectors: {measured}"


def find_reference_vectors() -> Path:
    """``$LOUPE_SELF_TEST_VECTORS``, else ``resources/self_test_vectors.json`` where this
    installation keeps it: in the frozen bundle's data, in the source tree that holds this
    ``engine`` package, or under ``share/loupe`` where pip put a wheel's data files (the places
    ``engine.user.desktop_entry`` looks for the desktop files too)."""
    named = os.environ.get(VECTORS_VARIABLE)
    if named:
        return Path(named)
    places = resource_folders()
    for place in places:
        if (place / VECTORS_NAME).is_file():
            return place / VECTORS_NAME
    raise CheckFailed(f"No {VECTORS_NAME} in {', '.join(str(place) for place in places)}.")


def check_umap(scratch: Path) -> str:
    import numpy as np

    from engine.maps.projection import ProjectionParams, prepare_numba_cache, project

    prepare_numba_cache()
    folder = Path(os.environ["NUMBA_CACHE_DIR"])
    before = _cache_files(folder)
    started = time.time()
    points = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    params = ProjectionParams.from_options("umap", {"n_neighbors": 10}, seed=0)
    began = time.perf_counter()
    coordinates = project(points, params)
    fit = time.perf_counter() - began
    after = _cache_files(folder)
    if coordinates.shape != (300, 2) or not np.isfinite(coordinates).all():
        raise CheckFailed(f"UMAP gave coordinates of shape {coordinates.shape} with non-finite values.")
    if not after:
        raise CheckFailed(f"numba left no compiled kernels in Loupe's cache folder {folder}.")
    written = sum(1 for modified in after.values() if modified >= started - 1)
    way = "written to" if written else "read from"
    return (
        f"300 points in {fit:.1f} s; kernels {way} {folder}: "
        f"{len(before)} files before, {len(after)} after, {written} written"
    )


def _cache_files(folder: Path) -> dict[Path, float]:
    """numba's index (.nbi) and data (.nbc) files under ``folder``, with their modification times."""
    if not folder.is_dir():
        return {}
    return {path: path.stat().st_mtime for path in folder.rglob("*.nb[ic]") if path.is_file()}


def check_engine_process(scratch: Path) -> str:
    from engine.api.types import Identify
    from engine.cache.store import Cache
    from engine.model.models import DEFAULT_MODEL
    from engine.process.proxy import EngineProcess, start_engine

    engine = start_engine(Cache(None), DEFAULT_MODEL, "cpu", no_cache=True)
    try:
        if not isinstance(engine, EngineProcess):
            raise CheckFailed("This build cannot start the engine's child process (it would run in-process).")
        identity = engine.identify(Identify())
        pid = engine.pid
    finally:
        engine.close()
    if pid is None or pid == os.getpid():
        raise CheckFailed("The engine answered, but not from a child process.")
    return f"child {pid} answered identify ({identity.display_name}, {identity.pooling} pooling), closed"


def check_qt_offscreen(scratch: Path) -> str:
    environment = child_env() | {"QT_QPA_PLATFORM": "offscreen"}
    with PrivateFolder("loupe-self-test-qt-") as workdir:
        try:
            finished = subprocess.run(
                python_command(DRAW_CHECK_MODULE),
                cwd=workdir,
                env=environment,
                capture_output=True,
                text=True,
                timeout=_CHILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"The drawing child did not finish in {_CHILD_TIMEOUT_S:.0f} s.") from None
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        said = _one_line(finished.stderr.strip().splitlines()[-1] if finished.stderr.strip() else "")
        status = finished.returncode
        raise CheckFailed(f"The drawing child ended with status {status}: {said or 'no output'}.")
    return lines[-1]


CHECKS: tuple[tuple[str, Callable[[Path], str]], ...] = (
    ("cache server", check_cache_server),
    ("embeddings", check_embeddings),
    ("umap", check_umap),
    ("engine process", check_engine_process),
    ("qt offscreen", check_qt_offscreen),
)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
