"""The jobs panel lists each running job with progress, rate and ETA, and cancels one job."""

from __future__ import annotations

import threading

from pytestqt.qtbot import QtBot

from desktop.operations.bridge import EngineBridge
from desktop.panels.jobs_view import JobsView
from engine.runtime.jobs import CancelToken, Report


def test_a_job_shows_progress_and_its_own_cancel_stops_it(qtbot: QtBot) -> None:
    bridge = EngineBridge()
    view = JobsView(bridge)
    qtbot.addWidget(view)
    started = threading.Event()

    def slow(*, token: CancelToken, report: Report) -> int:
        for done in range(1, 10_000):
            token.raise_if_cancelled()
            report(done, 10_000, "Counting")
            started.set()
            threading.Event().wait(0.01)
        return 0

    def quick(*, token: CancelToken, report: Report) -> int:
        return 1

    try:
        handle = bridge.submit("compute", "slow count", slow)
        other = bridge.submit("model", "quick one", quick)
        assert handle.job_id in view.rows
        qtbot.waitUntil(lambda: other.job_id not in view.rows, timeout=10_000)  # gone when finished
        row = view.rows[handle.job_id]
        qtbot.waitUntil(lambda: row.bar.value() > 1 and "/s" in row.detail.text(), timeout=10_000)
        assert row.detail.text().startswith("Counting ") and "ETA" in row.detail.text()
        with qtbot.waitSignal(bridge.cancelled, timeout=10_000):
            row.cancel.click()
        assert handle.job_id not in view.rows and view.empty.isVisibleTo(view)
    finally:
        bridge.shutdown()
