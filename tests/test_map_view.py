"""The map at scale and its mouse tools: density image, level of detail, box and lasso,
sizes, the row filter, the dark look and the view range.

Mouse tests send real press/move/release events to the plot's viewport, as a user's drag
would arrive, on a grid whose rows are known by position.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop.map import colours as map_colours
from desktop.map import density as map_density
from desktop.map.view import LOD_POINTS, MapView

SIDE = 10  # the grid is SIDE x SIDE points at whole coordinates, row = y * SIDE + x


def grid() -> npt.NDArray[np.float32]:
    y, x = np.divmod(np.arange(SIDE * SIDE), SIDE)
    return np.column_stack([x, y]).astype(np.float32)


def grid_row(x: int, y: int) -> int:
    return y * SIDE + x


def shown_map(qtbot: QtBot, width: int, height: int) -> MapView:
    map_view = MapView()
    qtbot.addWidget(map_view)
    map_view.resize(width, height)
    map_view.show()
    qtbot.waitExposed(map_view)
    return map_view


@pytest.fixture
def view(qtbot: QtBot) -> MapView:
    map_view = shown_map(qtbot, 600, 600)
    coords = grid()
    map_view.set_points(coords, [str(i % 3) for i in range(len(coords))], [""] * len(coords), "grid")
    map_view.set_view_range(-1, SIDE, -1, SIDE)
    return map_view


def pixel(view: MapView, x: float, y: float) -> QPoint:
    """Where the data point (x, y) is on the plot's viewport."""
    scene = view.plot.getViewBox().mapViewToScene(pg.Point(x, y))
    return view.plot_widget.mapFromScene(scene)


def send(view: MapView, kind: QEvent.Type, at: QPoint, shift: bool = False, held: bool = True) -> None:
    buttons = (
        Qt.MouseButton.LeftButton
        if held and kind != QEvent.Type.MouseButtonRelease
        else Qt.MouseButton.NoButton
    )
    modifiers = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
    viewport = view.plot_widget.viewport()
    event = QMouseEvent(
        kind, QPointF(at), QPointF(viewport.mapToGlobal(at)), Qt.MouseButton.LeftButton, buttons, modifiers
    )
    QApplication.sendEvent(viewport, event)


def drag(view: MapView, path: Sequence[tuple[float, float]], shift: bool = False) -> None:
    """A left-button drag through the data points of ``path``, with a few steps between them."""
    points = [pixel(view, x, y) for x, y in path]
    send(view, QEvent.Type.MouseButtonPress, points[0], shift)
    for start, end in itertools.pairwise(points):
        for t in np.linspace(0, 1, 5)[1:]:
            send(view, QEvent.Type.MouseMove, start + (end - start) * float(t), shift)
    send(view, QEvent.Type.MouseButtonRelease, points[-1], shift)


LASSO = [(0.5, 0.5), (8.5, 0.5), (8.5, 8.5), (8.0, 8.9)]  # about the triangle x >= y


def test_lasso_selects_exactly_the_rows_inside_and_shift_adds(qtbot: QtBot, view: MapView) -> None:
    view.set_tool("lasso")
    with qtbot.waitSignal(view.rows_selected) as blocker:
        drag(view, LASSO)
    [rows] = blocker.args
    assert isinstance(rows, np.ndarray) and rows.tolist() == sorted(rows.tolist())
    # The closing edge runs from (8.0, 8.9) to (0.5, 0.5), a little above the diagonal, so the
    # lasso holds the points on and below the diagonal (x >= y), from 1 to 8.
    expected = sorted(grid_row(x, y) for y in range(1, 9) for x in range(1, 9) if x >= y)
    assert rows.tolist() == expected
    assert view.selected_rows == expected
    with qtbot.waitSignal(view.rows_selected) as blocker:
        drag(view, [(-0.5, 8.5), (2.5, 8.5), (2.5, 9.5), (-0.5, 9.5)], shift=True)
    added = [grid_row(x, 9) for x in range(3)]
    assert blocker.args[0].tolist() == sorted([*expected, *added])
    assert view.selected_rows == sorted([*expected, *added])


def test_box_selects_the_rows_in_the_rectangle_and_shift_adds(qtbot: QtBot, view: MapView) -> None:
    view.set_tool("box")
    before = view.view_range()
    with qtbot.waitSignal(view.rows_selected) as blocker:
        drag(view, [(1.5, 2.5), (3.5, 4.5)])
    assert view.view_range() == before, "drawing a box does not pan the map"
    box = sorted(grid_row(x, y) for x in (2, 3) for y in (3, 4))
    assert blocker.args[0].tolist() == box
    with qtbot.waitSignal(view.rows_selected) as blocker:
        drag(view, [(8.5, 8.5), (9.5, 9.5)], shift=True)
    assert blocker.args[0].tolist() == sorted([*box, grid_row(9, 9)])
    # Without Shift a new box replaces the selection.
    with qtbot.waitSignal(view.rows_selected) as blocker:
        drag(view, [(-0.5, -0.5), (0.5, 0.5)])
    assert blocker.args[0].tolist() == [0] and view.selected_rows == [0]


def test_the_pan_tool_pans_and_selects_nothing(qtbot: QtBot, view: MapView) -> None:
    view.set_tool("box")
    assert view.tool == "box"
    view.set_tool("pan")
    before = view.view_range()
    with qtbot.assertNotEmitted(view.rows_selected):
        drag(view, [(2, 2), (6, 2)])
    after = view.view_range()
    assert after[0] < before[0] - 2, "dragging right moves the view left"
    with pytest.raises(ValueError, match="unknown map tool"):
        view.set_tool("wand")


def test_filtered_out_rows_are_not_drawn_selected_or_clicked(qtbot: QtBot, view: MapView) -> None:
    even = np.arange(0, SIDE * SIDE, 2)
    view.set_visible_rows(even)
    view.draw_pending()
    drawn = sorted(int(row) for item in view._items for row in item.data["data"])
    assert drawn == even.tolist()
    view.set_tool("box")
    with qtbot.waitSignal(view.rows_selected) as blocker:
        drag(view, [(-0.5, -0.5), (3.5, 0.5)])
    assert blocker.args[0].tolist() == [0, 2]
    with qtbot.assertNotEmitted(view.row_clicked):
        view._pick(1.0, 0.0)  # on a hidden point, and farther than a click's reach from others
    view.set_visible_rows(None)
    view.draw_pending()
    assert sum(len(item.data) for item in view._items) == SIDE * SIDE


def test_a_click_in_box_mode_picks_the_point(qtbot: QtBot, view: MapView) -> None:
    view.set_tool("box")
    with qtbot.waitSignal(view.row_clicked) as blocker:
        qtbot.mouseClick(view.plot_widget.viewport(), Qt.MouseButton.LeftButton, pos=pixel(view, 4, 7))
    assert blocker.args == [grid_row(4, 7)]


def test_sizes_follow_a_column_through_recolouring_and_moves(view: MapView) -> None:
    values = np.arange(SIDE * SIDE, dtype=float)
    values[5] = np.nan
    view.set_sizes(values, "index")

    def drawn_sizes() -> dict[int, float]:
        view.draw_pending()
        # pyqtgraph keeps -1 for "the item's own size".
        return {
            int(row): float(size if size >= 0 else item.opts["size"])
            for item in view._items
            for row, size in zip(item.data["data"], item.data["size"], strict=True)
        }

    sizes = drawn_sizes()
    assert sizes[0] == sizes[5] == map_density.SMALLEST_PX
    assert sizes[99] == map_density.LARGEST_PX and sizes[50] > sizes[10]
    view.set_values(values, "index")
    assert drawn_sizes() == sizes
    view.move_to(grid() * 0.5, animate=False)
    assert drawn_sizes() == sizes
    view.set_sizes(None)
    assert set(drawn_sizes().values()) == {6.0}


def test_a_move_glides_to_the_new_layout_and_draws_it(qtbot: QtBot, view: MapView) -> None:
    target = grid() * 2 + 1
    view.move_to(target)
    assert not np.allclose(view.coords, target), "it glides, it does not jump"
    qtbot.waitUntil(lambda: not view._glide.moving, timeout=2000)
    assert np.array_equal(view.coords, target)
    drawn = {
        int(row): (float(x), float(y))
        for item in view._items
        for row, x, y in zip(item.data["data"], item.data["x"], item.data["y"], strict=True)
    }
    assert drawn == {row: (float(x), float(y)) for row, (x, y) in enumerate(target)}


def test_density_counts_and_image_match_the_points() -> None:
    coords = np.array([[0.1, 0.1], [0.2, 0.3], [3.9, 0.1], [2.5, 1.5], [4.0, 2.0], [9, 9]], np.float32)
    counts, bins = map_density.density_counts(coords, (0, 4), (0, 2), 4, 2)
    # Row 0 is the bottom; the point on the top-right corner goes to the last bin; the point
    # outside gets the bin past the end.
    assert counts.tolist() == [[2, 0, 0, 1], [0, 0, 1, 1]]
    assert bins.tolist() == [0, 0, 3, 6, 7, 8]
    red, blue = [255, 0, 0, 255], [0, 0, 255, 255]
    colours = np.array([red, blue, red, red, red, red], np.uint8)
    image = map_density.density_image(coords, colours, (0, 4), (0, 2), 4, 2, spread=0)
    assert image.shape == (2, 4, 4) and image.dtype == np.uint8
    assert image[0, 0, :3].tolist() == [128, 0, 128], "two points blend their colours"
    assert image[0, 1, 3] == 0 and image[0, 3, 3] > 0
    assert image[0, 0, 3] > image[0, 3, 3], "more points, more opaque"
    spread = map_density.density_image(coords, colours, (0, 4), (0, 2), 4, 2, spread=1)
    assert (spread[..., 3] > 0).all(), "each point also covers its neighbouring pixels"


def full_grid_density(
    coords: npt.NDArray[np.float32],
    colours: npt.NDArray[np.uint8],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    width: int,
    height: int,
    spread: int,
) -> npt.NDArray[np.uint8]:
    """The density image computed over every bin of the grid: the plain way, which the map's
    computation of only the bins near the points must match pixel for pixel."""
    counts, bins = map_density.density_counts(coords, x_range, y_range, width, height)
    size = width * height
    sums = np.empty((4, size), np.float32)
    sums[0] = counts.reshape(-1)
    for channel in range(3):
        sums[channel + 1] = np.bincount(bins, weights=colours[:, channel], minlength=size + 1)[:-1]
    sums = map_density._spread(sums.reshape(4, height, width), spread).reshape(4, size)
    count = sums[0]
    image = np.empty((height, width, 4), np.uint8)
    image[..., :3] = np.rint(sums[1:] / np.maximum(count, 1)).reshape(3, height, width).transpose(1, 2, 0)
    depth = np.log1p(count) / max(float(np.log1p(count.max())), 1e-9)
    image[..., 3] = np.where(count > 0, 200 + 55 * depth, 0).reshape(height, width)
    return image


@pytest.mark.parametrize("seed", range(6))
def test_the_density_image_is_computed_near_the_points_only_with_the_same_pixels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    coords, _ = clustered(5_000, seed)
    colours = rng.integers(0, 256, (len(coords), 4)).astype(np.uint8)
    low, high = coords.min(axis=0), coords.max(axis=0)
    windows = [
        ((float(low[0]), float(high[0])), (float(low[1]), float(high[1]))),  # points on every edge
        ((-60.0, 60.0), (-40.0, 40.0)),  # the whole map and a wide margin
        ((-3.0, 4.0), (-2.0, 5.0)),  # zoomed in: most points outside
        ((200.0, 300.0), (200.0, 300.0)),  # no point at all
    ]
    for x_range, y_range in windows:
        width, height = (int(n) for n in rng.integers(5, 300, 2))
        for spread in (0, 1, 2):
            image = map_density.density_image(coords, colours, x_range, y_range, width, height, spread=spread)
            expected = full_grid_density(coords, colours, x_range, y_range, width, height, spread)
            assert np.array_equal(image, expected), (x_range, y_range, width, height, spread)


def test_what_was_drawn_serves_small_pans_and_zooms_only() -> None:
    drawn = ((-1.5, 2.5), (-1.5, 2.5))  # the view (0, 1) with a margin of 1.5 views each side
    assert map_density.covers(drawn, (0, 1, 0, 1), margin=1.5)
    assert map_density.covers(drawn, (1.2, 2.2, 0, 1), margin=1.5), "a pan within the margin"
    assert not map_density.covers(drawn, (2, 3, 0, 1), margin=1.5), "a pan beyond it"
    assert not map_density.covers(drawn, (0.3, 0.7, 0.3, 0.7), margin=1.5), "zoomed in too far"


def test_a_lasso_over_a_million_points_is_fast() -> None:
    import time

    coords = np.random.default_rng(0).uniform(0, 1, (1_000_000, 2)).astype(np.float32)
    triangle = np.array([(0, 0), (1, 0), (0, 1)], float)
    began = time.perf_counter()
    rows = map_density.rows_in_polygon(coords, np.arange(len(coords)), triangle)
    assert time.perf_counter() - began < 1.0
    assert np.all(coords[rows].sum(axis=1) <= 1) and 0.49 < len(rows) / len(coords) < 0.51


def clustered(n: int, seed: int = 0) -> tuple[npt.NDArray[np.float32], list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-20, 20, size=(5, 2))
    category = rng.integers(0, 5, n)
    coords = centres[category] + rng.normal(size=(n, 2))
    return coords.astype(np.float32), [f"c{c}" for c in category]


def test_many_points_are_a_density_image_until_zoomed_in(qtbot: QtBot) -> None:
    view = shown_map(qtbot, 800, 600)
    coords, labels = clustered(3 * LOD_POINTS)
    view.set_points(coords, labels, [""] * len(coords), "many")
    qtbot.waitUntil(lambda: view.density_shown)
    assert sum(len(item.data) for item in view._items) == 0
    image = view.density.image
    assert image is not None and (image[..., 3] > 0).mean() > 0.01
    # Zoomed in on one cluster's edge, the points there are real points again: hoverable.
    x, y = (float(c) for c in coords[0])
    view.set_view_range(x + 1.5, x + 2.5, y - 0.5, y + 0.5)
    assert not view.density_shown
    drawn = np.concatenate([item.data["data"] for item in view._items]).astype(int)
    assert 0 < len(drawn) <= LOD_POINTS
    x0, x1, y0, y1 = view.view_range()
    in_view = (coords[:, 0] >= x0) & (coords[:, 0] <= x1) & (coords[:, 1] >= y0) & (coords[:, 1] <= y1)
    assert set(np.flatnonzero(in_view)) <= set(drawn.tolist())
    # Hovering one of them shows its row.
    row = int(drawn[0])
    send(view, QEvent.Type.MouseMove, pixel(view, *coords[row]), held=False)
    assert view.plot.getViewBox().toolTip().startswith(f"row {row}\n")
    # A pan (as the mouse makes it) well past what was drawn brings the points there.
    view.plot.getViewBox().setRange(xRange=(x - 1.5, x - 0.5), yRange=(y - 0.5, y + 0.5), padding=0)

    def drawn_in_view() -> bool:
        x0, x1, y0, y1 = view.view_range()
        inside = map_density.in_range_mask(coords, (x0, x1), (y0, y1))
        drawn = {int(row) for item in view._items for row in item.data["data"]}
        return bool(inside.any()) and set(np.flatnonzero(inside).tolist()) <= drawn

    qtbot.waitUntil(drawn_in_view, timeout=1000)
    view.set_density(True)
    view.draw_pending()
    assert view.density_shown and sum(len(item.data) for item in view._items) == 0


def test_a_click_on_the_density_image_picks_the_nearest_row(qtbot: QtBot, view: MapView) -> None:
    view.set_density(True)
    view.draw_pending()
    assert view.density_shown
    with qtbot.waitSignal(view.row_clicked) as blocker:
        qtbot.mouseClick(view.plot_widget.viewport(), Qt.MouseButton.LeftButton, pos=pixel(view, 6.05, 2.97))
    assert blocker.args == [grid_row(6, 3)]
    assert view.selected_rows == [grid_row(6, 3)]
    with qtbot.assertNotEmitted(view.row_clicked):
        view._pick(6.5, 2.5)  # between points: too far from all of them


def test_a_large_selection_is_shown_as_an_image(qtbot: QtBot) -> None:
    view = shown_map(qtbot, 400, 300)
    coords, labels = clustered(2 * LOD_POINTS)
    view.set_points(coords, labels, [""] * len(coords), "many")
    view.set_view_range(-25, 25, -25, 25)
    view.set_selection(np.arange(len(coords)))
    rings = view._selected
    assert rings.image.isVisible() and len(rings.item.data) == 0
    view.set_selection([3])
    assert not rings.image.isVisible() and len(rings.item.data) == 1


def test_dark_look_and_back(qtbot: QtBot, view: MapView) -> None:
    def corner() -> str:
        return str(view.grab().toImage().pixelColor(3, 3).name())

    view.set_annotations([(1, 1, "cluster")])
    view.set_dark(True)
    assert corner() == "#1e1e1e"
    assert view.plot.titleLabel.opts["color"] == "#dddddd"
    view.plot.setTitle("a later title")
    assert "#dddddd" in view.plot.titleLabel.item.toHtml()
    assert view.annotations == ["cluster"]
    view.set_categories(["noise" if row % 2 else "a" for row in range(SIDE * SIDE)], muted="noise")
    noise = view._items[0]
    assert noise.opts["brush"].color().name() == "#555555", "muted points recede on dark too"
    view.set_dark(False)
    assert corner() == "#ffffff"
    assert noise.opts["brush"].color().name() == "#d0d0d0"


def test_the_view_range_round_trips(qtbot: QtBot, view: MapView) -> None:
    view.set_view_range(1.0, 5.0, 2.0, 6.0)
    x0, x1, y0, y1 = view.view_range()
    # The aspect ratio is locked, so one axis may widen to fit the widget; the asked part stays.
    assert x0 <= 1.0 and x1 >= 5.0 and y0 <= 2.0 and y1 >= 6.0
    assert min(x1 - x0, y1 - y0) == pytest.approx(4.0, rel=1e-3)
    again = shown_map(qtbot, view.width(), view.height())
    again.set_points(grid(), [""] * SIDE * SIDE, [""] * SIDE * SIDE, "again")
    qtbot.wait(20)  # the title takes its place; a range set before that is refitted to the new shape
    again.set_view_range(*view.view_range())
    assert again.view_range() == pytest.approx(view.view_range(), rel=1e-6)


def test_value_shades_span_the_finite_range() -> None:
    levels, table, low, high = map_colours.value_shades(np.array([2.0, np.nan, 4.0, 3.0]))
    assert (low, high) == (2.0, 4.0) and levels.tolist() == [0, 0, 255, 128]
    assert table.shape == (256, 4) and table.dtype == np.uint8


def test_values_share_a_brush_per_shade(view: MapView) -> None:
    view.set_values(np.linspace(0, 1, SIDE * SIDE), "v")
    view.draw_pending()
    [item] = view._items
    brushes = item.data["brush"]
    assert len({id(brush) for brush in brushes}) <= 256 and len({b.color().name() for b in brushes}) > 50


@pytest.mark.parametrize("arrow", [False, True], ids=["list", "arrow"])
def test_category_colours_give_each_row_its_category_and_colour(arrow: bool) -> None:
    import pyarrow as pa

    from engine.data.arrow import ArrowSequence
    from engine.maps.palette import label_colors

    labels = ["b", "noise", "a", "b", "c", "noise", "b", "a", ""]
    categories = (
        ArrowSequence(pa.chunked_array([pa.array(labels[:4]), pa.array(labels[4:])])) if arrow else labels
    )
    groups, group_of, rgba = map_colours.category_colours(categories, "noise", "#d0d0d0")
    # The muted category first (drawn under the rest), then the others most common first.
    assert groups == [("noise", "#d0d0d0"), *label_colors([v for v in labels if v != "noise"]).items()]
    assert [groups[g][0] for g in group_of] == labels
    colour = dict(groups)
    assert rgba.tolist() == [list(pg.mkColor(colour[label]).getRgb()) for label in labels]


def test_recolouring_reuses_items_and_keeps_each_row_with_its_category(view: MapView) -> None:
    def drawn() -> dict[int, str]:
        view.draw_pending()
        return {int(row): item.name() for item in view._items for row in item.data["data"]}

    def legend() -> list[str]:
        view.draw_pending()
        return [label.text for _, label in view.legend.items]

    rows = range(SIDE * SIDE)
    five = [f"c{row % 5}" for row in rows]
    view.set_categories(five)
    items = list(view._items)
    assert drawn() == dict(enumerate(five)) and sorted(legend()) == sorted(set(five))
    two = ["noise" if row % 4 else "kept" for row in rows]
    view.set_categories(two, muted="noise", legend=False)
    assert view._items == items[:2], "the same items, given new categories"
    assert set(drawn().values()) == {None}, "no legend: unnamed"
    noise, kept = ({int(row) for row in item.data["data"]} for item in view._items)
    assert noise == {row for row in rows if row % 4} and kept == {row for row in rows if not row % 4}
    assert not view.legend.isVisible()
    assert not any(item.isVisible() or len(item.data) for item in items[2:])
    assert view._items[0].opts["brush"].color().name() == "#d0d0d0", "noise first, grey"
    view.set_categories(five)
    assert drawn() == dict(enumerate(five)) and sorted(legend()) == sorted(set(five))
    assert view._items == items and all(item.isVisible() for item in items)
    shifted = [f"c{(row + 1) % 5}" for row in rows]  # the same categories and legend, other rows
    view.set_categories(shifted)
    assert drawn() == dict(enumerate(shifted))
    view.set_values(np.linspace(0, 1, SIDE * SIDE), "v")
    assert len(view._items) == 1 and legend() == ["v: 0.00 (dark) to 1.00 (yellow)"]
    assert sorted(drawn()) == list(rows)


def test_points_find_the_symbols_pyqtgraph_would_find() -> None:
    """The map's scatter items set their points in numpy, not point by point: every point must
    still get the record and the place in the symbol atlas that pyqtgraph's own code gives."""
    from desktop.map.layers import Points

    rng = np.random.default_rng(4)
    shades = np.array([pg.mkBrush(c) for c in ("r", "g", "b", "y")], dtype=object)
    for n in (0, 1, 501):
        x, y = rng.normal(size=(2, n))
        per_point = {"brush": shades[rng.integers(0, 4, n)], "size": rng.integers(3, 15, n).astype(float)}
        for options in ({}, {"brush": per_point["brush"]}, {"size": per_point["size"]}, per_point):
            stock, points = (
                kind(size=6, pen=None, brush=pg.mkBrush("k"), hoverable=True, hoverSize=10)
                for kind in (pg.ScatterPlotItem, Points)
            )
            recoloured = shades[rng.integers(0, 4, n)] if n % 2 else pg.mkBrush("c")
            for item in (stock, points):
                item.setData(x=x, y=y, data=np.arange(n), **options)
                item.setBrush(recoloured)
            assert np.array_equal(points.data["sourceRect"], stock.data["sourceRect"]), (n, list(options))
            assert np.array_equal(points.fragmentAtlas._data, stock.fragmentAtlas._data)
            for field in ("x", "y", "size", "visible", "data"):
                assert np.array_equal(points.data[field], stock.data[field]), field
            for field in ("symbol", "pen", "brush", "item"):  # the very objects (None where unset)
                assert all(a is b for a, b in zip(points.data[field], stock.data[field], strict=True)), field
            assert (
                points.dataBounds(0) == stock.dataBounds(0) and points.boundingRect() == stock.boundingRect()
            )


def test_the_rows_shown_are_each_row_once_in_order(view: MapView) -> None:
    rows = np.array([7, 3, 3, 50])
    view.set_visible_rows(rows)
    assert view.visible_rows.tolist() == [3, 7, 50]
    kept = np.array([1, 4, 9])
    view.set_visible_rows(kept)
    kept[0] = 5  # the view keeps its own copy
    assert view.visible_rows.tolist() == [1, 4, 9]
    view.draw_pending()
    assert sorted(int(row) for item in view._items for row in item.data["data"]) == [1, 4, 9]


def count_density_images(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time the map makes a density image."""
    drawn: list[int] = []
    real = map_density.density_image

    def counted(*args: Any, **kwargs: Any) -> Any:
        drawn.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(map_density, "density_image", counted)
    return drawn


def test_the_density_image_is_drawn_again_only_when_what_it_shows_changes(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = shown_map(qtbot, 800, 600)
    coords, labels = clustered(3 * LOD_POINTS)
    view.set_points(coords, labels, [""] * len(coords), "many")
    qtbot.waitUntil(lambda: view.density_shown)
    view.set_view_range(*view.view_range())  # drawn for the range the view has settled on
    drawn = count_density_images(monkeypatch)
    before = view.density.image.copy()
    view.set_density(True)
    view.draw_pending()
    view.set_density(False)  # the whole map is still too many points: the same image stays
    view.draw_pending()
    assert view.density_shown and not drawn
    view.set_categories(labels[::-1])  # new colours: a new image
    view.draw_pending()
    assert len(drawn) == 1 and not np.array_equal(view.density.image, before)
    view.set_visible_rows(np.arange(0, len(coords), 2))  # a filter: other rows, a new image
    view.draw_pending()
    assert len(drawn) == 2


def test_numbered_categories_colour_like_their_names() -> None:
    from desktop.map.colours import CodedCategories, category_colours

    rng = np.random.default_rng(5)
    labels = rng.integers(-1, 9, 3000)
    labels[labels == 4] = 5  # a cluster number with no rows left
    names = ["noise"] + [f"cluster {c}" for c in range(9)]
    as_text = [names[c + 1] for c in labels]
    coded = category_colours(CodedCategories(names, labels + 1), "noise", "#888888")
    plain = category_colours(as_text, "noise", "#888888")
    assert coded[0] == plain[0]  # the same groups and colours, in the same order
    assert np.array_equal(coded[1], plain[1]) and np.array_equal(coded[2], plain[2])


def test_a_new_map_is_drawn_once_a_turn_of_the_event_loop_later(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Points, filter, sizes and density set in a row make one image, after the GUI thread
    has had a turn to paint and react; the legend comes a turn after the points."""
    view = shown_map(qtbot, 800, 600)
    coords, labels = clustered(3 * LOD_POINTS)
    drawn = count_density_images(monkeypatch)
    view.set_points(coords, labels, [""] * len(coords), "many")
    view.set_visible_rows(np.arange(0, len(coords), 2))
    view.set_sizes(np.arange(len(coords), dtype=float), "index")
    view.set_density(True)
    assert view.draw_is_pending and not drawn and not view.density_shown and not view.legend.items
    view._pending_step()  # a turn of the event loop: the points first
    assert len(drawn) == 1 and view.density_shown and not view.legend.items
    qtbot.waitUntil(lambda: not view.draw_is_pending)  # the next turn: the legend
    assert sorted(label.text for _, label in view.legend.items) == sorted(set(labels))
    view.draw_pending()  # nothing waits: nothing is drawn again
    assert len(drawn) == 1


def test_new_points_on_a_view_never_shown_draw_without_an_error(qtbot: QtBot) -> None:
    map_view = MapView()  # not shown yet: fitting the view to the points refreshed old groups
    qtbot.addWidget(map_view)
    map_view.set_points(np.zeros((3, 2), np.float32), ["a", "b", "c"], ["", "", ""], "three")
    map_view.set_points(np.ones((5, 2), np.float32), ["a"] * 5, [""] * 5, "five")
    map_view.draw_pending()
    assert sum(len(item.data) for item in map_view._items) == 5
