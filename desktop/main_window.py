"""The main window: the map on the left, attention for the clicked row on the right,
and a status bar with the cache state, job progress (rows/s, ETA) and a Cancel button.

All slots run on the GUI thread; work goes to the engine through :class:`EngineBridge`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QWidget,
)

from desktop.attention_view import AttentionView
from desktop.bridge import EngineBridge
from desktop.log_view import LogView
from desktop.map_view import MapView
from engine.datasets import Dataset, load_dataset
from engine.demo_data import build_stdlib_dataset
from engine.jobs import CancelToken, JobFn, JobHandle, Progress, Report
from engine.logs import log_context
from engine.pipeline import EmbeddingRun, Engine
from engine.projection import ProjectionParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedDataset:
    dataset: Dataset
    run: EmbeddingRun


@dataclass(frozen=True)
class Layout:
    method: str
    coords: npt.NDArray[np.float32]


class MainWindow(QMainWindow):
    """Loupe's window. ``map_ready`` fires with the method name each time a layout is shown."""

    map_ready = Signal(str)
    attention_ready = Signal(int)
    job_failed = Signal(str)

    def __init__(self, engine: Engine, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Loupe")
        self.resize(1400, 850)
        self.engine = engine
        self.bridge = bridge
        self.dataset: Dataset | None = None
        self.embedded: EmbeddingRun | None = None
        self._attention_job: JobHandle | None = None
        self._pipeline_jobs: set[int] = set()
        self.shown_method: str | None = None

        self.map_view = MapView()
        self.attention_view = AttentionView()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.map_view)
        splitter.addWidget(self.attention_view)
        splitter.setSizes([850, 550])
        self.setCentralWidget(splitter)

        self.log_view = LogView(self)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_view)
        self.log_view.hide()
        self.log_action = self.log_view.toggleViewAction()
        self.log_action.setShortcut(QKeySequence("Ctrl+L"))
        self.menuBar().addMenu("&View").addAction(self.log_action)

        self.status_label = QLabel("Ready")
        self.cache_label = QLabel()
        self._update_cache_label()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_jobs)
        status = self.statusBar()
        status.addWidget(self.status_label, 1)
        status.addPermanentWidget(self.cache_label)
        status.addPermanentWidget(self.progress_bar)
        status.addPermanentWidget(self.cancel_button)

        # The cache can go away and come back (a shared server restarting): keep the label true.
        self._cache_timer = QTimer(self)
        self._cache_timer.timeout.connect(self._update_cache_label)
        self._cache_timer.start(3000)

        self.map_view.row_clicked.connect(self._on_row_clicked)
        bridge.progress.connect(self._on_progress)
        bridge.finished.connect(self._on_finished)
        bridge.failed.connect(self._on_failed)
        bridge.cancelled.connect(self._on_cancelled)

    def _update_cache_label(self) -> None:
        """Cache state and this session's hit rate; the tooltip has every counter (no I/O here)."""
        cache = self.engine.cache
        rate = cache.stats.hit_rate
        hits = f" · {rate:.0%} hits" if rate is not None else ""
        self.cache_label.setText(f"Cache: {cache.description}{hits}")
        self.cache_label.setToolTip(f"This session: {cache.stats.summary()}")

    # -- the demo pipeline: dataset → embeddings → PCA preview → UMAP -----------------

    def start_demo(self, rows: int = 4000) -> None:
        """Build the demo dataset and embed it on the model lane; the map follows."""
        self.start_dataset(lambda: build_stdlib_dataset(max_rows=rows), "the demo dataset")

    def open_path(self, path: Path) -> None:
        """Load a dataset in any supported format (text and label columns guessed) and map it."""
        self.start_dataset(lambda: load_dataset(path), path.name)

    open_csv = open_path  # the name the first versions used

    def start_dataset(self, load: Callable[[], Dataset], name: str) -> None:
        """Load a dataset and embed it on the model lane; PCA then UMAP follow on the compute lane."""
        engine = self.engine

        def embed(*, token: CancelToken, report: Report) -> EmbeddedDataset:
            report(0, 1, f"Reading {name}")
            dataset = load()
            with log_context(dataset=dataset.fingerprint):
                return EmbeddedDataset(dataset, engine.embeddings(dataset.texts, token=token, report=report))

        # Newest dataset wins: whatever was still running for the previous one is dropped.
        for handle in self.bridge.running:
            if handle.job_id in self._pipeline_jobs:
                handle.cancel()
        self._pipeline_jobs.clear()
        self.setWindowTitle(f"Loupe — {name}")
        self._start_pipeline_job("model", f"Embedding {name}", embed)

    def _start_projection(self, method: str) -> None:
        assert self.embedded is not None
        run, engine = self.embedded, self.engine
        params = ProjectionParams(method="pca" if method == "pca" else "umap")

        def project(*, token: CancelToken, report: Report) -> Layout:
            coords = engine.projection(run.vectors, params, input_id=run.input_id, token=token, report=report)
            return Layout(method, coords)

        self._start_pipeline_job("compute", f"{method.upper()} layout", project)

    def _start_pipeline_job(self, lane: str, name: str, fn: JobFn) -> None:
        handle = self.bridge.submit(lane, name, fn)
        self._pipeline_jobs.add(handle.job_id)
        self.status_label.setText(f"{name}…")
        self.progress_bar.setRange(0, 0)  # busy until the first progress report
        self.progress_bar.setVisible(True)
        self.cancel_button.setVisible(True)

    def cancel_jobs(self) -> None:
        self.bridge.cancel_all()
        self.status_label.setText("Cancelling…")

    # -- engine events (GUI thread) ---------------------------------------------------

    def _on_progress(self, handle: JobHandle, progress: Progress) -> None:
        if handle.job_id not in self._pipeline_jobs:
            return
        if progress.total <= 1:  # one uninterrupted step (a UMAP fit): a busy bar, no count
            self.progress_bar.setRange(0, 0)
            self.status_label.setText(f"{progress.message}…")
            return
        self.progress_bar.setRange(0, progress.total)
        self.progress_bar.setValue(progress.done)
        rate = f" · {progress.rate:.0f} rows/s" if progress.rate else ""
        eta = f" · ETA {progress.eta_s:.0f} s" if progress.eta_s is not None else ""
        self.status_label.setText(f"{progress.message}: {progress.done}/{progress.total}{rate}{eta}")

    def _on_finished(self, handle: JobHandle, result: object) -> None:
        if handle.job_id not in self._pipeline_jobs and handle is not self._attention_job:
            return  # superseded: a newer dataset or click has taken its place
        if isinstance(result, EmbeddedDataset):
            self._pipeline_jobs.discard(handle.job_id)
            self.dataset, self.embedded = result.dataset, result.run
            run = result.run
            self.status_label.setText(
                f"{len(result.dataset)} rows embedded ({run.computed} computed, {run.from_cache} from cache)"
            )
            self._start_projection("pca")
            self._start_projection("umap")
        elif isinstance(result, Layout):
            self._pipeline_jobs.discard(handle.job_id)
            self._show_layout(result)
        elif handle is self._attention_job:
            self._show_attention(result)
        self._update_busy()
        self._update_cache_label()

    def _show_layout(self, layout: Layout) -> None:
        assert self.dataset is not None
        if layout.method == "pca" and self.shown_method == "umap":
            return  # a cached UMAP can arrive first; never replace it with the preview
        self.shown_method = layout.method
        title = "UMAP" if layout.method == "umap" else "PCA preview (UMAP layout on its way)"
        self.map_view.set_points(layout.coords, self.dataset.labels, self.dataset.texts, title)
        self.status_label.setText(f"{title}: {len(self.dataset)} rows. Hover for text, click for attention.")
        self.map_ready.emit(layout.method)

    def _on_failed(self, handle: JobHandle, message: str) -> None:
        self._pipeline_jobs.discard(handle.job_id)
        self._update_busy()
        self.status_label.setText(f"Failed: {message}")
        self.job_failed.emit(message)
        if self.isVisible():
            # Window-modal and opened, not exec'd: the event loop (and every other job) keeps going.
            box = QMessageBox(QMessageBox.Icon.Warning, "Loupe", message, QMessageBox.StandardButton.Ok, self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            show_log = box.addButton("Show log", QMessageBox.ButtonRole.ActionRole)
            show_log.clicked.connect(lambda: self.show_job_log(handle.job_id))
            box.open()

    def show_job_log(self, job_id: int) -> None:
        """Open the log dock on the lines of one job (the failed job's "Show log")."""
        self.log_view.show_job(job_id)
        self.log_view.show()
        self.log_view.raise_()

    def _on_cancelled(self, handle: JobHandle) -> None:
        self._pipeline_jobs.discard(handle.job_id)
        self._update_busy()
        self.status_label.setText(f"Cancelled: {handle.name}")

    def _update_busy(self) -> None:
        busy = bool(self._pipeline_jobs)
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)

    # -- attention for the clicked row -------------------------------------------------

    def _on_row_clicked(self, row: int) -> None:
        if self.dataset is None:
            return
        text, engine = self.dataset.texts[row], self.engine
        if self._attention_job is not None:
            self._attention_job.cancel()  # newest request wins
        self.attention_view.title.setText(f"Row {row}: computing attention…")

        def attention(*, token: CancelToken, report: Report) -> tuple[int, object]:
            return row, engine.attention(text)

        self._attention_job = self.bridge.submit("interactive", f"attention for row {row}", attention)

    def _show_attention(self, result: object) -> None:
        assert self.dataset is not None and isinstance(result, tuple)
        row, maps = result
        label = self.dataset.labels[row]
        source = self.dataset.sources[row] if self.dataset.sources else ""
        self.attention_view.set_maps(maps, f"Row {row} · {label} · {source}\n{self.dataset.texts[row][:300]}")
        self.map_view.show_selected(row)
        self.attention_ready.emit(row)

    # -- shutdown ----------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Cancel running jobs and wait for the worker threads; finished work is already cached."""
        self.hide()
        self._cache_timer.stop()
        self.bridge.shutdown()
        self.engine.cache.close()
        super().closeEvent(event)
