"""The main window: composes the views around one application model, with menus and a status bar.

The map and its table on the left, attention for the clicked row (or the selection) and its
neighbours on the right, docks for the log, the jobs and the bookmarks. The state lives in
:class:`~desktop.model.document.AppModel`, which the views follow; the work runs as operations
(:mod:`desktop.operations.engine_ops`) that talk to the engine only through
:class:`~engine.api.protocol.EngineAPI` and put their results into the model. This class only
wires user actions to operations and model changes. GUI thread only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QByteArray, QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.map.controls import MapControls
from desktop.map.filter_bar import FilterBar
from desktop.map.presenter import MapPresenter
from desktop.map.sweep_view import SweepDialog
from desktop.map.view import MapView
from desktop.model.document import AppModel, EngineChoice, Source
from desktop.operations import engine_ops
from desktop.operations.bridge import EngineBridge
from desktop.operations.operation import Operations
from desktop.panels.bookmarks_view import BookmarksView
from desktop.panels.jobs_view import JobsView
from desktop.panels.log_view import LogView
from desktop.panels.table_view import TableView
from desktop.window.cluster import ClusterActions
from desktop.window.compare import CompareActions
from desktop.window.files import FileActions
from desktop.window.inspector import RowInspector
from desktop.window.layout_store import load_layout, save_layout
from desktop.window.menus import build_menus, shortcuts, show_shortcuts
from desktop.window.status import StatusLine
from engine.api.protocol import EngineAPI
from engine.api.types import EngineIdentity, SweepResult
from engine.maps.projection import ProjectionParams
from engine.maps.sweep import SweepCell
from engine.user.session import SUFFIX as SESSION_SUFFIX
from engine.user.settings import load_settings, save_settings


def default_size(available: QSize) -> QSize:
    """The window's first size: 1400 x 850, or less on a screen that has less room (a 1366 x 768
    laptop), so that a new window never opens larger than its screen."""
    return QSize(min(1400, available.width()), min(850, available.height()))


class MainWindow(QMainWindow):
    """Loupe's window. ``map_ready(method)`` each time a map is drawn ("pca" for the preview),
    ``attention_ready(row)`` when a row's attention is shown, ``job_failed(message)``."""

    map_ready = Signal(str)
    attention_ready = Signal(int)
    job_failed = Signal(str)

    def __init__(
        self,
        engine: EngineAPI,
        bridge: EngineBridge,
        model: AppModel | None = None,
        parent: QWidget | None = None,
        *,
        cache_url: str = "",
    ) -> None:
        """``cache_url``: the shared cache the engine uses ("" for the embedded one), which a
        cluster job fills (File ▸ Send to cluster…); it may hold a password and is never shown."""
        super().__init__(parent)
        self.setWindowTitle("Loupe")
        self.resize(default_size(self.screen().availableGeometry().size()))
        self.engine, self.bridge = engine, bridge
        self.model = model if model is not None else AppModel()
        self.identity: EngineIdentity | None = None  # the engine's model, for provenance
        self.operations = Operations(bridge, self)
        self.sweep_dialog: SweepDialog | None = None
        self._faithfulness_asked: str | None = None  # the map whose faithfulness was asked for

        self.map_view, self.map_controls, self.filter_bar = MapView(), MapControls(), FilterBar()
        self.table_view, self.attention_tabs = TableView(), QTabWidget()
        self.presenter = MapPresenter(self.model, self.map_view, self.map_controls)
        self.filter_bar.bind(self.model)
        self.table_view.bind(self.model, self.operations)  # first sorts and searches off the GUI thread
        self.inspector = RowInspector(
            self.model,
            self.operations,
            lambda: self.engine,
            self.attention_tabs,
            lambda text: self.status.say(text),
        )
        self.attention_view, self.group_view = self.inspector.attention_view, self.inspector.group_view
        self.neighbours_view = self.inspector.neighbours_view
        self.comparison = CompareActions(self, self.presenter, self.inspector, identity=lambda: self.identity)
        self._compose()
        self.log_view, self.jobs_view = LogView(self), JobsView(bridge, self)
        self.bookmarks_view = BookmarksView(self)
        self.bookmarks_view.bind(self.model)
        for dock, area in (
            (self.log_view, Qt.DockWidgetArea.BottomDockWidgetArea),
            (self.jobs_view, Qt.DockWidgetArea.RightDockWidgetArea),
            (self.bookmarks_view, Qt.DockWidgetArea.RightDockWidgetArea),
            (self.comparison.moved_view, Qt.DockWidgetArea.BottomDockWidgetArea),
        ):
            self.addDockWidget(area, dock)
            dock.hide()
        self.status = StatusLine(self.statusBar(), self.operations, lambda: self.engine.cache)
        self.status_label, self.cache_label = self.status.label, self.status.cache_label
        self.progress_bar, self.cancel_button = self.status.progress_bar, self.status.cancel_button
        self.status.follow(self.model, lambda: self.presenter.title)
        self.files = FileActions(
            self,
            self.statusBar(),
            self.model,
            self.operations,
            say=self.status.say,
            open_path=self.open_path,
            open_source=self.open_source,
            reconfigure=self.configure_engine,
            identity=lambda: self.identity,
            title=lambda: self.presenter.title,
            compare=self.comparison.start,
        )
        self.cluster = ClusterActions(
            self,
            self.model,
            self.operations,
            engine=lambda: self.engine,
            cache_url=cache_url,
            say=self.status.say,
            show_jobs=self.jobs_view.show,
        )
        built = build_menus(self)
        self.menus, self.open_action, self.recent_menu = built.menus, built.open_action, built.recent_menu
        self.setAcceptDrops(True)  # drop a dataset file or folder on the window to open it
        self._restore_layout()
        self._connect()
        engine_ops.identify(self.engine, self._set_identity).run(self.operations)

    def _compose(self) -> None:
        map_panel = QWidget()
        map_layout = QVBoxLayout(map_panel)
        map_layout.setContentsMargins(0, 0, 0, 0)
        for widget, stretch in ((self.map_controls, 0), (self.filter_bar, 0), (self.comparison.pair, 1)):
            map_layout.addWidget(widget, stretch)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(map_panel)
        left.addWidget(self.table_view)
        left.setSizes([620, 230])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.attention_tabs)
        right.addWidget(self.neighbours_view)
        right.setSizes([600, 220])
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([900, 500])  # the map first; the attention pane needs about 470
        self.setCentralWidget(splitter)

    def _connect(self) -> None:
        self.presenter.map_shown.connect(self.map_ready)
        self.presenter.faithfulness_wanted.connect(self._start_faithfulness)
        self.inspector.attention_ready.connect(self.attention_ready)
        self.map_view.row_clicked.connect(self.show_row)
        self.map_view.rows_selected.connect(self.inspector.map_selection)
        self.table_view.selection_changed.connect(self.inspector.table_selection)
        for chooser in (self.neighbours_view.row_chosen, self.bookmarks_view.row_chosen):
            chooser.connect(self.map_view.click_row)
        self.map_controls.params_applied.connect(self.apply_params)
        self.map_controls.layers_requested.connect(self.start_layer_maps)
        self.map_controls.sweep_requested.connect(self.open_sweep)
        for view in (self.attention_view, self.group_view):
            view.provenance_source = self.files.provenance
            view.export_runner = lambda name, write, done, failed: engine_ops.export_with(
                name, write, done=done, failed=failed
            ).run(self.operations)
            view.exported.connect(lambda paths: self.status.say(engine_ops.wrote(paths)))
            view.export_failed.connect(lambda message: self.status.say(f"Export failed: {message}"))
        self.operations.failed.connect(self._on_failed)

    def _set_identity(self, identity: EngineIdentity) -> None:
        self.identity = identity

    # -- opening data -----------------------------------------------------------------------

    def start_demo(self, rows: int = 4000) -> None:
        """Build the demo dataset where the engine runs, embed and map it."""
        self.open_source(Source("the demo dataset", demo_rows=rows))

    def open_path(
        self, path: Path, *, text_column: str | None = None, label_column: str | None = None
    ) -> None:
        """Open a dataset in any supported format and map it; a session file (``*.loupe.json``)
        reopens the dataset, map, view and selection it saved. The text and label columns are
        guessed unless named (``loupe open --text-column/--label-column``, Dataset ▸ Columns…)."""
        if path.name.endswith(SESSION_SUFFIX):
            self.open_session(path)
            return
        if path.exists():
            save_settings(load_settings().with_recent(str(path.resolve())))
        self.open_source(
            Source(path.name, path.resolve(), text_column=text_column, label_column=label_column)
        )

    open_csv = open_path  # the name the first versions used

    def open_source(self, source: Source) -> None:
        """Open ``source`` in the engine and make its map (the newest dataset wins)."""
        self.operations.cancel("attention", "neighbours", "group", "layers", "faithfulness", "sweep")
        self.setWindowTitle(f"Loupe — {source.name}")
        engine_ops.open_dataset(self.engine, self.model, source, self.status.say).run(self.operations)

    def configure_engine(
        self, model: str, device: str, pooling: str | None, layer: int, precision: str
    ) -> None:
        """Use another model, device, pooling, layer or precision: a new engine on the same cache,
        and the open dataset embedded and mapped again (rows already in the cache come back at once)."""
        choice = EngineChoice(model, device, pooling or None, layer, precision)
        if choice == self.model.engine:
            return
        self.operations.drop_all()  # their results (and failures) belong to the old engine
        self.engine = self.engine.reconfigured(model, device, pooling or None, precision)
        self.model.choose_engine(choice)
        self.identity = None
        engine_ops.identify(self.engine, self._set_identity).run(self.operations)
        if self.model.source is not None:
            self.open_source(self.model.source)

    def apply_params(self, params: ProjectionParams) -> None:
        """The map controls' Apply: the main map with these settings."""
        if self.model.run is None:
            self.map_controls.error.setText("Open a dataset first.")
            return
        engine_ops.remap(self.engine, self.model, params, self.status.say).run(self.operations)

    # -- files, sessions, exports (see FileActions) ----------------------------------------------

    def choose_file(self) -> None:
        self.files.choose_file()

    def fill_recent_menu(self) -> None:
        self.files.fill_recent_menu(self.recent_menu)

    def choose_columns(self) -> None:
        self.files.choose_columns()

    def open_settings(self) -> None:
        self.files.open_settings()

    def choose_save_session(self) -> None:
        self.files.choose_save_session()

    def send_to_cluster(self) -> None:
        self.cluster.choose()

    def choose_open_session(self) -> None:
        self.files.choose_open_session()

    def open_session(self, path: Path) -> None:
        self.files.open_session(path)

    def choose_export_map(self) -> None:
        self.files.choose_export("map")

    def choose_export_data(self) -> None:
        self.files.choose_export("data")

    def export_map(self, path: Path) -> None:
        """The shown map as a figure (SVG, PDF, PNG) with its provenance, written as a job."""
        self.files.export("map", path)

    def export_data(self, path: Path) -> None:
        """The shown map's data (CSV, Parquet) with its provenance, written as a job."""
        self.files.export("data", path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt's name)
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    # -- the rows the user looks at -------------------------------------------------------------

    def select_rows(self, rows: list[int] | npt.NDArray[np.intp]) -> None:
        """The shared selection: ringed on the map and selected in the table."""
        self.model.select(rows)

    def clear_selection(self) -> None:
        self.model.select([])

    def show_row(self, row: int) -> None:
        """Act on a clicked row: selected, its attention and neighbours."""
        self.inspector.show_row(row)

    def start_group_statistics(self) -> None:
        self.inspector.start_group_statistics()

    def bookmark_row(self) -> None:
        """Bookmark the clicked row (Ctrl+D); View ▸ Bookmarks (Ctrl+B) lists them, with notes."""
        if self.inspector.bookmark_row():
            self.bookmarks_view.show()

    # -- the map's own tools ---------------------------------------------------------------------

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

    def shortcuts(self) -> list[tuple[str, str]]:
        return shortcuts(self, self.menus)

    def show_shortcuts(self) -> None:
        show_shortcuts(self, self.menus)

    def _start_faithfulness(self) -> None:
        """Faithfulness of the map on show, asked once per map (a newer map's supersedes it)."""
        shown = self.model.shown
        if shown is not None and self._faithfulness_asked != shown.map.map_id:
            self._faithfulness_asked = shown.map.map_id
            engine_ops.faithfulness(self.engine, self.model).run(self.operations)

    def start_layer_maps(self) -> None:
        """Every layer's map (one pass over the model), aligned, for the layer slider."""
        if self.model.opened is not None:
            engine_ops.layer_maps(self.engine, self.model, self.status.say).run(self.operations)

    def open_sweep(self) -> None:
        if self.model.run is None:
            self.map_controls.error.setText("Open a dataset first.")
            return
        self.sweep_dialog = SweepDialog(self.model.params, self)
        self.sweep_dialog.run_requested.connect(self._start_sweep)
        self.sweep_dialog.cell_chosen.connect(self._choose_sweep_cell)
        self.sweep_dialog.show()

    def _start_sweep(self, axis_x: tuple[str, list[str]], axis_y: tuple[str, list[str]]) -> None:
        dialog = self.sweep_dialog
        assert dialog is not None and self.model.run is not None

        def show(result: SweepResult) -> None:
            if self.model.dataset is not None:
                dialog.show_result(result, self.model.dataset.labels)

        operation = engine_ops.sweep(self.engine, self.model, dialog.base, (axis_x, axis_y), show)
        operation.failure(lambda message: dialog.show_error(message)).run(self.operations)

    def _choose_sweep_cell(self, cell: SweepCell) -> None:
        """A sweep cell becomes the main map (from the cache: the sweep computed it)."""
        self.apply_params(cell.params)

    # -- failures, layout and shutdown -------------------------------------------------------------

    def _on_failed(self, handle: object, message: str) -> None:
        self.job_failed.emit(message)
        if self.isVisible():
            # Window-modal and opened, not exec'd: the event loop (and every other job) keeps going.
            box = QMessageBox(QMessageBox.Icon.Warning, "Loupe", message, QMessageBox.StandardButton.Ok, self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            show_log = box.addButton("Show log", QMessageBox.ButtonRole.ActionRole)
            job_id = getattr(handle, "job_id", 0)
            show_log.clicked.connect(lambda: self.show_job_log(job_id))
            box.open()

    def show_job_log(self, job_id: int) -> None:
        """Open the log dock on the lines of one job (the failed job's "Show log")."""
        self.log_view.show_job(job_id)
        self.log_view.show()
        self.log_view.raise_()

    def cancel_jobs(self) -> None:
        self.cancel_button.click()

    def _restore_layout(self) -> None:
        geometry, state = load_layout()
        if geometry:
            self.restoreGeometry(QByteArray(geometry))
        if state:
            self.restoreState(QByteArray(state))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Cancel running jobs and wait for the worker threads; finished work is already cached."""
        save_layout(bytes(self.saveGeometry().data()), bytes(self.saveState().data()))
        self.hide()
        self.status.cache_timer.stop()
        self.cluster.detach()  # a cluster job goes on without the window
        self.bridge.shutdown()
        self.engine.close()
        self.engine.cache.close()
        super().closeEvent(event)
