"""Frames per second of panning the map, Loupe's MapView against a plain pyqtgraph scatter.

Synthetic clustered coordinates (10 categories) at 200k and 1M points in a 1200 x 800 widget.
Each frame moves the view a little (a pan, at three zooms) and repaints synchronously; the
time per frame is what a user dragging the map waits for. MapView's own refresh (points near
the view, or the density image) runs from a timer during the pan, so its cost lands in the
frames it falls in; it is also timed alone. Both run back to back in one process, so compare
the ratios: this box is small and shared.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/bench/map_fps.py

Writes what it prints to tests/bench/results/map_fps.txt as well.
"""

from __future__ import annotations

import datetime
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication, QWidget

from desktop.map import density as map_density
from desktop.map.view import LOD_POINTS, MapView
from engine.maps.palette import label_colors

SIZES = (200_000, 1_000_000)
FRAMES = 30
RESULT = Path(__file__).resolve().parent / "results" / "map_fps.txt"
# (name, width of the view as a share of the whole map)
ZOOMS = (("whole map", 1.0), ("one cluster", 0.12), ("close", 0.02))


def clustered(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-30, 30, size=(10, 2))
    spread = rng.uniform(1, 4, size=10)
    category = rng.integers(0, 10, n)
    coords = centres[category] + rng.normal(size=(n, 2)) * spread[category, None]
    return coords.astype(np.float32), [f"topic {c}" for c in category]


def plain_scatter(coords: np.ndarray, labels: list[str]) -> pg.PlotWidget:
    """What a user of pyqtgraph would write: one ScatterPlotItem per category."""
    widget = pg.PlotWidget()
    widget.setAspectLocked(True)
    values = np.asarray(labels, dtype=object)
    for name, colour in label_colors(sorted(set(labels))).items():
        rows = values == name
        widget.addItem(
            pg.ScatterPlotItem(x=coords[rows, 0], y=coords[rows, 1], size=6, pen=None, brush=colour)
        )
    return widget


def pan(view: tuple[float, float, float, float]) -> list[tuple[float, float, float, float]]:
    """``FRAMES`` views, each 2% of the width right of the one before."""
    x0, x1, y0, y1 = view
    step = (x1 - x0) * 0.02
    return [(x0 + step * f, x1 + step * f, y0, y1) for f in range(FRAMES)]


def zoom(view: tuple[float, float, float, float]) -> list[tuple[float, float, float, float]]:
    """``FRAMES`` views, each 3% narrower than the one before, about the same centre."""
    x0, x1, y0, y1 = view
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return [
        (cx - hx * 0.97**f, cx + hx * 0.97**f, cy - hy * 0.97**f, cy + hy * 0.97**f) for f in range(FRAMES)
    ]


def frame_times(
    app: QApplication,
    widget: QWidget,
    set_range: Callable[[float, float, float, float], None],
    ranges: list[tuple[float, float, float, float]],
) -> list[float]:
    """Milliseconds per frame, showing each of ``ranges`` in turn and repainting at once."""
    set_range(*ranges[0])
    app.processEvents()
    widget.repaint()
    times = []
    for view in ranges[1:]:
        began = time.perf_counter()
        set_range(*view)
        app.processEvents()  # timers (MapView's refresh) run here, as in the event loop
        widget.repaint()
        times.append((time.perf_counter() - began) * 1000)
    return times


def views(coords: np.ndarray) -> list[tuple[str, tuple[float, float, float, float]]]:
    low, high = coords.min(axis=0), coords.max(axis=0)
    middle = np.median(coords, axis=0)
    dense = coords[0]  # a point in a cluster, so zoomed-in views are full of points
    out = []
    for name, share in ZOOMS:
        half_x, half_y = (high - low) * share / 2
        centre = middle if share == 1.0 else dense
        bounds = (centre[0] - half_x, centre[0] + half_x, centre[1] - half_y, centre[1] + half_y)
        out.append((name, tuple(float(b) for b in bounds)))
    return out


def describe(times: list[float]) -> str:
    median = statistics.median(times)
    slow = sum(t > 1000 / 30 for t in times) / len(times)
    return (
        f"{median:6.1f} ms/frame median ({1000 / median:5.1f} fps), worst {max(times):6.1f} ms,"
        f" {slow:4.0%} of frames over 33 ms"
    )


def run(app: QApplication, n: int, say: Callable[[str], None]) -> None:
    coords, labels = clustered(n)
    say(f"\n{n:,} points, {len(set(labels))} categories, 1200 x 800")
    plain = plain_scatter(coords, labels)
    plain.resize(1200, 800)
    plain.show()
    loupe = MapView()
    loupe.resize(1200, 800)
    loupe.show()
    began = time.perf_counter()
    loupe.set_points(coords, labels, [""] * n, "bench")
    say(f"  MapView.set_points: {(time.perf_counter() - began) * 1000:.0f} ms")
    app.processEvents()

    def plain_range(x0: float, x1: float, y0: float, y1: float) -> None:
        plain.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    def loupe_range(x0: float, x1: float, y0: float, y1: float) -> None:
        # As a mouse drag does: the view box moves, MapView follows from its timer.
        loupe.plot.getViewBox().setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    for name, view in views(coords):
        in_view = len(map_density.rows_in_range(coords, np.arange(n), view[:2], view[2:]))
        say(f"  {name} ({in_view:,} points in view)")
        for motion, ranges in (("pan ", pan(view)), ("zoom", zoom(view))):
            say(
                f"    {motion} plain ScatterPlotItem {describe(frame_times(app, plain, plain_range, ranges))}"
            )
            frames = frame_times(app, loupe, loupe_range, ranges)
            mode = "density image" if loupe.density_shown else "points"
            say(f"    {motion} Loupe MapView         {describe(frames)}  [{mode}]")
        loupe_range(*view)
        refresh = []
        for _ in range(5):
            began = time.perf_counter()
            loupe._refresh()
            refresh.append((time.perf_counter() - began) * 1000)
        mode = "density image" if loupe.density_shown else "points near the view"
        say(f"    MapView refresh alone ({mode}): {statistics.median(refresh):.1f} ms")
    lasso = np.array([(-30, -30), (30, -30), (0, 30)], float)
    began = time.perf_counter()
    rows = map_density.rows_in_polygon(coords, np.arange(n), lasso)
    say(f"  lasso over all rows: {(time.perf_counter() - began) * 1000:.0f} ms ({len(rows):,} rows inside)")
    plain.close()
    loupe.close()
    plain.deleteLater()
    loupe.deleteLater()
    app.processEvents()


def main() -> None:
    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"map_fps, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    machine = platform.processor() or platform.machine()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    say(f"{machine}, {os.cpu_count()} CPUs (load average {load}), Qt platform {app.platformName()}")
    say(f"LOD_POINTS = {LOD_POINTS:,} (more points near the view are drawn as a density image)")
    for n in SIZES:
        run(app, n, say)
    say(f"\npeak memory of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
