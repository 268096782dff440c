"""The desktop app with pytest-qt (offscreen): the real engine, model and embedded server."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from desktop.app import create_window
from desktop.window.main_window import MainWindow
from engine.process.proxy import EngineProcess
from engine.runtime.jobs import Progress
from tests.conftest import valkey_pids_under, window_args

ROWS = 300


def test_window_opens_with_map_attention_and_cache_state(window: MainWindow) -> None:
    assert window.isVisible()
    assert window.windowTitle() == "Loupe"
    assert "embedded Valkey" in window.cache_label.text()
    assert not window.progress_bar.isVisible()


@pytest.mark.slow
def test_demo_runs_with_progress_then_pca_preview_then_umap(qtbot: QtBot, window: MainWindow) -> None:
    progress: list[Progress] = []
    window.bridge.progress.connect(lambda handle, p: progress.append(p))
    shown: list[str] = []
    window.map_ready.connect(shown.append)
    failures: list[str] = []
    window.job_failed.connect(failures.append)
    window.start_demo(rows=ROWS)
    assert window.cancel_button.isVisible()
    qtbot.waitUntil(lambda: "umap" in shown or bool(failures), timeout=240_000)
    assert not failures
    embedding = [p for p in progress if p.message == "Embedding"]
    assert embedding[-1].done == embedding[-1].total == ROWS
    assert any(p.rate for p in embedding), "progress reports a rate"
    assert shown[0] == "pca" and shown[-1] == "umap", shown
    assert window.map_view.coords.shape == (ROWS, 2)
    assert len(window.map_view.legend.items) >= 8  # one legend entry per label
    qtbot.waitUntil(lambda: not window.cancel_button.isVisible())

    # Clicking a point shows that row's attention, computed on demand.
    with qtbot.waitSignal(window.attention_ready, timeout=60_000) as blocker:
        window.map_view.click_row(7)
    assert blocker.args == [7]
    maps = window.attention_view.maps
    assert maps is not None and maps.text == window.model.dataset.texts[7]  # type: ignore[union-attr]
    assert maps.attentions.shape[:2] == (6, 12)
    matrix, tokens = window.attention_view.shown_matrix()
    assert "[CLS]" not in tokens and len(tokens) == matrix.shape[0]

    # Layer and head selectors redraw from the same maps.
    window.attention_view.layer.setValue(0)
    window.attention_view.head.setCurrentIndex(3)  # head 2
    matrix, _ = window.attention_view.shown_matrix()
    keep = [i for i, s in enumerate(maps.special) if not s]
    np.testing.assert_allclose(matrix, maps.attentions[0, 2][np.ix_(keep, keep)])


def test_close_mid_job_leaves_no_thread_process_or_server(qtbot: QtBot, loupe_home: Path) -> None:
    window = create_window(window_args(rows=3000))
    assert isinstance(window.engine, EngineProcess)
    qtbot.addWidget(window)
    window.show()
    assert valkey_pids_under(loupe_home), "the embedded server runs while the window is open"
    child = window.engine.pid
    assert child is not None, "the engine process starts with the window"
    started = threading.Event()
    window.bridge.progress.connect(lambda handle, p: started.set() if p.message == "Embedding" else None)
    window.start_demo(rows=3000)
    qtbot.waitUntil(started.is_set, timeout=60_000)
    window.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("loupe-")]
    assert window.engine.pid is None and not Path(f"/proc/{child}").exists(), "the engine process is gone"
    qtbot.waitUntil(lambda: not valkey_pids_under(loupe_home), timeout=5_000)


def test_cancel_stops_the_embedding_job(qtbot: QtBot, window: MainWindow) -> None:
    started = threading.Event()
    window.bridge.progress.connect(lambda handle, p: started.set() if p.message == "Embedding" else None)
    with qtbot.waitSignal(window.bridge.cancelled, timeout=60_000):
        window.start_demo(rows=3000)
        qtbot.waitUntil(started.is_set, timeout=60_000)
        window.cancel_button.click()
    assert window.status_label.text().startswith("Cancelled")
    assert not window.cancel_button.isVisible()
    # The rows were open (the table shows them) before embedding began; nothing embedded or mapped.
    assert window.model.run is None and window.model.shown is None


def test_open_csv_maps_its_rows_with_their_labels(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    rows = [
        (f"A sentence about {topic} number {i}.", topic) for topic in ("cats", "ships") for i in range(12)
    ]
    path = tmp_path / "mine.csv"
    path.write_text("text,label\n" + "\n".join(f'"{text}",{label}' for text, label in rows) + "\n")
    shown: list[str] = []
    window.map_ready.connect(shown.append)
    window.open_csv(path)
    qtbot.waitUntil(lambda: "umap" in shown, timeout=120_000)
    dataset = window.model.dataset  # as the engine process sent it (a sequence of labels)
    assert dataset is not None and list(dataset.labels) == [label for _, label in rows]
    assert window.map_view.coords.shape == (24, 2)
    assert window.windowTitle() == "Loupe — mine.csv"


def test_a_bad_file_is_one_plain_message(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    with qtbot.waitSignal(window.job_failed, timeout=30_000) as blocker:
        window.open_csv(tmp_path / "missing.csv")
    assert blocker.args == [f"No such file or folder: {tmp_path / 'missing.csv'}"]
    assert window.status_label.text().startswith("Failed: No such file")
    assert not window.cancel_button.isVisible()


def test_bare_loupe_opens_an_empty_window(qtbot: QtBot) -> None:
    from engine.cli import main as cli

    args = cli.build_parser().parse_args([])
    cli._fill_defaults(args)
    window = create_window(args)
    qtbot.addWidget(window)
    window.show()
    assert window.model.dataset is None and window.status_label.text() == "Ready"
    window.close()


def test_sigterm_closes_the_app_like_its_close_button(loupe_home: Path) -> None:
    """A logout or `kill` cancels jobs and releases the embedded server instead of leaving it behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    app = subprocess.Popen(
        [sys.executable, "-m", "desktop.launcher"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not valkey_pids_under(loupe_home):
            assert app.poll() is None, app.stderr.read() if app.stderr else ""
            assert time.monotonic() < deadline, "the app never started its cache server"
            time.sleep(0.1)
        # The handler is in place once the process catches SIGTERM (a slow, busy machine can
        # take seconds to get there after the server starts); then the window is up in a moment.
        while not _catches(app.pid, signal.SIGTERM):
            assert app.poll() is None, app.stderr.read() if app.stderr else ""
            assert time.monotonic() < deadline, "the app never installed its SIGTERM handler"
            time.sleep(0.1)
        time.sleep(0.5)  # the window is up and its wake-up timer running
        app.send_signal(signal.SIGTERM)
        _, stderr = app.communicate(timeout=30)
        assert app.returncode == 0, stderr
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert not valkey_pids_under(loupe_home)


def _catches(pid: int, number: int) -> bool:
    """Whether process ``pid`` has a handler for signal ``number`` (Linux: SigCgt in its status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (number - 1) & 1)
    return False


def test_the_gui_process_is_prepared_before_jobs_run() -> None:
    """run_app imports what the GUI thread needs later and freezes what exists (see prepare_gui_process)."""
    import subprocess
    import sys

    code = (
        "import gc, sys; from desktop.app import prepare_gui_process; prepare_gui_process(); "
        "print('pyarrow.compute' in sys.modules, 'matplotlib.path' in sys.modules,"
        " gc.get_freeze_count() > 1000, sys.getswitchinterval() == 0.001)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    # Run in a child, so that this process is left as it was.
    assert shown.stdout.split() == ["True", "True", "True", "True"]
