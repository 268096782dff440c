"""Attention statistics of a group of rows as a layers x heads grid.

The window computes :class:`~engine.model.attention_stats.AttentionStatistics` for a selection
(``Engine.attention_statistics`` on a job lane) and hands the finished result to
:meth:`AttentionStatsView.set_statistics` on the GUI thread. The view shows one statistic at a
time (entropy, attention to special tokens, attention to the previous token) on a fixed 0..1
colour scale, so that two groups compare by eye; hovering a cell shows its layer, head and
value. "Export figure…" writes the grid with a provenance sidecar.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop.attention.colours import BACKGROUND, colour_axes
from desktop.attention.figure_export import FigureView, FigureWrite
from engine.errors import LoupeError
from engine.model.attention_stats import LABELS, STATISTICS, AttentionStatistics

PROMPT = "Select a group of points on the map to see how its rows' attention behaves, per layer and head."


class AttentionStatsView(FigureView):
    """A chooser of statistic and a labelled layers x heads heatmap of it.

    ``exported(list[Path])`` and ``export_failed(str)`` follow an export started from the
    button; ``provenance_source`` (set by the window) gives the dataset/model record that the
    sidecar starts from. Everything runs on the GUI thread.
    """

    figure_size = (7.0, 4.5)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stats: AttentionStatistics | None = None
        self.hovered: tuple[int, int] | None = None  # (layer, head) under the mouse

        self.title = QLabel(PROMPT)
        self.title.setWordWrap(True)
        self.statistic = QComboBox()
        for name in STATISTICS:
            self.statistic.addItem(LABELS[name], name)
        self.export_button = QPushButton("Export figure…")
        self.export_button.setToolTip("Write this grid as PNG, SVG or PDF with a provenance sidecar")
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.value_label = QLabel("Hover a cell for its value.")

        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("left", "layer")
        self.plot.setLabel("bottom", "head")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(
            values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"), interactive=False
        )
        self.colour_bar.setImageItem(self.image, insert_in=self.plot)
        self.plot_widget.scene().sigMouseMoved.connect(self._hover)

        controls = QHBoxLayout()
        controls.addWidget(self.statistic)
        controls.addStretch(1)
        controls.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(controls)
        layout.addWidget(self.description)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.value_label)
        self.statistic.currentIndexChanged.connect(self._redraw)
        self.export_button.clicked.connect(self.choose_export)
        self._set_enabled(False)

    # -- public -------------------------------------------------------------------------------

    def set_statistics(self, stats: AttentionStatistics, title: str) -> None:
        """Show ``stats`` under ``title``, keeping the chosen statistic."""
        self.stats = stats
        self.title.setText(title)
        self._set_enabled(True)
        self._redraw()

    def current_statistic(self) -> str:
        return str(self.statistic.currentData())

    def set_statistic(self, name: str) -> None:
        self.statistic.setCurrentIndex(STATISTICS.index(name))

    def shown_values(self) -> npt.NDArray[np.float32]:
        """The ``[layers, heads]`` grid drawn now."""
        assert self.stats is not None
        return self.stats.values(self.current_statistic())

    def cell_text(self, layer: int, head: int) -> str:
        """What hovering ``layer``/``head`` says: the cell and its value."""
        value = float(self.shown_values()[layer, head])
        shown = f"{value:.3f}" if np.isfinite(value) else "no value (every row too short)"
        return f"layer {layer} · head {head} · {LABELS[self.current_statistic()]}: {shown}"

    def figure_writer(
        self, path: Path, provenance: Mapping[str, Any] | None, *, width: float, height: float, dpi: int
    ) -> FigureWrite:
        """The shown statistic's grid and its sidecar (a bad extension or an unwritable folder
        raises :class:`LoupeError` when it is written)."""
        from engine.user.attention_figures import save_attention_statistics_figure
        from engine.user.export import attention_provenance, write_sidecar

        if self.stats is None:
            raise LoupeError("There are no attention statistics to export yet: select a group of rows first.")
        stats, statistic = self.stats, self.current_statistic()
        record = attention_provenance(
            provenance or {},
            view=f"statistics: {statistic}",
            layer=None,
            head=None,
            statistic=statistic,
            description=stats.describe(statistic),
            rows=stats.rows,
            requested=stats.requested,
        )

        def write() -> list[Path]:
            figure = save_attention_statistics_figure(
                path, stats, statistic, width=width, height=height, dpi=dpi, provenance=record
            )
            return [figure, write_sidecar(figure, record)]

        return write

    def choose_export(self) -> None:
        """Ask for a file, size and resolution, then export through ``export_runner`` (the
        window's runs it as a job); reports by signal on the GUI thread."""
        if self.stats is None:
            return
        name = f"attention-{self.current_statistic()}.svg"
        self.ask_and_export(name)

    def set_dark(self, dark: bool) -> None:
        """Dark or light background and axes (called by the theme on every widget that has it)."""
        self.plot_widget.setBackground(BACKGROUND[dark])
        colour_axes([self.plot.getAxis("left"), self.plot.getAxis("bottom"), self.colour_bar.axis], dark)

    # -- drawing ------------------------------------------------------------------------------

    def _redraw(self) -> None:
        if self.stats is None:
            return
        statistic = self.current_statistic()
        grid = self.shown_values()
        # ImageItem cannot draw NaN (a statistic no row could give): show it as 0, say so on hover.
        self.image.setImage(np.nan_to_num(grid, nan=0.0), levels=(0.0, 1.0))
        layers, heads = grid.shape
        self.plot.getAxis("left").setTicks([[(layer + 0.5, str(layer)) for layer in range(layers)]])
        self.plot.getAxis("bottom").setTicks([[(head + 0.5, str(head)) for head in range(heads)]])
        self.plot.setXRange(0, heads, padding=0)
        self.plot.setYRange(0, layers, padding=0)
        self.description.setText(self.stats.describe(statistic))
        if self.hovered is not None:
            self._show_cell(*self.hovered)

    def _hover(self, pos: QPointF) -> None:
        if self.stats is None:
            return
        point = self.plot.getViewBox().mapSceneToView(pos)
        layers, heads = self.shown_values().shape
        layer, head = int(np.floor(point.y())), int(np.floor(point.x()))
        if (
            0 <= layer < layers
            and 0 <= head < heads
            and self.plot.getViewBox().sceneBoundingRect().contains(pos)
        ):
            self._show_cell(layer, head)
        else:
            self.hovered = None
            self.value_label.setText("Hover a cell for its value.")
            self.plot_widget.setToolTip("")

    def _show_cell(self, layer: int, head: int) -> None:
        self.hovered = (layer, head)
        text = self.cell_text(layer, head)
        self.value_label.setText(text)
        self.plot_widget.setToolTip(text)

    def _set_enabled(self, enabled: bool) -> None:
        self.statistic.setEnabled(enabled)
        self.export_button.setEnabled(enabled)
