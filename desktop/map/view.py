"""The map: one point per row, coloured by a category or a value, with hover text and clicks.

Colouring is either categorical (one scatter item per category, so the legend lists them)
or continuous (one item, a colour per point from a colour map, and the range in the legend).
Moving to new coordinates of the same rows (another layer, another sweep cell) can be
animated, so the eye can follow each point.

At scale the scatter items hold only the rows near the view: when more than
:data:`LOD_POINTS` of them are there (or the density view is on), one image of how many
points fall in each pair of screen pixels is drawn instead, recomputed shortly after the view
moves. Clicks pick the nearest row with numpy either way, and box and lasso selections
(:mod:`desktop.map.selection`) test every visible row, drawn as points or not.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from desktop.map import density as map_density
from desktop.map.colours import CodedCategories, category_colours, value_shades
from desktop.map.density import Rows
from desktop.map.glide import Glide
from desktop.map.groups import PointGroups
from desktop.map.labels import BACKGROUND, FOREGROUND, LEGEND_FILL, MUTED, MapLabels, hover_text
from desktop.map.layers import DrawnRange, Points, Rings, add_image, fill_density
from desktop.map.selection import RegionTool

_POINT_PX = 6
# More points than this near the view are drawn as a density image: pyqtgraph paints about
# 0.2 µs a point plus a few ms, so 40k keeps a frame near 15 ms (tests/bench/map_fps.py).
LOD_POINTS = 40_000
# Scatter items (one per colour group) made with the view, so that a first map with up to this
# many groups makes none of them on the GUI thread while jobs run (~0.6 ms each).
_PREMADE_ITEMS = 18
# Points and the density image cover this share of the view's size beyond each edge, so a
# pan shows what was already drawn until the next refresh.
_MARGIN = 0.25
_DENSITY_BIN_PX = 2  # one density pixel per 2 x 2 screen pixels: a lone point stays visible
_REFRESH_MS = 40  # at most one refresh per 40 ms while the view moves
_PICK_PX = 8  # how near (screen pixels) a click must be to a point to pick it
_EVERYWHERE: DrawnRange = ((-np.inf, np.inf), (-np.inf, np.inf))  # the drawn range when all rows are


class MapView(QWidget):
    """Scatter plot of 2-D coordinates. Emits :attr:`row_clicked` with the dataset row and
    :attr:`rows_selected` with a sorted array of rows after a box or lasso."""

    row_clicked = Signal(int)
    rows_selected = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.legend = self.plot.addLegend(
            offset=(10, 10),
            labelTextSize="9pt",
            brush=pg.mkBrush(*LEGEND_FILL[False]),
            labelTextColor=FOREGROUND[False],
        )
        self.coords: npt.NDArray[np.float32] = np.zeros((0, 2), np.float32)
        self._dark = False
        self._groups = PointGroups(self.plot, self.legend, self._new_points)
        self._group_of = np.zeros(0, np.intp)  # the item that draws each row (-1: none)
        self._shade_of: Rows | None = None  # each row's shade in _shades (colour by value)
        self._shades: npt.NDArray[np.object_] | None = None  # the brush of each shade in _shade_table
        self._shade_table = np.zeros((0, 4), np.uint8)
        self._colours = np.zeros((0, 4), np.uint8)  # RGBA per row, for the density image
        self._density_inputs: tuple[Any, ...] | None = None  # what the shown image was drawn from
        self._sizes: npt.NDArray[np.float32] | None = None
        self._visible: Rows | None = None
        self._density_forced = False
        self._muted: int | None = None  # the item of the muted category (grey), if any
        self._labels = MapLabels(self.plot)
        self._texts: Sequence[str] = ()
        self._selected_rows: Rows = np.zeros(0, np.intp)
        self._match_rows: Rows | None = None
        self._selected = Rings(self.plot, "#dd0000", 16, 2, z=10)
        self._matches = Rings(self.plot, "#ff8c00", 11, 1.5, z=9)
        # Two invisible points at the corners of all the data: the items hold only the rows
        # near the view, and "reset zoom" (autorange) must still see everything.
        self._bounds = pg.ScatterPlotItem(size=map_density.LARGEST_PX, pen=None, brush=None)
        self.plot.addItem(self._bounds)
        self.density = add_image(self.plot, z=-1)
        self._refresh_timer = QTimer(self, singleShot=True, interval=_REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        # What the setters change is drawn in later turns of the event loop, once: see draw_pending.
        self._redraw_wanted = False
        self._rings_wanted = False  # the rings wait a turn after the points they go with
        self._pending_timer = QTimer(self, singleShot=True, interval=0)
        self._pending_timer.timeout.connect(self._pending_step)
        self._drawn: DrawnRange = ((0.0, 0.0), (0.0, 0.0))  # what the last refresh drew: view and margin
        self._refreshed_at = 0.0  # time.monotonic() of the last refresh
        self.plot.getViewBox().sigRangeChanged.connect(self._on_range_changed)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.region_tool = RegionTool(self.plot_widget)
        self.region_tool.region_drawn.connect(self._on_region)
        self.region_tool.clicked.connect(self._pick)
        self._glide = Glide(self._glide_to, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        # Made now, while nothing runs, rather than when the first map lands with jobs running.
        self._groups.grow(_PREMADE_ITEMS)

    # -- what is shown -------------------------------------------------------------------

    def set_points(
        self,
        coords: npt.NDArray[np.float32],
        labels: Sequence[str] | CodedCategories,
        texts: Sequence[str],
        title: str,
    ) -> None:
        """Show ``coords`` (one row per dataset row) coloured by ``labels``; replaces everything.

        Sizes and the row filter are cleared: they belonged to the previous rows.
        """
        self._glide.stop()
        self._texts = texts
        self.coords = np.asarray(coords, np.float32)
        self._sizes, self._visible = None, None
        self._selected_rows, self._match_rows = np.zeros(0, np.intp), None
        self.set_annotations([])
        # Nothing of the old points may count when the view fits itself to the new ones.
        for item in self._items:
            item.clear()
        self._selected.clear()
        self._matches.clear()
        # The fit below moves the view: the items are drawn for the new rows in a later turn,
        # never refreshed now from the old rows' groups (an IndexError when there were fewer).
        self._draw_soon()
        self._set_bounds()
        self.plot.setTitle(title)
        self.plot.enableAutoRange()
        self.plot.getViewBox().updateAutoRange()  # now, not at the next paint: the refresh needs it
        self.set_categories(labels)

    def set_categories(
        self,
        categories: Sequence[str] | npt.NDArray[np.str_] | CodedCategories,
        *,
        muted: str | None = None,
        legend: bool = True,
    ) -> None:
        """Colour the current points by a category per row, one legend entry per category.

        ``muted`` (for example cluster noise) is drawn grey, under the others; without
        ``legend`` the categories are named some other way (cluster names drawn on the map).
        """
        groups, group_of, self._colours = category_colours(categories, muted, MUTED[self._dark])
        self._shade_of = None
        self._muted = 0 if muted is not None and groups and groups[0][0] == muted else None
        self._rebuild(
            [(name or "(no label)", pg.mkBrush(colour)) for name, colour in groups], group_of, legend=legend
        )

    def set_values(self, values: npt.NDArray[np.floating[Any]], name: str) -> None:
        """Colour the current points by a number per row (viridis: dark low, yellow high)."""
        levels, table, low, high = value_shades(values)
        self._colours = table[levels]
        # A brush per shade (kept: pyqtgraph's atlas holds them), looked up per drawn row, not per row.
        if self._shades is None or not np.array_equal(self._shade_table, table):
            self._shade_table, self._shades = table, np.empty(len(table), dtype=object)
            self._shades[:] = [pg.mkBrush(*colour) for colour in table]
        self._shade_of, self._muted = levels, None
        legend, middle = f"{name}: {low:.2f} (dark) to {high:.2f} (yellow)", self._shades[len(table) // 2]
        self._rebuild([(legend, middle)], np.zeros(len(levels), np.intp))

    def set_sizes(self, values: npt.NDArray[np.floating[Any]] | None, name: str = "") -> None:
        """Size each point by a number per row (3 to 14 px, NaN smallest); None: one size.

        ``name`` is the column, for the caller's own labels; the sizes outlast recolouring
        and :meth:`move_to`, and are cleared by :meth:`set_points`.
        """
        if values is None and self._sizes is None:
            return  # nothing changes: a refresh at 200k rows costs ~90 ms of the GUI thread
        self._sizes = None if values is None else map_density.sizes_from_values(values)
        self._draw_soon()

    def set_visible_rows(self, rows: npt.NDArray[np.intp] | None) -> None:
        """Draw (and let the user hover, click and select) only ``rows``; None: every row."""
        visible = None if rows is None else np.array(rows, np.intp)  # a copy: the caller keeps theirs
        if visible is not None and not bool(np.all(visible[1:] > visible[:-1])):
            visible = np.unique(visible)  # the filter's rows are ascending already: no sort then
        if _same_rows(visible, self._visible):
            return
        self._visible = visible
        self._draw_soon()

    def set_density(self, on: bool) -> None:
        """Draw the density image at every zoom (on), or only when too many points are in view."""
        if on == self._density_forced:
            return
        self._density_forced = on
        self._draw_soon()

    def set_tool(self, name: str) -> None:
        """The left mouse button's job: "pan" (and zoom), "box" or "lasso" selection."""
        self.region_tool.set_tool(name)

    @property
    def tool(self) -> str:
        return self.region_tool.name

    def set_dark(self, dark: bool) -> None:
        """A dark background with light text, or the light look."""
        self._dark = dark
        foreground = FOREGROUND[dark]
        self.plot_widget.setBackground(BACKGROUND[dark])
        # LabelItem keeps the colour in its options, so later titles are light too.
        self.plot.titleLabel.setText(self.plot.titleLabel.text, color=foreground)
        self.legend.setBrush(pg.mkBrush(*LEGEND_FILL[dark]))
        self.legend.setLabelTextColor(foreground)
        self._labels.set_dark(dark)
        if self._muted is not None:  # light grey on dark would shout; dark grey recedes
            self._groups.recoloured(self._muted, pg.mkBrush(MUTED[dark]))
            self._colours = self._colours.copy()  # a new array: the density image is redrawn
            self._colours[self._group_of == self._muted] = pg.mkColor(MUTED[dark]).getRgb()
            self._draw_soon()

    def view_range(self) -> tuple[float, float, float, float]:
        """The shown part of the map as (x0, x1, y0, y1) in data coordinates."""
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        return float(x0), float(x1), float(y0), float(y1)

    def set_view_range(self, x0: float, x1: float, y0: float, y1: float) -> None:
        """Show this part of the map (as :meth:`view_range` gave it), redrawn at once."""
        self.plot.getViewBox().setRange(
            xRange=(float(x0), float(x1)), yRange=(float(y0), float(y1)), padding=0
        )
        self._refresh()

    def move_to(self, coords: npt.NDArray[np.float32], *, animate: bool = True) -> None:
        """Move the same rows to new coordinates, gliding there over a quarter of a second."""
        coords = np.asarray(coords, np.float32)
        if coords.shape != self.coords.shape or not animate:
            self._glide.stop()
            self._glide_to(coords)
            return
        self._glide.start(self.coords, coords)

    def set_annotations(self, annotations: Sequence[tuple[float, float, str]]) -> None:
        """Text drawn on the map at data coordinates, for example cluster names."""
        self._labels.show(annotations)

    @property
    def annotations(self) -> list[str]:
        return self._labels.texts

    def show_selected(self, row: int | None) -> None:
        self.set_selection([] if row is None else [row])

    def set_selection(self, rows: Sequence[int] | npt.NDArray[np.intp]) -> None:
        """Ring the selected rows (the selection the table shares); filtered-out rows are not drawn."""
        chosen = np.asarray(rows, dtype=np.intp)
        self._selected_rows = chosen[(chosen >= 0) & (chosen < len(self.coords))]
        self._draw_rings()

    @property
    def selected_rows(self) -> list[int]:
        return [int(row) for row in self._selected_rows]

    def set_matches(self, rows: npt.NDArray[np.intp] | None) -> None:
        """Ring the rows a search matched in orange (None: no search)."""
        self._match_rows = None if rows is None else np.asarray(rows, dtype=np.intp)
        self._draw_rings()

    @property
    def match_count(self) -> int:
        return 0 if self._match_rows is None else len(self._match_rows)

    def click_row(self, row: int) -> None:
        """Act as if the user clicked the point of ``row`` (keyboard navigation, tests)."""
        self.show_selected(row)
        self.row_clicked.emit(row)

    @property
    def density_shown(self) -> bool:
        """Whether the points are drawn as a density image right now."""
        return bool(self.density.isVisible())

    @property
    def visible_rows(self) -> Rows:
        """The rows the filter lets through (every row without a filter)."""
        return np.arange(len(self.coords)) if self._visible is None else self._visible

    # -- drawing -------------------------------------------------------------------------

    def draw_pending(self) -> None:
        """Draw now what the setters asked for, rather than in the next turns of the event loop.

        A new map sets points and colours, then the filter, sizes and density view again;
        each used to draw at once, so with a filter and sizes on the rows near the view were
        sorted out and the density image made three times. Now the points are drawn once, a
        turn later, and the legend a turn after that. Each turn ends with a paint and a
        chance to react: at 200,000 rows a first map's colours, points and legend (~10, ~12
        and ~8 ms) were one turn of ~45 ms with its paint. Whatever must see the drawn items
        or the legend at once (tests, a screenshot) calls this first.
        """
        if self._redraw_wanted:
            self._refresh()
        if self._rings_wanted:
            self._draw_rings()
        if self._groups.legend_wanted:
            self._groups.fill_legend()

    @property
    def draw_is_pending(self) -> bool:
        """Whether points, rings or the legend wait to be drawn (at the next turns of the event loop)."""
        return self._redraw_wanted or self._rings_wanted or self._groups.legend_wanted

    def _draw_soon(self) -> None:
        self._redraw_wanted = True
        if not self._pending_timer.isActive():
            self._pending_timer.start()

    def _pending_step(self) -> None:
        """One piece of the waiting work per turn: the points, the rings, then the legend (at 1M
        rows, a third selected, the points' and rings' images were one ~40 ms turn together)."""
        if self._redraw_wanted:
            self._refresh(rings=False)
        elif self._rings_wanted:
            self._draw_rings()
        elif self._groups.legend_wanted:
            self._groups.fill_legend()
        if self.draw_is_pending:
            self._pending_timer.start()

    @property
    def _items(self) -> list[Points]:
        return self._groups.items

    def _rebuild(self, groups: Sequence[tuple[str, Any]], group_of: Rows, *, legend: bool = True) -> None:
        """Draw the rows of each of ``groups`` (name, brush) with a scatter item of its own
        (:class:`PointGroups`); ``group_of`` gives each row's group. Drawn a turn later (see
        draw_pending), the legend after the points."""
        self._group_of = group_of
        self._groups.set_groups(groups, legend=legend)
        self._draw_soon()

    def _new_points(self) -> Points:
        return Points(size=_POINT_PX, pen=None, hoverable=True, hoverSize=10, tip=self._tip)

    def _refresh(self, *, rings: bool = True) -> None:
        """Draw the visible rows near the view: as points, or as one density image; rings now or a turn later.

        When all the visible rows are few enough they are all drawn, once: pyqtgraph leaves
        out those off screen by itself, and a pan then costs no refresh at all.
        """
        self._refresh_timer.stop()
        self._redraw_wanted = False
        self._refreshed_at = time.monotonic()
        visible = self._visible
        coords = self.coords if visible is None else self.coords[visible]
        few = len(coords) <= LOD_POINTS and not self._density_forced
        self._drawn = _EVERYWHERE if few else self._drawn_range()
        near_mask = map_density.in_range_mask(coords, *self._drawn)
        dense = self._density_forced or int(np.count_nonzero(near_mask)) > LOD_POINTS
        self.density.setVisible(dense)
        near = np.zeros(0, np.intp)
        if dense:
            inputs = (self.coords, self._colours, visible, self._drawn, self._bins())
            if not self._same_density_inputs(inputs):
                colours = self._colours if visible is None else self._colours[visible]
                fill_density(self.density, coords, colours, self._drawn, self._bins())
                self._density_inputs = inputs
        else:
            near = np.flatnonzero(near_mask) if visible is None else visible[near_mask]
        # The rows near the view by item, each item's ascending (a stable sort of small numbers).
        group = self._group_of[near]
        order = np.argsort(group, kind="stable")
        by_group, ends = near[order], np.searchsorted(group[order], np.arange(len(self._items) + 1))
        for index, item in enumerate(self._items):
            self._draw_points(item, by_group[ends[index] : ends[index + 1]])
        self._rings_wanted = True  # until drawn: now, or by the next turn
        if rings:
            self._draw_rings()

    def _same_density_inputs(self, inputs: tuple[Any, ...]) -> bool:
        """Whether the image on show was drawn from these very arrays, range and size.

        The arrays are compared by identity (every setter replaces them, never writes into
        them), so toggling the density box or a refresh that changes nothing costs no new
        image: 15-25 ms of the GUI thread at 200,000 rows.
        """
        shown = self._density_inputs
        if shown is None:
            return False
        arrays_same = all(a is b for a, b in zip(shown[:3], inputs[:3], strict=True))
        return arrays_same and shown[3:] == inputs[3:]

    def _drawn_range(self) -> tuple[tuple[float, float], tuple[float, float]]:
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        dx, dy = (x1 - x0) * _MARGIN, (y1 - y0) * _MARGIN
        return (x0 - dx, x1 + dx), (y0 - dy, y1 + dy)

    def _bins(self) -> tuple[int, int]:
        """The size (width, height) of an image of the drawn range, a pixel per 2 x 2 on screen."""
        scale = (1 + 2 * _MARGIN) / _DENSITY_BIN_PX
        viewport = self.plot.getViewBox().size()
        return max(1, int(viewport.width() * scale)), max(1, int(viewport.height() * scale))

    def _draw_points(self, item: pg.ScatterPlotItem, rows: Rows) -> None:
        if not len(rows) and not len(item.data):
            return  # empty already: setData costs ~0.2 ms an item, and there may be 100 clusters
        points = self.coords[rows]
        options: dict[str, Any] = {"size": _POINT_PX if self._sizes is None else self._sizes[rows]}
        if self._shade_of is not None and self._shades is not None:
            options["brush"] = self._shades[self._shade_of[rows]]
        item.setData(x=points[:, 0], y=points[:, 1], data=rows, **options)

    def _draw_rings(self) -> None:
        """Ring the selected and the matched rows that are drawn."""
        self._rings_wanted = False
        matched = np.zeros(0, np.intp) if self._match_rows is None else self._match_rows
        for rings, rows in ((self._selected, self._selected_rows), (self._matches, matched)):
            rows = rows[(rows >= 0) & (rows < len(self.coords))]
            if self._visible is not None:
                rows = rows[np.isin(rows, self._visible)]
            rings.show(self.coords, rows, self._drawn, self._bins())

    def _set_bounds(self) -> None:
        if not len(self.coords):
            self._bounds.clear()
            return
        x, y = self.coords[:, 0], self.coords[:, 1]  # a column at a time: min(axis=0) is 15 times slower
        self._bounds.setData(x=[x.min(), x.max()], y=[y.min(), y.max()])

    def _place(self) -> None:
        self._set_bounds()
        self._refresh()

    def _glide_to(self, coords: npt.NDArray[np.float32]) -> None:
        """One frame of a move (:meth:`move_to`), or the whole move at once."""
        self.coords = coords
        self._place()

    # -- the mouse -----------------------------------------------------------------------

    def _on_range_changed(self, *_: Any) -> None:
        # What was drawn still covers a small pan or zoom (the margin): nothing to recompute.
        if self._still_covered() or self._refresh_timer.isActive() or self._redraw_wanted:
            return  # (a pending draw draws the range as it is by then)
        # At once, so no blank edge shows; but at most once per _REFRESH_MS while the view moves.
        wait = _REFRESH_MS - (time.monotonic() - self._refreshed_at) * 1000
        if wait <= 0:
            self._refresh()
        else:
            self._refresh_timer.start(int(wait) + 1)

    def _still_covered(self) -> bool:
        """Whether the last refresh drew all of the view, at nearly the view's scale."""
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        return self._drawn is _EVERYWHERE or map_density.covers(self._drawn, (x0, x1, y0, y1), _MARGIN)

    def _tip(self, x: float, y: float, data: Any) -> str:
        return hover_text(self._texts, int(data))

    def _on_scene_clicked(self, event: Any) -> None:
        if event.button() != pg.QtCore.Qt.MouseButton.LeftButton or event.double():
            return
        point = self.plot.getViewBox().mapSceneToView(event.scenePos())
        self._pick(point.x(), point.y())

    def row_at(self, x: float, y: float) -> int | None:
        """The row drawn nearest to (x, y) in data coordinates, if one is close enough to pick."""
        x_size, y_size = self.plot.getViewBox().viewPixelSize()
        scale = (1 / x_size if x_size else 0.0, 1 / y_size if y_size else 0.0)
        return map_density.nearest_row(self.coords, self.visible_rows, x, y, scale, _PICK_PX)

    def _pick(self, x: float, y: float) -> None:
        row = self.row_at(x, y)
        if row is not None:
            self.click_row(row)

    def _on_region(self, polygon: npt.NDArray[np.float64], additive: bool) -> None:
        rows = map_density.rows_in_polygon(self.coords, self.visible_rows, polygon)
        if additive:
            rows = np.union1d(self._selected_rows, rows).astype(np.intp)
        self.set_selection(rows)
        self.rows_selected.emit(rows)


def _same_rows(a: npt.NDArray[np.intp] | None, b: npt.NDArray[np.intp] | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b))
