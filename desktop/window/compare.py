"""The window's comparison: Map ▸ Compare with…, the second map, the "Moved most" panel, a
row's attention under both models, the comparison's exports, and closing it.

:class:`CompareActions` owns the pieces a comparison adds to the window and wires them to the
application model: the map pair (:mod:`desktop.map.compare_view`), the "Moved most" dock
(:mod:`desktop.panels.moved_view`) and, where it is installed, the paired attention view
(:mod:`desktop.attention.pair_view`). The work runs as operations
(:mod:`desktop.operations.compare_ops`). It knows the window only through what it is given.
GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMainWindow, QWidget

from desktop.map.compare_view import ComparePresenter, MapPair
from desktop.map.presenter import MapPresenter
from desktop.model.comparison import CompareChoice, choice_of, side_title
from desktop.operations import compare_ops, engine_ops
from desktop.operations.compare_ops import AttentionPair, NeighboursBeforeAfter
from desktop.panels.moved_view import MovedMostView
from desktop.window.compare_dialog import CompareDialog
from desktop.window.inspector import RowInspector
from engine.api.types import Comparison, EngineIdentity
from engine.errors import LoupeError

EXPORTS = {
    "figure": ("Export the comparison figure", "comparison.svg", "Figures (*.svg *.pdf *.png)"),
    "rows": ("Export the comparison rows", "comparison.csv", "Data (*.csv *.parquet *.jsonl)"),
}
MOVED_HEIGHT = 190  # the "Moved most" dock's first height, in pixels
NOT_COMPARING = "There is no comparison to export: Map ▸ Compare with… first."


def _pair_view_class() -> Any:
    """The paired attention view, where this Loupe has it (None: the tab is left out)."""
    try:
        from desktop.attention import pair_view  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return None
    return pair_view.PairedAttentionView


class CompareActions(QObject):
    """``pair_ready(row)`` when a row's attention under both models has arrived (``last_pair``)."""

    pair_ready = Signal(int)

    def __init__(
        self,
        parent: QWidget,
        presenter: MapPresenter,
        inspector: RowInspector,
        *,
        identity: Callable[[], EngineIdentity | None],
    ) -> None:
        super().__init__(parent)
        self.parent_widget, self.model, self.operations = parent, inspector.model, inspector.operations
        self.inspector, self._engine, self._say, self._identity = (
            inspector,
            inspector.engine_of,
            inspector.say,
            identity,
        )
        self.pair = MapPair(presenter.view)
        self.presenter = ComparePresenter(self.model, presenter, self.pair)
        self.moved_view = MovedMostView(parent)
        self.last_pair: AttentionPair | None = None
        pair_class = _pair_view_class()
        self.pair_view: Any = pair_class() if pair_class is not None else None
        self._pair_tab = -1
        if self.pair_view is not None:
            self._wire_pair_exports(self.pair_view)
        second = self.pair.second
        second.row_clicked.connect(inspector.show_row)
        second.rows_selected.connect(inspector.map_selection)
        inspector.row_shown.connect(self._row_shown)
        self.moved_view.row_chosen.connect(inspector.show_row)
        self.model.comparison_changed.connect(self._on_comparison)
        # The choice of the comparison on show, to make it again for a map of other parameters
        # (Apply closes it: its maps no longer line up); None once closed or the data changes.
        self._kept: CompareChoice | None = None
        self.model.dataset_changed.connect(lambda _: self._forget_choice())

    def _wire_pair_exports(self, view: Any) -> None:
        """The paired view's figure export as the attention view's: a job, a sidecar that starts
        from the comparison's provenance (both sides), the outcome in the status line."""

        def run(name: str, write: Any, done: Any, failed: Any) -> None:
            engine_ops.export_with(name, write, done=done, failed=failed).run(self.operations)

        view.provenance_source = self.provenance
        view.export_runner = run
        view.exported.connect(lambda paths: self._say(engine_ops.wrote(paths)))
        view.export_failed.connect(lambda message: self._say(f"Export failed: {message}"))

    def provenance(self) -> dict[str, Any]:
        """The comparison's provenance record (both sides), {} without one."""
        from desktop.window.compare_export import snapshot_comparison

        try:
            return snapshot_comparison(self.model, self.titles()).record()
        except LoupeError:
            return {}

    @property
    def comparison(self) -> Comparison | None:
        return self.model.comparison

    # -- starting and closing ------------------------------------------------------------------

    def choose(self) -> None:
        """Map ▸ Compare with…: the dialog, then the comparison."""
        if not self._can_compare():
            return
        identity = self._identity()
        base = identity.display_name if identity is not None else self.model.engine.model
        layer = self.model.run.layer if self.model.run is not None else self.model.engine.layer
        dialog = CompareDialog(self.model.engine.model, f"{base}, layer {layer}", self.parent_widget)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.start(dialog.choice()))
        dialog.open()

    def start(self, choice: CompareChoice) -> None:
        """Compare what the window shows with ``choice`` (a job: progress and Cancel)."""
        if self._can_compare():
            compare_ops.compare(self._engine(), self.model, choice, self._say).run(self.operations)

    def close(self) -> None:
        """Map ▸ Close comparison: back to one map."""
        self._forget_choice()
        self.operations.cancel("compare", "attention-pair", "moved-neighbours")
        self.model.close_comparison()

    def _forget_choice(self) -> None:
        self._kept = None

    def _can_compare(self) -> bool:
        shown = self.model.shown
        if shown is None or shown.preview or self.model.opened is None:
            self._say("Wait for the map first: a comparison lines up with the map on show.")
            return False
        if self.model.opened.own_vectors:
            self._say("This dataset came with its own vectors: a comparison embeds it with two models.")
            return False
        return True

    # -- following the model and the clicked row --------------------------------------------------

    def _on_comparison(self, comparison: Comparison | None) -> None:
        dataset = self.model.dataset
        self.last_pair = None
        titles = self.titles()
        shown = self.model.shown
        if comparison is None and self._kept is not None and shown is not None and not shown.preview:
            self.start(self._kept)  # a map of other parameters: the comparison again, for it
        self._kept = choice_of(comparison) if comparison is not None else self._kept
        if comparison is None or dataset is None:
            self.moved_view.set_comparison(None, (), (), titles)
            self.moved_view.hide()
            if self.pair_view is not None and self._pair_tab >= 0:
                self.inspector.tabs.removeTab(self.inspector.tabs.indexOf(self.pair_view))
                self._pair_tab = -1
            return
        self.moved_view.set_comparison(comparison, dataset.texts, dataset.labels, titles)
        if self.moved_view.isHidden():
            self.moved_view.show()
            window = self.parent_widget
            if isinstance(window, QMainWindow):  # low, so the maps and the attention keep their room
                window.resizeDocks([self.moved_view], [MOVED_HEIGHT], Qt.Orientation.Vertical)
        if self.pair_view is not None and self._pair_tab < 0:
            self._pair_tab = self.inspector.tabs.addTab(self.pair_view, "Attention under both models")
            self.pair_view.clear("Click a row to see its attention under both models.")
            self.inspector.tabs.setCurrentWidget(self.pair_view)  # what a click now shows first

    def titles(self) -> tuple[str, str]:
        comparison = self.comparison
        if comparison is None:
            return ("A", "B")
        return (f"A: {side_title(comparison.base)}", f"B: {side_title(comparison.against)}")

    def _row_shown(self, row: int) -> None:
        comparison = self.comparison
        if comparison is None:
            return
        engine = self._engine()
        compare_ops.attention_pair(engine, comparison, row, self._show_pair).run(self.operations)
        compare_ops.neighbours_before_after(engine, comparison, row, self._show_before_after).run(
            self.operations
        )

    def _show_pair(self, pair: AttentionPair) -> None:
        if self.comparison is None:
            return
        self.last_pair = pair
        if self.pair_view is not None:
            self.pair_view.show_pair(pair.row, pair.base, pair.against, self.titles())
        self.pair_ready.emit(pair.row)

    def _show_before_after(self, found: NeighboursBeforeAfter) -> None:
        dataset = self.model.dataset
        if dataset is not None and self.comparison is not None:
            self.moved_view.set_neighbours(
                found.row, found.before.indices, found.after.indices, dataset.texts, dataset.labels
            )

    # -- exports ------------------------------------------------------------------------------

    def choose_export(self, what: str) -> None:
        """File ▸ Export comparison figure… / rows… ("figure" or "rows"): a save dialog, then the job."""
        if self.comparison is None:
            self._say(NOT_COMPARING)
            return
        title, default, formats = EXPORTS[what]
        chosen, _ = QFileDialog.getSaveFileName(self.parent_widget, title, default, formats)
        if chosen:
            self.export(what, Path(chosen))

    def export(self, what: str, path: Path) -> None:
        """The comparison as one figure ("figure") or as rows ("rows"), each with a sidecar that
        names both sides: a snapshot taken now, written as a job; the outcome in the status line."""
        from desktop.window.compare_export import snapshot_comparison

        try:
            snapshot = snapshot_comparison(self.model, self.titles())
        except LoupeError as exc:
            self._say(f"Export failed: {exc}")
            return
        name = f"Export comparison {what}"
        write = snapshot.write_figure if what == "figure" else snapshot.write_rows
        engine_ops.export(name, lambda: write(path), self._say).run(self.operations)
