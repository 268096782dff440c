"""The log dock (pytest-qt, offscreen): the thread hop, the filters, the bound, unsubscribing,
and the failed job's "Show log" in the real main window."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

import desktop.panels.log_view as log_view
from desktop.app import create_window
from desktop.panels.log_view import LogView
from engine.logs.records import LogEntry, reset_logging, setup_logging
from engine.runtime.jobs import JobHandle


class FakeLog:
    """Stands in for engine.logs.records' listener registry, so each test decides exactly what is logged."""

    def __init__(self, history: list[LogEntry] | None = None) -> None:
        self.history = history or []
        self.listeners: list[Callable[[LogEntry], None]] = []
        self.lock = threading.Lock()

    def add_listener(self, callback: Callable[[LogEntry], None]) -> Callable[[], None]:
        with self.lock:
            self.listeners.append(callback)
        return lambda: self._remove(callback)

    def _remove(self, callback: Callable[[LogEntry], None]) -> None:
        with self.lock:
            self.listeners.remove(callback)

    def recent_entries(self, limit: int) -> list[LogEntry]:
        return self.history[-limit:]

    def emit(self, entry: LogEntry) -> None:
        with self.lock:
            listeners = list(self.listeners)
        for listener in listeners:
            listener(entry)


def entry(message: str, level: str = "INFO", exc_text: str | None = None, **fields: Any) -> LogEntry:
    return LogEntry(time.time(), level, "loupe.test", message, {"session_id": "s", **fields}, exc_text)


@pytest.fixture
def fake_log(monkeypatch: pytest.MonkeyPatch) -> FakeLog:
    fake = FakeLog([entry("from before the view"), entry("an old warning", "WARNING")])
    monkeypatch.setattr(log_view, "add_listener", fake.add_listener)
    monkeypatch.setattr(log_view, "recent_entries", fake.recent_entries)
    return fake


@pytest.fixture
def view(qtbot: QtBot, fake_log: FakeLog) -> Iterator[LogView]:
    view = LogView(max_rows=50)
    qtbot.addWidget(view)
    view.show()
    yield view
    view.close()


def shown_messages(view: LogView) -> list[str]:
    return [str(view.proxy.index(row, 3).data()) for row in range(view.proxy.rowCount())]


def log_from_thread(fake: FakeLog, entries: list[LogEntry]) -> None:
    # Not named loupe-*: this is the test's own thread, joined before returning.
    thread = threading.Thread(target=lambda: [fake.emit(e) for e in entries], name="test-logger")
    thread.start()
    thread.join()


def test_history_loads_and_entries_from_a_worker_thread_appear(
    qtbot: QtBot, view: LogView, fake_log: FakeLog
) -> None:
    assert shown_messages(view) == ["from before the view", "an old warning"]
    log_from_thread(fake_log, [entry(f"line {i}") for i in range(5)])
    qtbot.waitUntil(lambda: view.proxy.rowCount() == 7)
    assert shown_messages(view)[-1] == "line 4"
    assert view.proxy.index(1, 1).data() == "WARNING"


def test_level_filter_hides_info_when_warning_is_chosen(qtbot: QtBot, view: LogView) -> None:
    view.level_box.setCurrentText("WARNING")
    assert shown_messages(view) == ["an old warning"]
    view.level_box.setCurrentText("DEBUG")
    assert len(shown_messages(view)) == 2


def test_search_is_debounced_and_case_insensitive(qtbot: QtBot, view: LogView) -> None:
    view.search_box.setText("OLD WARN")
    assert view.proxy.rowCount() == 2  # not yet: the search waits for typing to pause
    qtbot.waitUntil(lambda: view.proxy.rowCount() == 1)
    assert shown_messages(view) == ["an old warning"]


def test_show_job_keeps_that_jobs_lines_and_the_chip_clears_it(
    qtbot: QtBot, view: LogView, fake_log: FakeLog
) -> None:
    log_from_thread(fake_log, [entry("in job 7", job_id=7, job="a"), entry("in job 8", job_id=8, job="b")])
    qtbot.waitUntil(lambda: view.proxy.rowCount() == 4)
    view.show_job(7)
    assert shown_messages(view) == ["in job 7"]
    assert view.job_chip.isVisible() and view.job_chip.text() == "job 7 ✕"
    view.job_chip.click()
    assert view.proxy.rowCount() == 4 and not view.job_chip.isVisible()


def test_the_table_keeps_only_the_newest_rows(qtbot: QtBot, view: LogView, fake_log: FakeLog) -> None:
    log_from_thread(fake_log, [entry(f"storm {i}") for i in range(120)])
    qtbot.waitUntil(lambda: shown_messages(view)[-1:] == ["storm 119"])
    assert view.model.rowCount() == 50
    assert shown_messages(view)[0] == "storm 70"


def test_closing_unsubscribes_and_showing_again_resubscribes(
    qtbot: QtBot, view: LogView, fake_log: FakeLog
) -> None:
    assert len(fake_log.listeners) == 1
    view.close()
    assert not fake_log.listeners and not view.subscribed
    log_from_thread(fake_log, [entry("nobody listens")])  # must not reach the view, nor raise
    view.show()
    assert len(fake_log.listeners) == 1
    assert "nobody listens" not in shown_messages(view)


def test_a_deleted_view_unsubscribes(qtbot: QtBot, fake_log: FakeLog) -> None:
    view = LogView()
    assert len(fake_log.listeners) == 1
    view.deleteLater()
    qtbot.waitUntil(lambda: not fake_log.listeners)
    log_from_thread(fake_log, [entry("after the view is gone")])


def test_double_click_on_a_traceback_row_shows_it(qtbot: QtBot, view: LogView, fake_log: FakeLog) -> None:
    log_from_thread(fake_log, [entry("boom", "ERROR", exc_text="Traceback…\nValueError: boom")])
    qtbot.waitUntil(lambda: view.proxy.rowCount() == 3)
    view.table.doubleClicked.emit(view.proxy.index(2, 3))
    assert view.details is not None and view.details.isVisible()
    view.details.close()


def test_real_engine_log_records_reach_the_view(qtbot: QtBot) -> None:
    setup_logging()
    try:
        logger = logging.getLogger("engine.test_log_view")
        logger.info("logged before the view")
        view = LogView()
        qtbot.addWidget(view)
        assert "logged before the view" in shown_messages(view)
        thread = threading.Thread(target=lambda: logger.info("real record %d", 42), name="test-logger")
        thread.start()
        thread.join()
        qtbot.waitUntil(lambda: "real record 42" in shown_messages(view))
        view.close()
    finally:
        reset_logging()


def test_a_failed_job_links_to_its_log_lines(qtbot: QtBot, tmp_path: Path) -> None:
    args = argparse.Namespace(
        command="demo", model="minilm", device="cpu", redis=None, no_cache=False, rows=300
    )
    window = create_window(args)
    qtbot.addWidget(window)
    window.show()
    failed: list[JobHandle] = []
    window.bridge.failed.connect(lambda handle, message: failed.append(handle))
    try:
        assert not window.log_view.isVisible()
        window.open_csv(tmp_path / "missing.csv")  # fails while reading: no model is loaded
        qtbot.waitUntil(lambda: bool(failed) and bool(window.findChildren(QMessageBox)))
        box = window.findChildren(QMessageBox)[-1]
        (show_log,) = [b for b in box.findChildren(QPushButton) if b.text() == "Show log"]
        show_log.click()
        del box, show_log
        # Let the box's deferred delete run while its window is still open (Qt crashes offscreen
        # deleting a dialog whose closed parent has dropped its backing store).
        qtbot.waitUntil(lambda: not window.findChildren(QMessageBox))
        assert window.log_view.isVisible()
        assert window.log_view.proxy.job_id == failed[0].job_id
        assert window.log_view.job_chip.text() == f"job {failed[0].job_id} ✕"
    finally:
        window.close()
