"""Token axes for the attention heatmap: only the labels that fit, recomputed on every redraw.

A 60-token sentence in a 600-pixel heatmap leaves 10 pixels a cell, less than one line of
text: labelling every token paints one black block. :class:`TokenAxis` asks pyqtgraph's own
hook (:meth:`tickValues`, called with the visible range and the axis length in pixels whenever
the view is resized, zoomed or panned) and answers with the labels that fit without touching:
every k-th token, k from the labels' typical size, then any label that would still overlap its
neighbour (a long word) dropped. Zooming in shows more labels; hovering shows any cell's.

The key axis (at the bottom) writes its labels upright, reading upwards, as matplotlib's
``rotation=90`` does: a label then needs one line's height of the axis, not its whole width,
so about three times as many keys are labelled as with horizontal text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF, QPainter

LABEL_GAP = 4.0  # pixels left free between two labels
LONGEST_LABEL = 110.0  # pixels: longer labels are elided ("Abhängigkeits…"); the hover has them whole


def fitting_labels(
    extents: Sequence[float],
    low: float,
    high: float,
    length: float,
    gap: float = LABEL_GAP,
    overflow: float = 0.0,
) -> list[int]:
    """Which of the cells ``0..n-1`` (centred at ``i + 0.5``) get a label on an axis.

    ``extents[i]`` is label i's size along the axis in pixels, ``low..high`` the visible
    range in data units and ``length`` the axis in pixels. The chosen labels lie inside the
    axis (or past its ends by at most ``overflow``, so that the first and last cells keep
    their labels) and no two of them come closer than ``gap``.
    """
    count = len(extents)
    if count == 0 or length <= 0 or high <= low:
        return []
    scale = length / (high - low)
    first, last = max(0, math.ceil(low - 0.5)), min(count - 1, math.floor(high - 0.5))
    if last < first:
        return []
    visible = sorted(extents[first : last + 1])
    typical = visible[len(visible) // 2]
    step = max(1, math.ceil((typical + gap) / scale))
    chosen: list[int] = []
    end = -math.inf
    for i in range(first - first % step, last + 1, step):
        if i < first:
            continue
        centre = (i + 0.5 - low) * scale
        half = extents[i] / 2
        if centre - half < -overflow or centre + half > length + overflow or centre - half < end + gap:
            continue
        chosen.append(i)
        end = centre + half
    return chosen


class TokenAxis(pg.AxisItem):  # type: ignore[misc]
    """A heatmap axis labelling cell ``i`` (centred at ``i + 0.5``) with ``labels[i]`` where it fits.

    GUI thread only. :attr:`shown` lists the cells labelled at the last redraw. A bottom axis
    writes its labels upright (see the module's note).
    """

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.labels: list[str] = []
        self.shown: list[int] = []
        self._font = QFont()
        self._elided: list[str] = []
        self._extents: list[float] = []
        self._upright = orientation == "bottom"
        self._longest = 0.0  # the widest label: the height upright labels need
        self._overflow = 0  # pixels a label may reach past either end of the axis
        self.setTickFont(self._font)

    def set_labels(
        self, labels: Sequence[str], font: QFont | None = None, longest: float = LONGEST_LABEL
    ) -> None:
        """Label the cells with ``labels`` (in ``font``, else the current one) and redraw.

        Labels wider than ``longest`` pixels are elided: on an upright axis that is the height
        the labels take from the heatmap.
        """
        if font is not None:
            self._font = QFont(font)
            self.setTickFont(self._font)
        metrics = QFontMetricsF(self._font)
        self.labels = list(labels)
        elide = Qt.TextElideMode.ElideRight
        self._elided = [metrics.elidedText(label, elide, longest) for label in labels]
        # Half a line past either end keeps the first and last cells' labels; pyqtgraph draws
        # up to that many pixels past the ends when told (its hideOverlappingLabels margin).
        self._overflow = math.ceil(metrics.height() / 2) + 1
        self.setStyle(hideOverlappingLabels=self._overflow)
        widths = [metrics.horizontalAdvance(label) for label in self._elided]
        self._longest = max(widths, default=0.0)
        if self.orientation in ("left", "right") or self._upright:
            self._extents = [metrics.height()] * len(labels)
        else:
            self._extents = widths
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:  # noqa: N802, N803
        # An inverted axis hands its range over high end first.
        low, high = min(minVal, maxVal), max(minVal, maxVal)
        self.shown = fitting_labels(self._extents, low, high, size, overflow=self._overflow)
        return [(1.0, [i + 0.5 for i in self.shown])]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [self._elided[int(value)] if 0 <= int(value) < len(self._elided) else "" for value in values]

    def generateDrawSpecs(self, p: QPainter) -> Any:  # noqa: N802
        """pyqtgraph's specs; on an upright axis each label's rectangle is the upright text's."""
        specs = super().generateDrawSpecs(p)
        if not self._upright or specs is None:
            return specs
        axis_spec, tick_specs, _ = specs
        bounds = self.mapRectFromParent(self.geometry())
        low, high = self.range
        if high == low:
            return specs
        scale = bounds.width() / (high - low)
        metrics = QFontMetricsF(self._font)
        height = metrics.height()
        top = bounds.top() + max(0, self.style["tickLength"]) + self.style["tickTextOffset"][1]
        text_specs = []
        for i in self.shown:
            x = (i + 0.5 - low) * scale
            width = metrics.horizontalAdvance(self._elided[i])
            rect = QRectF(x - height / 2, top, height, width)
            flags = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            text_specs.append((rect, flags, self._elided[i]))
        return axis_spec, tick_specs, text_specs

    def drawPicture(self, p: QPainter, axisSpec: Any, tickSpecs: Any, textSpecs: Any) -> None:  # noqa: N802, N803
        if not self._upright:
            super().drawPicture(p, axisSpec, tickSpecs, textSpecs)
            return
        super().drawPicture(p, axisSpec, tickSpecs, [])
        p.setFont(self._font)
        p.setPen(self.textPen())
        for rect, flags, text in textSpecs:
            # Rotated a quarter turn to the left about the label's top centre: the text ends at
            # the axis and reads upwards.
            p.save()
            p.translate(rect.center().x(), rect.top())
            p.rotate(-90)
            p.drawText(QRectF(-rect.height(), -rect.width() / 2, rect.height(), rect.width()), flags, text)
            p.restore()

    def _updateMaxTextSize(self, x: int) -> None:  # noqa: N802
        # pyqtgraph sizes the axis for horizontal labels; upright ones need the widest label.
        super()._updateMaxTextSize(math.ceil(self._longest) if self._upright else x)
