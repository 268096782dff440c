"""The heatmap and rollout modes' plot: a query x key image with token labels on both axes.

The axes label only as many tokens as fit (:class:`desktop.attention.axis.TokenAxis`) and
relabel when the plot is resized or zoomed: drag a rectangle or turn the wheel to zoom, drag
with the middle button to pan; :meth:`TokenHeatmap.zoom_to_all` shows every token again.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QTimer

from desktop.attention.axis import LONGEST_LABEL, TokenAxis

MIN_KEY_LABEL = 48.0  # pixels: the shortest upright key label before eliding, in a small view


class TokenHeatmap(pg.PlotWidget):  # type: ignore[misc]
    """A zoomable heatmap of one matrix whose rows and columns are tokens (or words); GUI thread."""

    def __init__(self) -> None:
        self.query_axis, self.key_axis = TokenAxis("left"), TokenAxis("bottom")
        for axis in (self.query_axis, self.key_axis):
            # Token positions need no SI prefix: the empty plot said "query token (x0.001)".
            axis.enableAutoSIPrefix(False)
        super().__init__(axisItems={"left": self.query_axis, "bottom": self.key_axis})
        self.plot = self.getPlotItem()
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()  # the small "A" button; "Reset zoom" says what it does
        self.plot.setContentsMargins(2, 10, 10, 2)  # room for the end labels past the axes' ends
        self.plot.getViewBox().setMouseMode(pg.ViewBox.RectMode)  # left drag: zoom to a rectangle
        self.plot.setLabel("left", "query token")
        self.plot.setLabel("bottom", "key token")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.image)
        self.matrix: npt.NDArray[np.float32] | None = None  # as drawn
        self.labels: list[str] = []  # its row and column labels
        self._zoom_key: object = None  # what was shown when the zoom was last reset
        # Until the user zooms, a resize shows the whole matrix again: with the aspect locked,
        # pyqtgraph keeps the taller range and crops columns when a panel gets narrower.
        self._user_zoomed = False
        self.plot.getViewBox().sigRangeChangedManually.connect(self._zoomed_by_user)
        # Installed last: a resize while PlotWidget builds itself must not relabel yet.
        self.installEventFilter(self)

    def show_matrix(
        self,
        matrix: npt.NDArray[np.float32],
        labels: list[str],
        *,
        thing: str,
        rollout: bool,
        zoom_key: object,
    ) -> None:
        """Draw ``matrix`` with ``labels`` on both axes (``thing``: "token" or "word").

        The zoom is kept while ``zoom_key`` stays the same (a new layer or head keeps the region
        zoomed into) and reset to the whole matrix when it changes (a new row, unit or filter).
        """
        self.matrix = matrix
        self.image.setImage(matrix, levels=(0.0, float(matrix.max()) or 1.0))
        self.labels = labels
        self._label_axes()
        self.plot.setLabel("left", f"output {thing}" if rollout else f"query {thing}")
        self.plot.setLabel("bottom", f"input {thing}" if rollout else f"key {thing}")
        rows, columns = matrix.shape
        # Zooming in bottoms out at two cells; the view cannot wander far off the matrix. The
        # margins are wide because a narrow panel (the paired view's) with its aspect locked
        # needs a range several times the matrix's height to show every column.
        self.plot.getViewBox().setLimits(
            xMin=-4 * columns, xMax=5 * columns, yMin=-4 * rows, yMax=5 * rows, minXRange=2, minYRange=2
        )
        if zoom_key != self._zoom_key:
            self._zoom_key = zoom_key
            self.zoom_to_all()

    def forget_zoom(self) -> None:
        """Reset the zoom at the next :meth:`show_matrix`, whatever its key."""
        self._zoom_key = None

    def _zoomed_by_user(self, *_: object) -> None:
        self._user_zoomed = True

    def zoom_to_all(self) -> None:
        """Show the whole matrix again."""
        self._user_zoomed = False
        if self.matrix is not None:
            rows, columns = self.matrix.shape
            self.plot.getViewBox().setRange(xRange=(0, columns), yRange=(0, rows), padding=0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        # The key labels' room follows the plot's height (the axes re-fit themselves anyway).
        if watched is self and event.type() == QEvent.Type.Resize and self.labels:
            self._label_axes()
            if not self._user_zoomed:  # after the view box has taken its new size
                QTimer.singleShot(0, self, self._refit)
        return bool(super().eventFilter(watched, event))

    def _refit(self) -> None:
        if not self._user_zoomed:
            self.zoom_to_all()

    def _label_axes(self) -> None:
        """Give both axes the labels; upright key labels may take a fifth of the plot's height."""
        font = self.font()
        self.query_axis.set_labels(self.labels, font)
        longest = min(LONGEST_LABEL, max(MIN_KEY_LABEL, 0.2 * self.height()))
        self.key_axis.set_labels(self.labels, font, longest)
