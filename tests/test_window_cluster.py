"""File ▸ Send to cluster… in the window: the dialog, its refusals, Cancel, and one real job.

The window runs as users run it (its engine in a child process). The cluster is a real local Ray
head with token authentication and the shared cache a real Valkey with a password, both started
here once for the module in their own process groups and stopped by their ids; nothing is mocked.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import window_args
from tests.ray_head import LocalRayHead, ValkeyWithPassword

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed (pip install 'loupe[cluster]'): the cluster tests need a real Ray head",
)

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
REAL_HOME = str(Path.home())  # the head's, whatever a test later does to HOME
JOB_MS = 300_000  # a 400-row job on two shared CPUs: Ray's start, the model per actor, UMAP
PASSWORD = "valkey-pw-" + secrets.token_hex(8)
LANGUAGES = {
    "français": "Le café « du coin » n° {n} ouvre à l’aube ; on y sert une crème brûlée.",
    "Русский": "Поезд номер {n} прибыл в Москву рано утром, пассажиры вышли на перрон.",
    "日本語": "東京の駅で{n}番目の電車を待っていると、雨が降り始めました。",
    "العربية": "وصل القطار رقم {n} إلى المحطة في الصباح الباكر.",
    "English “quoted”": "She said “it’s fine” and left meeting {n} at noon — nobody followed.",
    "emoji 🎉": "Party 🎉 number {n} was great 😀, the cake 🎂 was gone by midnight 🌙.",
}


@pytest.fixture(scope="module")
def shared_valkey() -> Iterator[str]:
    """A real valkey-server on loopback with a password; its URL without the password."""
    server = ValkeyWithPassword(password=PASSWORD).start()
    try:
        yield server.url()
    finally:
        server.close()


@pytest.fixture(scope="module")
def ray_head() -> Iterator[LocalRayHead]:
    """A local Ray head with token auth (tests/ray_head.py), stopped with nothing left behind."""
    head = LocalRayHead().start()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture
def no_ray_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No token anywhere Ray looks (a home folder without ~/.ray/auth_token)."""
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def shared_window(qtbot: Any, shared_valkey: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The window as the app makes it (engine in a child process) on the shared Valkey; the
    password is in LOUPE_REDIS_PASSWORD, as a user keeps it out of the URL."""
    from desktop.app import create_window

    monkeypatch.setenv("LOUPE_REDIS_PASSWORD", PASSWORD)
    shown = create_window(window_args(redis=shared_valkey))
    qtbot.addWidget(shown)
    shown.show()
    yield shown
    shown.close()


def write_dataset(path: Path, rows: int = 400) -> Path:
    """``rows`` rows in six languages and scripts, as a CSV a user might have."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        names = list(LANGUAGES)
        for row in range(rows):
            label = names[row % len(names)]
            writer.writerow([LANGUAGES[label].format(n=row), label])
    return path


def open_without_map(qtbot: Any, window: Any, path: Path) -> None:
    """Open ``path`` and stop its map flow as soon as the table is there (the cluster makes the map)."""
    window.open_path(path)
    qtbot.waitUntil(lambda: window.model.opened is not None, timeout=120_000)
    window.operations.cancel("map")
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=120_000)


def open_dialog(qtbot: Any, window: Any) -> Any:
    action = next(
        action
        for menu in window.menus
        for action in menu.actions()
        if action.text().replace("&", "") == "Send to cluster…"
    )
    action.trigger()
    qtbot.waitUntil(lambda: window.cluster.dialog is not None and window.cluster.dialog.isVisible())
    return window.cluster.dialog


# -- the dialog and its refusals ---------------------------------------------------------------


def test_the_embedded_cache_is_refused_in_one_sentence(qtbot: Any, window: Any) -> None:
    from desktop.window.cluster_dialog import EMBEDDED_CACHE

    dialog = open_dialog(qtbot, window)
    assert dialog.error.text() == EMBEDDED_CACHE
    assert "Settings" in EMBEDDED_CACHE and not dialog.send.isEnabled()
    dialog.reject()


def test_without_ray_the_dialog_names_the_extra(
    qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop.window import cluster

    monkeypatch.setattr(cluster, "ray_installed", lambda: False)  # as find_spec("ray") answers then
    dialog = open_dialog(qtbot, window)
    assert "pip install 'loupe[cluster]'" in dialog.error.text()
    dialog.reject()


def test_the_dialog_shows_the_job_and_the_token_source_never_the_token(
    qtbot: Any, shared_window: Any, tmp_path: Path, no_ray_token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What will be computed is read from the window; the token's source is named, the token never."""
    from engine.maps.projection import ProjectionParams
    from engine.user.settings import load_settings, save_settings

    save_settings(load_settings().with_changes(cluster_address="127.0.0.1:9"))
    data = write_dataset(tmp_path / "langs.csv", rows=60)
    open_without_map(qtbot, shared_window, data)
    params = ProjectionParams.from_options("umap", {"n_neighbors": 7, "min_dist": 0.25}, seed=3)
    shared_window.model.set_params(params)
    job, _ = shared_window.cluster.job_of_window()
    assert ProjectionParams.from_options(job.method, job.params, seed=job.seed) == params  # same keys
    assert job.redis_url.startswith("redis://127.0.0.1:") and job.text_column == "text"
    dialog = open_dialog(qtbot, shared_window)
    assert dialog.error.text() == ""
    assert dialog.address.text() == "127.0.0.1:9"
    assert dialog.cluster_path.text() == str(data.resolve())
    texts = " | ".join(label.text() for label in dialog.findChildren(type(dialog.error)))
    assert "minilm" in texts and "UMAP (min_dist=0.25, n_neighbors=7), seed 3" in texts
    assert str(data.resolve()) in texts
    assert PASSWORD not in texts and not dialog.insecure.isChecked()
    assert "No token found" in dialog.token_source.text()
    token = secrets.token_urlsafe(32)
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    dialog.update_token_source()
    assert dialog.token_source.text() == "Token from RAY_AUTH_TOKEN."
    dialog.token.setText("typed-" + token)
    assert dialog.token_source.text() == "Token from the token typed here."
    assert token not in " ".join(label.text() for label in dialog.findChildren(type(dialog.error)))
    dialog.reject()


def test_no_token_is_refused_in_the_dialog_with_access_sentence(
    qtbot: Any, shared_window: Any, tmp_path: Path, no_ray_token: None
) -> None:
    from engine.cluster.access import ClusterAccessError, check_access

    open_without_map(qtbot, shared_window, write_dataset(tmp_path / "langs.csv", rows=60))
    dialog = open_dialog(qtbot, shared_window)
    dialog.address.setText("127.0.0.1:8265")
    dialog.send.click()
    with pytest.raises(ClusterAccessError) as refused:
        check_access("127.0.0.1:8265")
    assert dialog.error.text() == str(refused.value)
    assert dialog.isVisible() and not shared_window.bridge.running  # nothing was sent
    dialog.reject()


def test_ray_is_not_imported_until_a_job_is_sent() -> None:
    """The window and the dialog open without loading Ray (600 MB of modules)."""
    script = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from desktop.app import create_window\n"
        "from tests.conftest import window_args\n"
        "window = create_window(window_args(no_cache=True), in_process=True)\n"
        "window.send_to_cluster()\n"
        "assert window.cluster.dialog is not None\n"
        "print('ray' in sys.modules, 'ray.job_submission' in sys.modules)\n"
        "window.close()\n"
    )
    home = tempfile.mkdtemp(prefix="wcn", dir="/tmp")
    env = {**os.environ, "LOUPE_HOME": home, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False False"


# -- against a real cluster ---------------------------------------------------------------------


def send(qtbot: Any, window: Any, address: str, token: str) -> None:
    dialog = open_dialog(qtbot, window)
    dialog.address.setText(address)
    dialog.token.setText(token)
    dialog.send.click()
    assert not dialog.isVisible(), dialog.error.text()


def test_a_wrong_token_is_one_sentence_in_the_window(
    qtbot: Any, shared_window: Any, tmp_path: Path, ray_head: LocalRayHead, no_ray_token: None
) -> None:
    open_without_map(qtbot, shared_window, write_dataset(tmp_path / "langs.csv", rows=60))
    with qtbot.waitSignal(shared_window.job_failed, timeout=60_000) as failed:
        send(qtbot, shared_window, ray_head.address, secrets.token_urlsafe(32))
    message = failed.args[0]
    assert "refused the request" in message and "Traceback" not in message and "\n" not in message
    assert "refused the request" in shared_window.status_label.text()


def test_cancel_stops_the_job_on_the_cluster(
    qtbot: Any, shared_window: Any, tmp_path: Path, ray_head: LocalRayHead, shared_valkey: str
) -> None:
    from engine.cluster.client import ClusterClient

    open_without_map(qtbot, shared_window, write_dataset(tmp_path / "langs.csv", rows=400))
    shared_window.cluster.poll_s = 0.5
    send(qtbot, shared_window, ray_head.address, ray_head.token)
    qtbot.waitUntil(lambda: shared_window.cluster.job_id is not None, timeout=60_000)
    qtbot.waitUntil(lambda: len(shared_window.jobs_view.rows) == 1, timeout=10_000)
    from desktop.window.cluster import FOLLOWING

    second = open_dialog(qtbot, shared_window)  # one job at a time: a second would stop the first
    assert second.error.text() == FOLLOWING and not second.send.isEnabled()
    second.reject()
    row = next(iter(shared_window.jobs_view.rows.values()))
    with qtbot.waitSignal(shared_window.operations.cancelled, timeout=120_000):
        row.cancel.click()
    job_id = shared_window.cluster.job_id
    state = ClusterClient(ray_head.address, token=ray_head.token).state(job_id)
    assert state.status == "STOPPED", state
    assert shared_window.status_label.text().startswith("Cancelled: Cluster job")


def test_a_job_sent_from_the_window_opens_its_map_warm_from_the_shared_cache(
    qtbot: Any, shared_window: Any, tmp_path: Path, ray_head: LocalRayHead, shared_valkey: str
) -> None:
    """400 multilingual rows: sent, followed in the Jobs panel, and shown from the shared cache
    with no row embedded on this machine."""
    import redis

    data = write_dataset(tmp_path / "langs.csv", rows=400)
    open_without_map(qtbot, shared_window, data)
    # What the window may have embedded before its flow was stopped goes: the cluster computes all.
    with redis.Redis.from_url(shared_valkey, password=PASSWORD) as client:
        client.flushall()
    seen: list[str] = []
    panel: list[str] = []

    def on_progress(_name: str, progress: Any) -> None:
        seen.append(progress.message)
        panel.extend(row.detail.text() for row in shared_window.jobs_view.rows.values())

    shared_window.operations.progress.connect(on_progress)
    shared_window.cluster.poll_s = 0.5
    began = time.monotonic()
    send(qtbot, shared_window, ray_head.address, ray_head.token)
    assert shared_window.jobs_view.isVisible()
    failures: list[str] = []
    shared_window.job_failed.connect(failures.append)

    def scored() -> bool:
        return bool(failures) or shared_window.model.scores is not None

    qtbot.waitUntil(scored, timeout=JOB_MS)
    assert not failures, f"{failures}\n{ray_head.log_tail()}"
    print(f"sent, run on the cluster and shown warm in {time.monotonic() - began:.1f} s")
    assert any("embedding" in line and "/400 rows" in line for line in seen), seen
    assert any(line.startswith("Cluster job raysubmit_") for line in panel), panel
    finished = shared_window.cluster.finished
    assert finished is not None and finished.status == "SUCCEEDED" and finished.progress is not None
    cluster = finished.progress
    print(f"the cluster embedded {cluster.computed} rows, {cluster.from_cache} from the cache")
    assert cluster.computed > 0 and cluster.computed + cluster.from_cache == 400
    run = shared_window.model.run
    assert run is not None and run.rows == 400
    assert (run.computed, run.from_cache) == (0, 400)  # no row embedded here: all from the cluster
    shown = shared_window.model.shown
    assert shown is not None and not shown.preview and shown.map.params == shared_window.model.params
    assert shown.map.params.method == "umap" and len(shown.coords) == 400
    # Another dataset open by the time the job ends: the job's dataset is opened again, warm.
    open_without_map(qtbot, shared_window, write_dataset(tmp_path / "other.csv", rows=30))
    shared_window.cluster._succeeded(finished)
    qtbot.waitUntil(lambda: bool(failures) or shared_window.model.scores is not None, timeout=120_000)
    assert not failures, failures
    source, run = shared_window.model.source, shared_window.model.run
    assert source is not None and source.path == data.resolve()
    assert run is not None and (run.computed, run.from_cache) == (0, 400)


def test_a_failed_job_is_its_sentence_in_the_window(
    qtbot: Any, shared_window: Any, tmp_path: Path, ray_head: LocalRayHead
) -> None:
    """A dataset path the cluster cannot read: the driver's one sentence, not a traceback."""
    open_without_map(qtbot, shared_window, write_dataset(tmp_path / "langs.csv", rows=60))
    shared_window.cluster.poll_s = 0.5
    dialog = open_dialog(qtbot, shared_window)
    dialog.address.setText(ray_head.address)
    dialog.token.setText(ray_head.token)
    dialog.cluster_path.setText(str(tmp_path / "not-on-the-cluster.csv"))
    with qtbot.waitSignal(shared_window.job_failed, timeout=120_000) as failed:
        dialog.send.click()
    message = failed.args[0]
    assert message.startswith("The cluster job raysubmit_") and " failed: " in message, message
    assert "not-on-the-cluster.csv" in message and "Traceback" not in message and "\n" not in message


def test_closing_the_window_leaves_the_job_running(
    qtbot: Any, shared_window: Any, tmp_path: Path, ray_head: LocalRayHead
) -> None:
    """The job fills the shared cache for any desktop: closing the window does not stop it."""
    from engine.cluster.client import ClusterClient

    open_without_map(qtbot, shared_window, write_dataset(tmp_path / "langs.csv", rows=400))
    shared_window.cluster.poll_s = 0.5
    send(qtbot, shared_window, ray_head.address, ray_head.token)
    qtbot.waitUntil(lambda: shared_window.cluster.job_id is not None, timeout=60_000)
    job_id = shared_window.cluster.job_id
    began = time.monotonic()
    shared_window.close()
    assert time.monotonic() - began < 15  # one poll, not the job's end
    client = ClusterClient(ray_head.address, token=ray_head.token)
    try:
        assert client.state(job_id).status in ("PENDING", "RUNNING", "SUCCEEDED")
    finally:
        client.stop(job_id)
        deadline = time.monotonic() + 60
        while not client.state(job_id).terminal and time.monotonic() < deadline:
            time.sleep(0.5)
