"""The main window: the map on the left, attention for the clicked row on the right,
and a status bar with the cache state, job progress (rows/s, ETA) and a Cancel button.

All slots run on the GUI thread; work goes to the engine through :class:`EngineBridge`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast, get_args

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QByteArray, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.attention.stats_view import AttentionStatsView
from desktop.attention.view import AttentionView
from desktop.map.colours import CodedCategories
from desktop.map.controls import NO_COLOURING, MapControls
from desktop.map.filter_bar import FilterBar
from desktop.map.sweep_view import SweepDialog
from desktop.map.view import MapView
from desktop.operations.bridge import EngineBridge
from desktop.panels.bookmarks_view import BookmarksView
from desktop.panels.jobs_view import JobsView, show_progress
from desktop.panels.log_view import LogView
from desktop.panels.neighbours_view import NeighboursView
from desktop.panels.table_view import TableView
from desktop.window.export import (
    choose_export,
    export_data,
    export_map,
    window_provenance,
    window_snapshot,
    wrote,
)
from desktop.window.layout_store import load_layout, save_layout
from desktop.window.menus import build_menus, shortcuts, show_shortcuts
from engine.core.engine import Clustering, EmbeddingRun
from engine.data.column_codes import as_numbers, is_numeric, text_codes, value_codes
from engine.data.datasets import Dataset, load_dataset
from engine.data.row_filter import is_numeric_column
from engine.errors import BadInputError, LoupeError
from engine.logs.records import log_context
from engine.maps.projection import PARAMETERS, ProjectionParams
from engine.maps.sweep import SweepCell, SweepResult
from engine.model.attention_stats import AttentionStatistics
from engine.model.models import Pooling
from engine.process.proxy import AnyEngine
from engine.runtime.jobs import CancelToken, JobFn, JobHandle, Progress, Report
from engine.user.session import SUFFIX as SESSION_SUFFIX
from engine.user.settings import load_settings, save_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedDataset:
    dataset: Dataset
    run: EmbeddingRun
    labels: CodedCategories  # the labels numbered on the job's thread, for the map's colours


@dataclass(frozen=True)
class Layout:
    method: str
    coords: npt.NDArray[np.float32]
    params: ProjectionParams | None = None  # None for the PCA preview


@dataclass(frozen=True)
class MapScores:
    """What the window shows about a map: its clusters and its trustworthiness."""

    coords: npt.NDArray[np.float32]
    clustering: Clustering
    trustworthiness: float
    centres: list[tuple[float, float, str]]  # where the cluster names go on this map


@dataclass(frozen=True)
class LayerMaps:
    maps: list[npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Faithfulness:
    coords: npt.NDArray[np.float32]
    values: npt.NDArray[np.float32]


@dataclass(frozen=True)
class GroupStatistics:
    rows: list[int]
    statistics: AttentionStatistics


@dataclass(frozen=True)
class Neighbours:
    row: int
    indices: npt.NDArray[np.intp]
    distances: npt.NDArray[np.float32]


def default_size(available: QSize) -> QSize:
    """The window's first size: 1400 x 850, or less on a screen that has less room (a 1366 x 768
    laptop), so that a new window never opens larger than its screen."""
    return QSize(min(1400, available.width()), min(850, available.height()))


class MainWindow(QMainWindow):
    """Loupe's window. ``map_ready`` fires with the method name each time a layout is shown."""

    map_ready = Signal(str)
    attention_ready = Signal(int)
    job_failed = Signal(str)

    def __init__(self, engine: AnyEngine, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Loupe")
        self.resize(default_size(self.screen().availableGeometry().size()))
        self.engine = engine
        self.bridge = bridge
        self.dataset: Dataset | None = None
        self.dataset_path: Path | None = None  # the file or folder opened; None for the demo
        self.demo_rows: int | None = None  # the demo's size when the demo is open
        self.dataset_columns: tuple[str | None, str | None] = (None, None)  # asked for; None: guessed
        self.layer = -1  # the hidden state the map is made of (-1: the last layer)
        self.pooling: str | None = None  # None: the model's own pooling
        self.embedded: EmbeddingRun | None = None
        self._coded_labels: tuple[Dataset, CodedCategories] | None = None  # see _labels
        self._attention_job: JobHandle | None = None
        self._pipeline_jobs: set[int] = set()
        self._side_jobs: set[int] = set()  # quick jobs shown without progress (neighbours)
        self.shown_method: str | None = None
        self.coords: npt.NDArray[np.float32] | None = None  # the main map, in dataset order
        self.scores: MapScores | None = None
        self.shown_params: ProjectionParams | None = None
        self.faithfulness: Faithfulness | None = None
        self.layer_maps: list[npt.NDArray[np.float32]] = []
        self.sweep_dialog: SweepDialog | None = None

        self.map_view = MapView()
        self.map_controls = MapControls()
        self.filter_bar = FilterBar()
        self.attention_view = AttentionView()
        self.group_view = AttentionStatsView()
        self._group_job: JobHandle | None = None
        self.neighbours_view = NeighboursView()
        self.table_view = TableView()
        map_panel = QWidget()
        map_layout = QVBoxLayout(map_panel)
        map_layout.setContentsMargins(0, 0, 0, 0)
        map_layout.addWidget(self.map_controls)
        map_layout.addWidget(self.filter_bar)
        map_layout.addWidget(self.map_view, 1)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(map_panel)
        left.addWidget(self.table_view)
        left.setSizes([620, 230])
        self.attention_tabs = QTabWidget()
        self.attention_tabs.addTab(self.attention_view, "Attention of the row")
        self.attention_tabs.addTab(self.group_view, "Attention of the selection")
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.attention_tabs)
        right.addWidget(self.neighbours_view)
        right.setSizes([600, 220])
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([900, 500])  # the map first; the attention pane needs about 470
        self.setCentralWidget(splitter)

        self.log_view = LogView(self)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_view)
        self.log_view.hide()
        self.jobs_view = JobsView(bridge, self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.jobs_view)
        self.jobs_view.hide()
        self.bookmarks_view = BookmarksView(self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.bookmarks_view)
        self.bookmarks_view.hide()
        self.bookmarks_view.row_chosen.connect(self.map_view.click_row)
        self.open_action: QAction
        self.recent_menu: QMenu
        built = build_menus(self)
        self.menus, self.open_action, self.recent_menu = built.menus, built.open_action, built.recent_menu
        self.setAcceptDrops(True)  # drop a dataset file or folder on the window to open it
        self._restore_layout()

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
        self.neighbours_view.row_chosen.connect(self.map_view.click_row)
        self.table_view.selection_changed.connect(self._on_table_selection)
        self.table_view.matches_changed.connect(self.map_view.set_matches)
        self.map_controls.params_applied.connect(self.apply_params)
        self.map_controls.colouring_changed.connect(self._recolour)
        self.map_controls.layers_requested.connect(self.start_layer_maps)
        self.map_controls.layer_changed.connect(self.show_layer)
        self.map_controls.sweep_requested.connect(self.open_sweep)
        self.map_controls.size_changed.connect(lambda _: self._apply_point_options())
        self.map_controls.density_toggled.connect(lambda _: self._apply_point_options())
        self.map_controls.tool_changed.connect(self.map_view.set_tool)
        self.map_view.rows_selected.connect(self._on_map_selection)
        self.filter_bar.filter_changed.connect(self._on_filter)
        for view in (self.attention_view, self.group_view):
            view.provenance_source = self._provenance
            view.exported.connect(lambda paths: self.status_label.setText(wrote(paths)))
            view.export_failed.connect(lambda message: self.status_label.setText(f"Export failed: {message}"))
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
        engine = self.engine  # built where the engine runs: parsing the stdlib holds the interpreter
        self.start_dataset(lambda: engine.demo_dataset(rows), "the demo dataset")
        self.dataset_path, self.demo_rows, self.dataset_columns = None, rows, (None, None)

    def open_path(
        self, path: Path, *, text_column: str | None = None, label_column: str | None = None
    ) -> None:
        """Load a dataset in any supported format and map it; a session file (``*.loupe.json``)
        reopens the dataset, map, view and selection it saved. The text and label columns are
        guessed unless named (``loupe open --text-column/--label-column``, Dataset ▸ Columns…)."""
        if path.name.endswith(SESSION_SUFFIX):
            from desktop.window.sessions import open_session

            open_session(self, path)
            return
        if path.exists():
            settings = load_settings()
            save_settings(settings.with_recent(str(path.resolve())))
        self.dataset_columns = (text_column, label_column)
        self.start_dataset(
            lambda: load_dataset(
                path, text_column=text_column, label_column=label_column, check_in_child=True
            ),
            path.name,
        )
        self.dataset_path, self.demo_rows = path.resolve(), None

    def choose_columns(self) -> None:
        """Dataset ▸ Columns… (Ctrl+Shift+C): read the open file again with other text and label columns."""
        from desktop.window.columns_dialog import choose_columns

        choose_columns(self)

    def configure_engine(self, model: str, device: str, pooling: str | None, layer: int) -> None:
        """Use another model, device, pooling or layer: a new engine on the same cache, and the
        open dataset embedded and mapped again (rows already in the cache come back at once)."""
        engine = self.engine
        same = (engine.model_name, engine.device, self.pooling, self.layer) == (model, device, pooling, layer)
        if same:
            return
        for handle in self.bridge.running:
            handle.cancel()  # their results belong to the old engine
        self._pipeline_jobs.clear()
        self.engine = engine.reconfigured(model, device, _pooling(pooling))
        self.layer, self.pooling = layer, pooling
        if self.dataset is not None:
            dataset = self.dataset
            self.start_dataset(lambda: dataset, self.windowTitle().removeprefix("Loupe — "))

    def select_rows(self, rows: Sequence[int]) -> None:
        """The shared selection: ringed on the map and selected in the table."""
        chosen = [int(row) for row in rows]
        self.map_view.set_selection(chosen)
        self.table_view.select_rows(chosen)

    def choose_open_session(self) -> None:
        from desktop.window.sessions import choose_open_session

        choose_open_session(self)

    def choose_save_session(self) -> None:
        """File ▸ Save session… (Ctrl+S): the dataset, model, map, view, selection and bookmarks."""
        from desktop.window.sessions import choose_save_session

        saved = choose_save_session(self)  # a failure is already in the status bar
        if saved is not None:
            self.status_label.setText(f"Saved the session to {saved}")

    def open_settings(self) -> None:
        """File ▸ Settings… (Ctrl+,): model, device, pooling, layer, cache, projection defaults, theme."""
        from desktop.window.settings_dialog import SettingsDialog, apply_settings

        old = load_settings()
        dialog = SettingsDialog(old, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(
            lambda: self.status_label.setText(
                " ".join(
                    apply_settings(
                        old,
                        dialog.result_settings(),
                        reconfigure=self.configure_engine,
                        use_projection=self.map_controls.set_params,
                    )
                )
            )
        )
        dialog.open()  # window-modal, not exec'd: jobs keep reporting while it is open

    def choose_file(self) -> None:
        """File ▸ Open… (Ctrl+O): a file dialog over the supported formats."""
        chosen, _ = QFileDialog.getOpenFileName(
            self,
            "Open a dataset",
            "",
            "Datasets and sessions (*.csv *.tsv *.tab *.json *.jsonl *.ndjson *.parquet *.arrow *.txt);;"
            "All files (*)",
        )
        if chosen:
            self.open_path(Path(chosen))

    def fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = load_settings().recent_files
        for entry in recent:
            self.recent_menu.addAction(entry, lambda path=entry: self.open_path(Path(path)))
        if not recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt's name)
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    open_csv = open_path  # the name the first versions used

    def start_dataset(self, load: Callable[[], Dataset], name: str) -> None:
        """Load a dataset and embed it on the model lane; PCA then UMAP follow on the compute lane."""
        engine, layer = self.engine, self.layer

        def embed(*, token: CancelToken, report: Report) -> EmbeddedDataset:
            report(0, 1, f"Reading {name}")
            dataset = load()
            with log_context(dataset=dataset.fingerprint):
                run = engine.dataset_embeddings(dataset, layer=layer, token=token, report=report)
                return EmbeddedDataset(dataset, run, CodedCategories(*value_codes(dataset.labels)))

        # Newest dataset wins: whatever was still running for the previous one is dropped.
        for handle in self.bridge.running:
            if handle.job_id in self._pipeline_jobs:
                handle.cancel()
        self._pipeline_jobs.clear()
        self.setWindowTitle(f"Loupe — {name}")
        self._start_pipeline_job("model", f"Embedding {name}", embed)

    def _start_projection(self, params: ProjectionParams, *, preview: bool = False) -> None:
        """Compute (or fetch) a map on the compute lane; a preview never replaces a real map."""
        assert self.embedded is not None
        run, engine = self.embedded, self.engine

        def project(*, token: CancelToken, report: Report) -> Layout:
            coords = engine.projection(run.vectors, params, input_id=run.input_id, token=token, report=report)
            return Layout(params.method, coords, None if preview else params)

        self._start_pipeline_job("compute", f"{params.method.upper()} layout", project)

    def apply_params(self, params: ProjectionParams) -> None:
        """The map controls' Apply: the main map with these settings."""
        if self.embedded is None:
            self.map_controls.error.setText("Open a dataset first.")
            return
        self._start_projection(params)

    def _start_pipeline_job(self, lane: str, name: str, fn: JobFn) -> JobHandle:
        handle = self.bridge.submit(lane, name, fn)
        self._pipeline_jobs.add(handle.job_id)
        self.status_label.setText(f"{name}…")
        self.progress_bar.setRange(0, 0)  # busy until the first progress report
        self.progress_bar.setVisible(True)
        self.cancel_button.setVisible(True)
        return handle

    def _start_side_job(self, name: str, fn: JobFn) -> None:
        """A quick job whose result is shown without the status bar's progress and Cancel."""
        self._side_jobs.add(self.bridge.submit("interactive", name, fn).job_id)

    def cancel_jobs(self) -> None:
        self.bridge.cancel_all()
        self.status_label.setText("Cancelling…")

    # -- engine events (GUI thread) ---------------------------------------------------

    def _on_progress(self, handle: JobHandle, progress: Progress) -> None:
        if handle.job_id in self._pipeline_jobs:
            self.status_label.setText(show_progress(self.progress_bar, progress))

    def _on_finished(self, handle: JobHandle, result: object) -> None:
        side = handle.job_id in self._side_jobs
        self._side_jobs.discard(handle.job_id)
        current = (self._attention_job, self._group_job)
        if handle.job_id not in self._pipeline_jobs and handle not in current and not side:
            return  # superseded: a newer dataset or click has taken its place
        if isinstance(result, EmbeddedDataset):
            self._pipeline_jobs.discard(handle.job_id)
            self.dataset, self.embedded = result.dataset, result.run
            self._coded_labels = (result.dataset, result.labels)
            run = result.run
            self.status_label.setText(
                f"{len(result.dataset)} rows embedded ({run.computed} computed, {run.from_cache} from cache)"
            )
            self.layer_maps = []
            self.map_controls.layer.setEnabled(False)
            self.table_view.set_dataset(result.dataset)
            columns = result.dataset.columns
            numeric = [name for name, values in columns.items() if is_numeric_column(values)]
            self.map_controls.set_columns(list(columns), numeric, labels=result.dataset.has_labels)
            self.filter_bar.set_dataset(result.dataset)
            self._start_projection(ProjectionParams(method="pca"), preview=True)
            self._start_projection(self._params())
        elif isinstance(result, Layout):
            self._pipeline_jobs.discard(handle.job_id)
            self._show_layout(result)
        elif isinstance(result, MapScores | Faithfulness | LayerMaps | SweepResult | Neighbours):
            self._pipeline_jobs.discard(handle.job_id)
            self._show_analysis(result)
        elif isinstance(result, GroupStatistics) and handle is self._group_job:
            self._pipeline_jobs.discard(handle.job_id)
            self._group_job = None
            stats = result.statistics
            sampled = f" (a sample of {stats.rows} of {stats.requested})" if stats.sampled else ""
            self.group_view.set_statistics(stats, f"{len(result.rows):,} selected rows{sampled}")
            self.status_label.setText(f"Attention statistics of {len(result.rows):,} rows{sampled} ready.")
        elif handle is self._attention_job:
            self._show_attention(result)
        self._update_busy()
        self._update_cache_label()

    def _labels(self) -> CodedCategories:
        """The dataset's labels, numbered: on the embedding job's thread when it came from there
        (numbering 200,000 labels costs the GUI thread ~12 ms), else now."""
        assert self.dataset is not None
        if self._coded_labels is None or self._coded_labels[0] is not self.dataset:
            self._coded_labels = (self.dataset, CodedCategories(*value_codes(self.dataset.labels)))
        return self._coded_labels[1]

    def _params(self) -> ProjectionParams:
        try:
            return self.map_controls.params()
        except LoupeError:
            return ProjectionParams()

    def _show_layout(self, layout: Layout) -> None:
        assert self.dataset is not None
        preview = layout.params is None
        if preview and self.coords is not None and self.shown_method != "pca-preview":
            return  # the real map can arrive first (cached); never replace it with the preview
        self.shown_method = "pca-preview" if preview else layout.method
        if preview:
            title = "PCA preview (the map is on its way)"
        else:
            assert layout.params is not None
            title = _describe(layout.params)
        self.coords = layout.coords
        self.shown_params = layout.params
        self.scores = self.faithfulness = None
        self.map_view.set_points(layout.coords, self._labels(), self.dataset.texts, title)
        if self.map_controls.colouring.currentData() == NO_COLOURING:
            self._recolour(NO_COLOURING)  # no legend entry for the labels the rows do not have
        self._apply_point_options()
        self.status_label.setText(f"{title}: {len(self.dataset)} rows. Hover for text, click for attention.")
        self.map_ready.emit(layout.method)
        if not preview:
            self.map_controls.set_score("")
            self._start_scores()

    # -- analysis of the shown map: clusters, trustworthiness, faithfulness -----------------

    def _start_scores(self) -> None:
        assert self.dataset is not None and self.embedded is not None and self.coords is not None
        coords, vectors, texts, engine = self.coords, self.embedded.vectors, self.dataset.texts, self.engine

        def score(*, token: CancelToken, report: Report) -> MapScores:
            report(0, 1, "Clustering the map")
            clustering = engine.clusters(coords, texts, token=token)
            trust = engine.trustworthiness(vectors, coords, token=token)
            return MapScores(coords, clustering, trust, clustering.centres(coords))

        self._start_pipeline_job("compute", "Clusters and trustworthiness", score)

    def _start_faithfulness(self) -> None:
        assert self.embedded is not None and self.coords is not None
        coords, run, engine = self.coords, self.embedded, self.engine

        def faith(*, token: CancelToken, report: Report) -> Faithfulness:
            values = engine.faithfulness(
                run.vectors, coords, input_id=run.input_id, token=token, report=report
            )
            return Faithfulness(coords, values)

        self._start_pipeline_job("compute", "Faithfulness", faith)

    def _recolour(self, colouring: str | None = None) -> None:
        """Colour the shown map by label, nothing, cluster, faithfulness (computing it if needed)
        or a column."""
        if self.dataset is None or self.coords is None:
            return
        colouring = colouring or str(self.map_controls.colouring.currentData())
        if colouring == "label":
            self.map_view.set_categories(self._labels())
            self.map_view.set_annotations([])
        elif colouring == NO_COLOURING:
            one = CodedCategories([""], np.zeros(len(self.dataset), np.intp))
            self.map_view.set_categories(one, legend=False)
            self.map_view.set_annotations([])
        elif colouring == "cluster":
            if self.scores is None or self.scores.coords is not self.coords:
                return  # the scores job is on its way and recolours when it lands
            clustering = self.scores.clustering
            # The cluster numbers are the categories already (-1, noise, first): no text to number.
            highest = int(clustering.labels.max(initial=-1))
            names = [clustering.names.get(c, "noise") for c in range(-1, highest + 1)]
            coded = CodedCategories(names, clustering.labels + 1)
            self.map_view.set_categories(coded, muted="noise", legend=False)  # names are on the map
            shown = self.map_view.coords  # a layer map may be on show instead of the scored one
            same = shown is self.scores.coords or np.array_equal(shown, self.scores.coords)
            self.map_view.set_annotations(self.scores.centres if same else clustering.centres(shown))
        elif colouring == "faithfulness":
            if self.faithfulness is None or self.faithfulness.coords is not self.coords:
                self._start_faithfulness()
                return
            self.map_view.set_values(self.faithfulness.values, "faithfulness")
            self.map_view.set_annotations([])
        elif colouring.startswith("column:"):
            self._colour_by_column(colouring.removeprefix("column:"))

    def _colour_by_column(self, name: str) -> None:
        """Numbers as a colour scale; anything else as categories (the 16 most common named)."""
        assert self.dataset is not None
        values = self.dataset.columns[name]
        # Whole-column questions in Arrow or numpy: a loop per row took 45 ms at 200,000 rows.
        if is_numeric(values):
            self.map_view.set_values(as_numbers(values), name)
        else:
            # As text (a missing value is "", "(no label)"), numbered once: not again by the map.
            self.map_view.set_categories(CodedCategories(*text_codes(values)))
        self.map_view.set_annotations([])

    def _show_analysis(self, result: object) -> None:
        if isinstance(result, MapScores) and result.coords is self.coords:
            self.scores = result
            count = len(result.clustering.names)
            self.map_controls.set_score(f"trustworthiness {result.trustworthiness:.3f} · {count} clusters")
            self.status_label.setText(
                f"{self.map_view.plot.titleLabel.text}: {len(result.coords)} rows,"
                f" trustworthiness {result.trustworthiness:.3f}. Click a point for attention and neighbours."
            )
            self._recolour()
        elif isinstance(result, Faithfulness) and result.coords is self.coords:
            self.faithfulness = result
            self._recolour()
        elif isinstance(result, LayerMaps):
            self.layer_maps = result.maps
            self.map_controls.set_layer_count(len(result.maps) - 1)
            self.status_label.setText(f"{len(result.maps)} layer maps ready: move the slider to see each.")
        elif isinstance(result, SweepResult) and self.sweep_dialog is not None and self.dataset is not None:
            self.sweep_dialog.show_result(result, self.dataset.labels)
        elif isinstance(result, Neighbours) and self.dataset is not None:
            self.neighbours_view.set_neighbours(
                result.row, result.indices, result.distances, self.dataset.texts, self.dataset.labels
            )

    # -- filter, size, density and selection on the map ------------------------------------

    def _apply_point_options(self) -> None:
        """What the map controls and the filter bar ask of the points (after every new map)."""
        if self.dataset is None or self.coords is None:
            return
        self.map_view.set_visible_rows(self.filter_bar.rows)
        column = str(self.map_controls.size_by.currentData() or "")
        values = self.dataset.columns.get(column) if column else None
        sizes = None if values is None else as_numbers(values)
        self.map_view.set_sizes(sizes, column)
        self.map_view.set_density(self.map_controls.density.isChecked())

    def _on_filter(self, rows: npt.NDArray[np.intp] | None) -> None:
        self.table_view.set_visible_rows(rows)
        self._apply_point_options()
        described = self.filter_bar.description
        if described is not None and self.dataset is not None:
            shown = 0 if rows is None else len(rows)
            self.status_label.setText(f"Filter {described}: {shown:,} of {len(self.dataset):,} rows shown.")

    def _on_map_selection(self, rows: npt.NDArray[np.intp]) -> None:
        """A box or lasso on the map: the group is selected in the table too; one row acts as a click."""
        self.table_view.select_rows(rows)
        if len(rows) == 1:
            self._on_row_clicked(int(rows[0]), from_table=True)
        elif len(rows) > 1:
            self.start_group_statistics()

    def start_group_statistics(self) -> None:
        """Attention statistics (entropy, to special tokens, to the previous token) per layer
        and head for the selected rows (Ctrl+G; a box or lasso starts it by itself)."""
        rows = self.map_view.selected_rows
        if self.dataset is None or len(rows) < 2:
            self.status_label.setText("Select a group of rows first: box (B) or lasso (L) on the map.")
            return
        dataset, engine = self.dataset, self.engine
        if self._group_job is not None:
            self._group_job.cancel()  # the newest selection wins

        def statistics(*, token: CancelToken, report: Report) -> GroupStatistics:
            texts = [dataset.texts[row] for row in rows]  # here, not on the GUI thread: 48 ms for 66k rows
            return GroupStatistics(rows, engine.attention_statistics(texts, token=token, report=report))

        self.attention_tabs.setCurrentWidget(self.group_view)
        name = f"Attention statistics of {len(rows):,} rows"
        self._group_job = self._start_pipeline_job("model", name, statistics)

    def bookmark_row(self) -> None:
        """Bookmark the clicked row (Ctrl+D); View ▸ Bookmarks (Ctrl+B) lists them, with notes."""
        rows = self.map_view.selected_rows
        if self.dataset is None or len(rows) != 1:
            self.status_label.setText("Click one row to bookmark it.")
            return
        self.bookmarks_view.add(rows[0], self.dataset.texts[rows[0]])
        self.bookmarks_view.show()
        self.status_label.setText(f"Bookmarked row {rows[0]}.")

    def clear_selection(self) -> None:
        self.select_rows([])

    def shortcuts(self) -> list[tuple[str, str]]:
        return shortcuts(self, self.menus)

    def show_shortcuts(self) -> None:
        show_shortcuts(self, self.menus)

    # The menus' actions (desktop.window.menus.MenuHost).
    def set_map_tool(self, name: str) -> None:
        self.map_controls.set_tool(name)

    def toggle_density(self) -> None:
        self.map_controls.density.toggle()

    def reset_zoom(self) -> None:
        self.map_view.plot.enableAutoRange()

    def clear_filter(self) -> None:
        self.filter_bar.clear()

    def apply_parameters(self) -> None:
        self.map_controls.apply()

    def focus_search(self) -> None:
        self.table_view.search.setFocus()

    # -- per-layer maps and sweeps -------------------------------------------------------

    def start_layer_maps(self) -> None:
        """Every layer's embeddings (one pass) and maps, aligned, for the layer slider."""
        if self.dataset is None:
            return
        texts, engine, params = self.dataset.texts, self.engine, self._params()

        def maps(*, token: CancelToken, report: Report) -> LayerMaps:
            return LayerMaps(engine.layer_maps(texts, params, token=token, report=report))

        self._start_pipeline_job("model", "Layer maps", maps)

    def show_layer(self, layer: int) -> None:
        """Glide the map to layer ``layer``'s map (the colours stay; scores are for the main map)."""
        if 0 <= layer < len(self.layer_maps):
            self.map_view.move_to(self.layer_maps[layer])
            self.map_view.plot.setTitle(f"Layer {layer} of {len(self.layer_maps) - 1} (aligned)")

    def open_sweep(self) -> None:
        if self.embedded is None:
            self.map_controls.error.setText("Open a dataset first.")
            return
        self.sweep_dialog = SweepDialog(self._params(), self)
        self.sweep_dialog.run_requested.connect(self._start_sweep)
        self.sweep_dialog.cell_chosen.connect(self._choose_sweep_cell)
        self.sweep_dialog.show()

    def _start_sweep(self, axis_x: tuple[str, list[str]], axis_y: tuple[str, list[str]]) -> None:
        assert self.embedded is not None and self.sweep_dialog is not None
        run, engine, base = self.embedded, self.engine, self.sweep_dialog.base

        def sweep(*, token: CancelToken, report: Report) -> SweepResult:
            return engine.sweep(run, base, axis_x, axis_y, token=token, report=report)

        self._start_pipeline_job("compute", "Sweep", sweep)

    def _choose_sweep_cell(self, cell: SweepCell) -> None:
        self.map_controls.set_params(cell.params)
        self._show_layout(Layout(cell.params.method, cell.coords, cell.params))

    def _on_failed(self, handle: JobHandle, message: str) -> None:
        self._pipeline_jobs.discard(handle.job_id)
        if handle.name == "Sweep" and self.sweep_dialog is not None:
            self.sweep_dialog.show_error(message)
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

    def _on_table_selection(self, rows: object) -> None:
        """Rows chosen in the table: ringed on the map; one row also gets attention and neighbours."""
        selected = list(rows)  # type: ignore[call-overload]
        self.map_view.set_selection(selected)
        if len(selected) == 1:
            self._on_row_clicked(int(selected[0]), from_table=True)

    def _on_row_clicked(self, row: int, *, from_table: bool = False) -> None:
        if self.dataset is None:
            return
        if not from_table:
            self.table_view.select_rows([row])
        text, engine = self.dataset.texts[row], self.engine
        if self._attention_job is not None:
            self._attention_job.cancel()  # newest request wins
        self.attention_view.title.setText(f"Row {row}: computing attention…")

        def attention(*, token: CancelToken, report: Report) -> tuple[int, object]:
            return row, engine.attention(text)

        self._attention_job = self.bridge.submit("interactive", f"attention for row {row}", attention)
        if self.embedded is not None:
            vectors = self.embedded.vectors

            def neighbours(*, token: CancelToken, report: Report) -> Neighbours:
                from engine.maps.analysis import nearest_neighbours

                return Neighbours(row, *nearest_neighbours(vectors, row, k=10))

            self._start_side_job(f"neighbours of row {row}", neighbours)

    def _show_attention(self, result: object) -> None:
        assert self.dataset is not None and isinstance(result, tuple)
        row, maps = result
        source = self.dataset.sources[row] if self.dataset.sources else ""
        heading = " · ".join(part for part in (f"Row {row}", self.dataset.labels[row], source) if part)
        self.attention_view.set_maps(maps, f"{heading}\n{self.dataset.texts[row][:300]}")
        self.map_view.show_selected(row)
        self.attention_ready.emit(row)

    # -- export from the window ----------------------------------------------------------

    def choose_export_map(self) -> None:
        choose_export(self, "map")

    def choose_export_data(self) -> None:
        choose_export(self, "data")

    def export_map(self, path: Path) -> list[Path]:
        return export_map(window_snapshot(self), path)

    def export_data(self, path: Path) -> list[Path]:
        return export_data(window_snapshot(self), path)

    def _provenance(self) -> dict[str, object]:
        return window_provenance(self)

    # -- window layout -----------------------------------------------------------------

    def _restore_layout(self) -> None:
        geometry, state = load_layout()
        if geometry:
            self.restoreGeometry(QByteArray(geometry))
        if state:
            self.restoreState(QByteArray(state))

    def _save_layout(self) -> None:
        save_layout(bytes(self.saveGeometry().data()), bytes(self.saveState().data()))

    # -- shutdown ----------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Cancel running jobs and wait for the worker threads; finished work is already cached."""
        self._save_layout()
        self.hide()
        self._cache_timer.stop()
        self.bridge.shutdown()
        self.engine.close()
        self.engine.cache.close()
        super().closeEvent(event)


def _pooling(name: str | None) -> Pooling | None:
    if name in (None, ""):
        return None
    if name not in get_args(Pooling):
        raise BadInputError(f"Unknown pooling {name!r}: choose one of {', '.join(get_args(Pooling))}.")
    return cast(Pooling, name)


def _describe(params: ProjectionParams) -> str:
    """A map's title: the method and the parameters that differ from their defaults."""
    names = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
    changed = [
        f"{name}={value}"
        for name, value in params.settings().items()
        if value != PARAMETERS[params.method][name].default
    ]
    return " ".join([names.get(params.method, params.method), *changed, f"(seed {params.seed})"])
