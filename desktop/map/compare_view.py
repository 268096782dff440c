"""A comparison's second map beside the first, linked to it through the application model.

:class:`MapPair` is the map area: the first map where it always was and, while a comparison is
on show, a second :class:`~desktop.map.view.MapView` beside it (a splitter), each titled with
its side's model, layer and pooling, and the whole-space scores above both.
:class:`ComparePresenter` follows ``model.comparison``: it draws the other side's map (aligned
onto the first), and gives it what the first map has, from the model, never from the other
view: the selection, the filter, the search, and (through the first map's presenter) the
colouring, sizes and density; hover is linked by :class:`~desktop.map.hover.HoverLink`. Box,
lasso and clicks on the second map go into the model like the first map's. GUI thread only.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from desktop.map.hover import HoverLink
from desktop.map.presenter import MapPresenter
from desktop.map.view import MapView
from desktop.model.comparison import COMPARE_COLOURINGS, scores_line, side_title
from desktop.model.document import AppModel
from engine.api.types import Comparison


def _titled(view: MapView, title: QLabel) -> QWidget:
    panel = QWidget()
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    title.setAlignment(Qt.AlignmentFlag.AlignCenter)
    title.setVisible(False)
    layout.addWidget(title)
    layout.addWidget(view, 1)
    return panel


class MapPair(QWidget):
    """The first map and, in comparison mode, the second beside it, with their titles."""

    def __init__(self, first: MapView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.first, self.second = first, MapView()
        self.scores = QLabel("")
        self.scores.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.scores.setVisible(False)
        self.first_title, self.second_title = QLabel(""), QLabel("")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(_titled(first, self.first_title))
        self.second_panel = _titled(self.second, self.second_title)
        self.second_panel.setVisible(False)
        self.splitter.addWidget(self.second_panel)
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.scores)
        layout.addWidget(self.splitter, 1)

    @property
    def comparing(self) -> bool:
        return not self.second_panel.isHidden()

    def show_titles(self, comparison: Comparison | None) -> None:
        """Each side's model, layer and pooling over its map, the scores over both; None: one map."""
        on = comparison is not None
        for label in (self.scores, self.first_title, self.second_title):
            label.setVisible(on)
        self.second_panel.setVisible(on)
        if comparison is None:
            return
        self.first_title.setText(f"<b>A</b> · {side_title(comparison.base)}")
        self.second_title.setText(f"<b>B</b> · {side_title(comparison.against)} (aligned to A)")
        self.scores.setText(scores_line(comparison))
        width = max(2, self.splitter.width())
        self.splitter.setSizes([width // 2, width - width // 2])


class ComparePresenter(QObject):
    """Draws ``model.comparison``'s second map in ``pair`` and keeps it linked to the first."""

    def __init__(self, model: AppModel, first: MapPresenter, pair: MapPair) -> None:
        super().__init__(pair)
        self.model, self.first, self.pair = model, first, pair
        second = pair.second
        self.hover = HoverLink(pair.first, second)
        model.comparison_changed.connect(self._on_comparison)
        model.selection_changed.connect(lambda rows: self._when_shown(second.set_selection, rows))
        model.filter_changed.connect(
            lambda _: self._when_shown(second.set_visible_rows, model.kept_rows_or_none())
        )
        model.search_changed.connect(lambda search: self._when_shown(second.set_matches, search.matches))
        second.rows_selected.connect(model.select)
        first.controls.tool_changed.connect(second.set_tool)

    def _when_shown(self, draw: object, value: object) -> None:
        if self.model.comparison is not None:
            draw(value)  # type: ignore[operator]

    def _on_comparison(self, comparison: Comparison | None) -> None:
        model, second = self.model, self.pair.second
        self.pair.show_titles(comparison)
        self.first.controls.set_extra_colourings(COMPARE_COLOURINGS if comparison is not None else {})
        dataset = model.dataset
        if comparison is None or dataset is None:
            self.first.unfollow(second)
            self.hover.hovered(self.pair.first, second, None)
            return
        second.set_tool(self.pair.first.tool)
        second.set_points(comparison.against.map.coords, self.first.labels(), dataset.texts, self.first.title)
        second.set_visible_rows(model.kept_rows_or_none())
        second.set_selection(model.selection)
        second.set_matches(model.search.matches)
        self.first.follow(second)
