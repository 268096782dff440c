"""What the File and Dataset menus do with files: open a dataset, the recent list, sessions
(save, reopen), exports (written as jobs), the columns and settings dialogs.

:class:`FileActions` reads and changes the application model and starts operations; it knows
the window only through the few callables it is given (open a source, reconfigure the
engine), so it imports nothing of the window. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMenu, QStatusBar, QWidget

from desktop.model.comparison import CompareChoice
from desktop.model.document import AppModel, Source
from desktop.operations import engine_ops
from desktop.operations.operation import Operations
from desktop.window import sessions
from desktop.window.export import ExportSnapshot, ask_export_path, export_data, export_map
from engine.api.types import EngineIdentity
from engine.errors import LoupeError
from engine.user.settings import load_settings

DATASET_FILES = (
    "Datasets and sessions (*.csv *.tsv *.tab *.json *.jsonl *.ndjson *.parquet *.arrow *.txt);;All files (*)"
)
OpenPath = Callable[..., object]  # open_path(path, *, text_column=None, label_column=None)
Reconfigure = Callable[[str, str, str | None, int, str], object]  # model, device, pooling, layer, precision


class FileActions:
    """The File and Dataset menus' work; ``identity()`` is the engine's model (None until known)."""

    def __init__(
        self,
        parent: QWidget,
        status_bar: QStatusBar,
        model: AppModel,
        operations: Operations,
        *,
        say: Callable[[str], object],
        open_path: OpenPath,
        open_source: Callable[[Source], object],
        reconfigure: Reconfigure,
        identity: Callable[[], EngineIdentity | None],
        title: Callable[[], str],
        compare: Callable[[CompareChoice], object],
    ) -> None:
        self.parent, self.status_bar, self.model, self.operations = parent, status_bar, model, operations
        self._say, self._open_path, self._open_source = say, open_path, open_source
        self._reconfigure, self._identity, self._title = reconfigure, identity, title
        self._compare = compare

    def choose_file(self) -> None:
        """File ▸ Open… (Ctrl+O): a file dialog over the supported formats."""
        chosen, _ = QFileDialog.getOpenFileName(self.parent, "Open a dataset", "", DATASET_FILES)
        if chosen:
            self._open_path(Path(chosen))

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        recent = load_settings().recent_files
        for entry in recent:
            menu.addAction(entry, lambda path=entry: self._open_path(Path(path)))
        if not recent:
            menu.addAction("(none yet)").setEnabled(False)

    def choose_columns(self) -> None:
        """Dataset ▸ Columns… (Ctrl+Shift+C): read the open file again with other columns."""
        from desktop.window.columns_dialog import open_columns_dialog

        def reopen(path: Path, text: str, label: str | None) -> None:
            self._open_path(path, text_column=text, label_column=label)

        try:
            open_columns_dialog(self.model, reopen, self.parent)
        except LoupeError as exc:
            self._say(str(exc))

    def open_settings(self) -> None:
        """File ▸ Settings… (Ctrl+,): model, device, pooling, layer, cache, projection defaults, theme."""
        from desktop.window.settings_dialog import SettingsDialog, apply_settings

        old = load_settings()
        dialog = SettingsDialog(old, self.parent)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def accepted() -> None:
            new = dialog.result_settings()
            said = apply_settings(
                old, new, reconfigure=self._reconfigure, use_projection=self.model.set_params
            )
            self._say(" ".join(said))

        dialog.accepted.connect(accepted)
        dialog.open()  # window-modal, not exec'd: jobs keep reporting while it is open

    # -- sessions -----------------------------------------------------------------------------

    def choose_save_session(self) -> None:
        """File ▸ Save session… (Ctrl+S): the dataset, model, map, view, selection, bookmarks and
        the comparison on show."""
        path = sessions.ask_session_path(self.parent, save=True)
        if path is None:
            return
        try:
            saved = sessions.save_session_as(self.model, path)
        except LoupeError as exc:
            self._say(f"The session was not saved: {exc}")
            return
        self._say(f"Saved the session to {saved}")

    def choose_open_session(self) -> None:
        path = sessions.ask_session_path(self.parent, save=False)
        if path is not None:
            self.open_session(path)

    def open_session(self, path: Path) -> None:
        """Reopen a session: its engine, data and map, then (once the real map is shown) its view,
        selection and bookmarks. Nothing is recomputed that the cache holds."""
        model = self.model
        try:
            session = sessions.read_session(path)
            engine = model.engine
            self._reconfigure(session.model, engine.device, session.pooling, session.layer, engine.precision)
        except LoupeError as exc:
            self._say(f"Cannot open the session: {exc}")
            return
        model.set_params(session.projection)
        self._open_source(sessions.source_of(session))
        opened = model.source

        def restore(_shown: object) -> None:
            if model.source is not opened:
                model.map_changed.disconnect(restore)  # another dataset was opened meanwhile
            elif model.shown is not None and not model.shown.preview:
                model.map_changed.disconnect(restore)
                warning = sessions.apply_session_view(model, session)
                choice = sessions.comparison_choice(session)
                if choice is not None:
                    self._compare(choice)  # the second map beside the first, as saved
                # Over the status label, which the jobs still finishing (scores) keep rewriting.
                message = warning or f"Session {path.name} restored."
                self.status_bar.showMessage(message, sessions.WARNING_MS if warning else sessions.RESTORED_MS)

        model.map_changed.connect(restore)

    # -- exports --------------------------------------------------------------------------------

    def choose_export(self, what: str) -> None:
        """File ▸ Export map… / Export data… ("map" or "data"): a save dialog, then the export."""
        path = ask_export_path(self.parent, what)
        if path is not None:
            self.export(what, path)

    def export(self, what: str, path: Path) -> None:
        """The shown map as a figure ("map": SVG, PDF, PNG) or its data ("data": CSV, Parquet),
        with provenance: a snapshot taken now, written as a job; the outcome in the status bar."""
        try:
            snapshot = self.snapshot()
        except LoupeError as exc:
            self._say(f"Export failed: {exc}")
            return
        write = export_map if what == "map" else export_data
        name = f"Export {what}"
        engine_ops.export(name, lambda: write(snapshot, path), self._say).run(self.operations)

    def snapshot(self) -> ExportSnapshot:
        """What the map shows now (GUI thread), for an export written on a job's thread."""
        identity = self._identity()
        if identity is None:
            raise LoupeError("The engine has not said which model it uses yet; try again in a moment.")
        return ExportSnapshot.take(self.model, identity, self._title())

    def provenance(self) -> dict[str, object]:
        """The shown map's provenance, for an attention figure's sidecar ({} without a map)."""
        try:
            return self.snapshot().record()
        except LoupeError:
            return {}
