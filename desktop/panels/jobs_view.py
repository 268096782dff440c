"""The jobs panel: every running job with its progress bar, rate, ETA and its own Cancel.

Rows appear when a job is submitted and go when it ends; a failure is reported once, by the
window, with "Show log" for details, so this panel never repeats it.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDockWidget,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.operations.bridge import EngineBridge
from engine.runtime.jobs import JobHandle, Progress


class _JobRow:
    def __init__(self, handle: JobHandle, lane: str) -> None:
        self.name = QLabel(f"{handle.name}  ({lane})")
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until the first report
        self.detail = QLabel("waiting")
        # Wrapped, and the progress line under the rest (see JobsView._add): on one line with
        # it, a long name and "Placing rows 2165/3926 · 204/s · ETA 9 s" made the dock 692 px
        # wide at least, and the window grew past the screen (2,150 px from 1,500) when the
        # panel was opened during a progressive map.
        for label in (self.name, self.detail):
            label.setWordWrap(True)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(handle.cancel)
        self.cancel.clicked.connect(lambda: self.detail.setText("cancelling…"))

    def widgets(self) -> tuple[QWidget, ...]:
        return self.name, self.bar, self.cancel, self.detail

    def update(self, progress: Progress) -> None:
        self.detail.setText(show_progress(self.bar, progress))


def show_progress(bar: QProgressBar, progress: Progress) -> str:
    """Set ``bar`` from ``progress`` and return its line: count, rate and ETA.

    A single uninterrupted step (a UMAP fit) has no count: the bar turns busy instead. A message
    that already states the count (a cluster job's, with the cluster's own rate and ETA) is shown
    as it is.
    """
    if progress.total <= 1:
        bar.setRange(0, 0)
        return f"{progress.message}…"
    bar.setRange(0, progress.total)
    bar.setValue(progress.done)
    if f"{progress.done:,}/{progress.total:,}" in progress.message:
        return progress.message  # it says its own count, rate and ETA (a cluster job's line)
    # Thousands separated, as the status bar's own lines ("Placing rows: 2,162/3,926") are.
    rate = f" · {progress.rate:,.0f}/s" if progress.rate else ""
    eta = f" · ETA {progress.eta_s:,.0f} s" if progress.eta_s is not None else ""
    return f"{progress.message} {progress.done:,}/{progress.total:,}{rate}{eta}"


class JobsView(QDockWidget):
    """A dock listing the bridge's running jobs (View ▸ Jobs, Ctrl+J)."""

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__("Jobs", parent)
        self.setObjectName("jobs")
        self.rows: dict[int, _JobRow] = {}
        body = QWidget()
        self._grid = QGridLayout()
        self.empty = QLabel("No jobs are running.")
        layout = QVBoxLayout(body)
        layout.addWidget(self.empty)
        layout.addLayout(self._grid)
        layout.addStretch(1)
        self.setWidget(body)
        bridge.submitted.connect(self._add)
        bridge.progress.connect(self._progress)
        for signal in (bridge.finished, bridge.failed):
            signal.connect(lambda handle, _result: self._remove(handle))
        bridge.cancelled.connect(self._remove)

    def _add(self, handle: JobHandle, lane: str) -> None:
        row = _JobRow(handle, lane)
        line = self._grid.rowCount()
        for column, widget in enumerate((row.name, row.bar, row.cancel)):
            self._grid.addWidget(widget, line, column)
        self._grid.addWidget(row.detail, line + 1, 0, 1, 3)  # its own line: see _JobRow
        self.rows[handle.job_id] = row
        self.empty.setVisible(False)

    def _progress(self, handle: JobHandle, progress: Progress) -> None:
        row = self.rows.get(handle.job_id)
        if row is not None:
            row.update(progress)

    def _remove(self, handle: JobHandle) -> None:
        row = self.rows.pop(handle.job_id, None)
        if row is not None:
            for widget in row.widgets():
                self._grid.removeWidget(widget)
                widget.deleteLater()
        self.empty.setVisible(not self.rows)
