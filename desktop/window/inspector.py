"""The rows a user looks at: a clicked row's attention and neighbours, a group's attention
statistics, bookmarks.

:class:`RowInspector` turns what the user picks (a click on the map, a row in the table, a box or
lasso) into the model's selection and the operations that show those rows: each asks the engine
by ids (the dataset's, the run's) on its own lane, the newest click winning. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QTabWidget

from desktop.attention.stats_view import AttentionStatsView
from desktop.attention.view import AttentionView
from desktop.model.document import AppModel
from desktop.operations import engine_ops
from desktop.operations.operation import Operations
from desktop.panels.neighbours_view import NeighboursView
from engine.api.protocol import EngineAPI
from engine.api.types import GroupAttention, Neighbours, RowAttention


class RowInspector(QObject):
    """``attention_ready(row)`` when a row's attention is on show; ``row_shown(row)`` when a row
    is shown (clicked anywhere), for what else follows the clicked row (a comparison's)."""

    attention_ready = Signal(int)
    row_shown = Signal(int)

    def __init__(
        self,
        model: AppModel,
        operations: Operations,
        engine: Callable[[], EngineAPI],
        tabs: QTabWidget,
        say: Callable[[str], object],
    ) -> None:
        super().__init__(tabs)
        self.model, self.operations, self._engine, self.tabs, self._say = model, operations, engine, tabs, say
        self.engine_of, self.say = engine, say  # for what follows the clicked row (a comparison)
        self.attention_view = AttentionView()
        self.group_view = AttentionStatsView()
        self.neighbours_view = NeighboursView()
        tabs.addTab(self.attention_view, "Attention of the row")
        tabs.addTab(self.group_view, "Attention of the selection")

    def show_row(self, row: int) -> None:
        """A row clicked (map, table, neighbours, bookmarks): selected, its attention and neighbours."""
        if self.model.opened is None:
            return
        self.model.select([row])
        self.attention_view.title.setText(f"Row {row}: computing attention…")
        engine, model = self._engine(), self.model
        engine_ops.attention(engine, model, row, self._show_attention).run(self.operations)
        if model.run is not None:
            engine_ops.neighbours(engine, model, row, self._show_neighbours).run(self.operations)
        self.row_shown.emit(row)

    def table_selection(self, rows: npt.NDArray[np.intp]) -> None:
        """Rows chosen in the table: selected; one row also gets attention and neighbours."""
        self.model.select(rows)
        if len(rows) == 1:
            self.show_row(int(rows[0]))

    def map_selection(self, rows: npt.NDArray[np.intp]) -> None:
        """A box or lasso on the map (already the model's selection): one row acts as a click, a
        group gets its attention statistics."""
        if len(rows) == 1:
            self.show_row(int(rows[0]))
        elif len(rows) > 1:
            self.start_group_statistics()

    def start_group_statistics(self) -> None:
        """Attention statistics (entropy, to special tokens, to the previous token) per layer and
        head of the selected rows (Ctrl+G; a box or lasso starts it by itself)."""
        rows = [int(row) for row in self.model.selection]
        if self.model.opened is None or len(rows) < 2:
            self._say("Select a group of rows first: box (B) or lasso (L) on the map.")
            return
        self.tabs.setCurrentWidget(self.group_view)
        engine_ops.group_statistics(self._engine(), self.model, rows, self._show_group).run(self.operations)

    def bookmark_row(self) -> bool:
        """Bookmark the clicked row; False (and why, in the status bar) when not one row is selected."""
        rows = self.model.selection
        if self.model.opened is None or len(rows) != 1:
            self._say("Click one row to bookmark it.")
            return False
        row = int(rows[0])
        self.model.bookmark(row, self.model.bookmarks.get(row, ""))
        self._say(f"Bookmarked row {row}.")
        return True

    def _show_attention(self, result: RowAttention) -> None:
        dataset, row = self.model.dataset, result.row
        if dataset is None or row >= len(dataset):
            return
        source = dataset.sources[row] if dataset.sources else ""
        heading = " · ".join(part for part in (f"Row {row}", dataset.labels[row], source) if part)
        self.attention_view.set_maps(result.maps, f"{heading}\n{dataset.texts[row][:300]}")
        self.attention_ready.emit(row)

    def _show_neighbours(self, result: Neighbours) -> None:
        dataset = self.model.dataset
        if dataset is not None:
            self.neighbours_view.set_neighbours(
                result.row, result.indices, result.distances, dataset.texts, dataset.labels
            )

    def _show_group(self, result: GroupAttention) -> None:
        stats, count = result.statistics, len(result.rows)
        sampled = f" (a sample of {stats.rows} of {stats.requested})" if stats.sampled else ""
        self.group_view.set_statistics(stats, f"{count:,} selected rows{sampled}")
        self._say(f"Attention statistics of {count:,} rows{sampled} ready.")
