"""The map's words: the light and dark looks' colours, cluster names drawn on the map, and the
text a hovered point shows. GUI thread only.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import QRectF, QTimer
from shiboken6 import isValid

MUTED = {False: "#d0d0d0", True: "#555555"}  # by dark: a muted category (cluster noise)
BACKGROUND = {False: "#ffffff", True: "#1e1e1e"}
FOREGROUND = {False: "#222222", True: "#dddddd"}
LEGEND_FILL = {False: (255, 255, 255, 210), True: (40, 40, 40, 210)}
_TIP_CHARACTERS = 4000  # shortening a 1 MB text whole took 0.4 s of the GUI thread per hover

Annotation = tuple[float, float, str]  # x, y (data coordinates), text


class MapLabels:
    """Texts drawn on ``plot`` at data coordinates, for example cluster names, over the points."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.dark = False
        self._items: list[pg.TextItem] = []
        # Names that would cover each other are hidden, the later ones first, whenever the view
        # moves or resizes: on a half-width map (a comparison) 30 names piled into one grey block.
        # Owned by the view box: the timer dies with the map, never firing on deleted texts.
        self._declutter_soon = QTimer(plot.getViewBox(), interval=0, singleShot=True)
        self._declutter_soon.timeout.connect(self.declutter)
        plot.getViewBox().sigRangeChanged.connect(self._declutter_soon.start)
        plot.getViewBox().sigResized.connect(self._declutter_soon.start)

    def show(self, annotations: Sequence[Annotation]) -> None:
        """Replace the texts on the map with ``annotations``."""
        for item in self._items:
            self.plot.removeItem(item)
        self._items = []
        fill = pg.mkBrush(*LEGEND_FILL[self.dark][:3], 190)
        for x, y, text in annotations:
            item = pg.TextItem(text, color=FOREGROUND[self.dark], anchor=(0.5, 0.5), fill=fill)
            item.setPos(x, y)
            item.setZValue(20)
            self.plot.addItem(item)
            self._items.append(item)
        self._declutter_soon.start()

    def declutter(self) -> None:
        """Show each name unless it would overlap one shown before it (in the given order)."""
        view_box = self.plot.vb
        if not (isValid(self.plot) and isValid(view_box)):  # the map is gone: nothing to arrange
            return
        shown: list[QRectF] = []
        for item in self._items:
            if not isValid(item.textItem):  # the map is being torn down
                return
            # From the anchor point and the text's size in pixels (a hidden TextItem's own
            # transform is stale: it is only brought up to date while it is visible).
            size = item.boundingRect().size()
            centre = view_box.mapViewToScene(item.pos())
            rect = QRectF(
                centre.x() - size.width() / 2, centre.y() - size.height() / 2, size.width(), size.height()
            )
            free = not any(rect.intersects(other) for other in shown)
            item.setVisible(free)
            if free:
                shown.append(rect)

    @property
    def shown_texts(self) -> list[str]:
        """The names not hidden by :meth:`declutter`."""
        return [item.toPlainText() for item in self._items if item.isVisible()]

    def set_dark(self, dark: bool) -> None:
        """Draw the same texts in the dark (or light) look."""
        self.dark = dark
        self.show([(item.pos().x(), item.pos().y(), item.toPlainText()) for item in self._items])

    @property
    def texts(self) -> list[str]:
        return [item.toPlainText() for item in self._items]


def hover_text(texts: Sequence[str], row: int) -> str:
    """What hovering over ``row``'s point shows: its number and the start of its text."""
    text = texts[row] if 0 <= row < len(texts) else ""
    return f"row {row}\n" + textwrap.fill(textwrap.shorten(text[:_TIP_CHARACTERS], 400), 70)
