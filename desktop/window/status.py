"""The window's status bar: a line of what is happening, the cache's state, job progress (rows/s,
ETA) and a Cancel button (Escape).

It follows the operations (started, progress, failed, cancelled) and the application model
(a map shown, its scores, a filter) and says each in one line; it changes nothing itself
but Cancel. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from desktop.model.document import AppModel, RowFilter, ShownMap
from desktop.operations.operation import Operations
from desktop.panels.jobs_view import show_progress
from engine.api.types import MapScores
from engine.cache.store import Cache
from engine.runtime.jobs import Progress

_CACHE_REFRESH_MS = 3000


class StatusLine(QObject):
    """The status bar's widgets and what they say."""

    def __init__(self, bar: QStatusBar, operations: Operations, cache: Callable[[], Cache]) -> None:
        super().__init__(bar)
        self._cache = cache
        self.label = QLabel("Ready")
        self.cache_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(operations.cancel_all)
        self.cancel_button.clicked.connect(lambda: self.say("Cancelling…"))
        bar.addWidget(self.label, 1)
        bar.addPermanentWidget(self.cache_label)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.cancel_button)
        self.update_cache()
        # The cache can go away and come back (a shared server restarting): keep the label true.
        self.cache_timer = QTimer(self)
        self.cache_timer.timeout.connect(self.update_cache)
        self.cache_timer.start(_CACHE_REFRESH_MS)
        operations.started.connect(self._on_started)
        operations.busy_changed.connect(self._on_busy)
        operations.progress.connect(self._on_progress)
        operations.failed.connect(lambda _handle, message: self.say(f"Failed: {message}"))
        operations.cancelled.connect(lambda name: self.say(f"Cancelled: {name}"))
        operations.done.connect(lambda _name: self.update_cache())

    def say(self, text: str) -> None:
        self.label.setText(text)

    def follow(self, model: AppModel, title: Callable[[], str]) -> None:
        """Say what the model shows: a new map (``title()``, the map's as drawn), its scores, a filter."""

        def on_map(shown: ShownMap | None) -> None:
            if shown is not None:
                self.say(f"{title()}: {len(shown.coords):,} rows. Hover for text, click for attention.")

        def on_scores(scores: MapScores | None) -> None:
            if scores is not None:
                self.say(
                    f"{title()}: {len(scores.labels):,} rows, trustworthiness {scores.trustworthiness:.3f}."
                    " Click a point for attention and neighbours."
                )

        def on_filter(row_filter: RowFilter | None) -> None:
            if row_filter is not None:
                self.say(
                    f"Filter {row_filter.description}: {len(row_filter.rows):,} of {model.rows:,} rows shown."
                )

        model.map_changed.connect(on_map)
        model.scores_changed.connect(on_scores)
        model.filter_changed.connect(on_filter)

    def update_cache(self) -> None:
        """Cache state and this session's hit rate; the tooltip has every counter (no I/O here)."""
        cache = self._cache()
        rate = cache.stats.hit_rate
        hits = f" · {rate:.0%} hits" if rate is not None else ""
        self.cache_label.setText(f"Cache: {cache.description}{hits}")
        self.cache_label.setToolTip(f"This session: {cache.stats.summary()}")

    def _on_started(self, name: str) -> None:
        self.say(f"{name}…")
        self.progress_bar.setRange(0, 0)  # busy until the first progress report

    def _on_busy(self, busy: bool) -> None:
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)

    def _on_progress(self, _name: str, progress: Progress) -> None:
        self.say(show_progress(self.progress_bar, progress))
