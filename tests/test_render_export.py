"""Render and export smoke tests that catch a bad Qt/pyqtgraph upgrade.

Measured on this machine: PySide6 6.12.0 on Python 3.11 aborts the interpreter during
pyqtgraph repaints, and pyqtgraph 0.14's SVG exporter fails on PySide6 >= 6.11. These tests
repaint the real map view many times and export it, so such an upgrade fails here first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from desktop.map.view import MapView
from engine.maps.palette import label_colors
from engine.user.data_files import write_coords_csv
from engine.user.figures import save_map_figure

LABELS = ["alpha"] * 200 + ["beta"] * 150 + ["gamma"] * 100


def _coords(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = {"alpha": (-5, 0), "beta": (5, 0), "gamma": (0, 6)}
    return np.array([rng.normal(centres[label], 1.0) for label in LABELS], dtype=np.float32)


def _colour_share(image: QImage, hex_colour: str, tolerance: int = 40) -> float:
    """Share of pixels within ``tolerance`` (per channel) of ``hex_colour``."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    width, height = image.width(), image.height()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    pixels = buffer.reshape(height, image.bytesPerLine() // 4, 4)[:, :width, :3].astype(int)
    target = QColor(hex_colour)
    bgr = np.array([target.blue(), target.green(), target.red()])
    return float((np.abs(pixels - bgr).max(axis=2) <= tolerance).mean())


def test_map_view_repaints_and_shows_every_label_colour(qtbot: QtBot) -> None:
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    view = MapView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    texts = [f"text {i}" for i in range(len(LABELS))]
    for seed in range(5):  # repeated repaints: where PySide6 6.12 aborted
        view.set_points(_coords(seed), LABELS, texts, "test map")
        qtbot.waitUntil(lambda: not view.draw_is_pending)  # the points are drawn a turn later
        image = view.grab().toImage()
    assert image.width() >= 700
    for label, colour in label_colors(LABELS).items():
        assert _colour_share(image, colour) > 0.001, f"{label} ({colour}) is not visible"
    white = _colour_share(image, "#ffffff", tolerance=5)
    assert 0.5 < white < 0.99, "the plot is neither blank nor a solid fill"


def test_pyqtgraph_svg_and_png_export_of_the_map(qtbot: QtBot, tmp_path: Path) -> None:
    view = MapView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_points(_coords(), LABELS, [""] * len(LABELS), "export")
    qtbot.wait(50)  # let the view range settle on the new points
    svg = tmp_path / "map.svg"
    pyqtgraph.exporters.SVGExporter(view.plot).export(str(svg))
    text = svg.read_text()
    # pyqtgraph writes one <path> per visible point: every point, as vector marks.
    assert text.count("<path") >= len(LABELS)
    png = tmp_path / "map.png"
    pyqtgraph.exporters.ImageExporter(view.plot).export(str(png))
    assert QImage(str(png)).width() > 100


def test_headless_figures_are_real_vector_and_raster_files(tmp_path: Path) -> None:
    coords = _coords()
    svg = save_map_figure(tmp_path / "map.svg", coords, LABELS, title="t")
    png = save_map_figure(tmp_path / "map.png", coords, LABELS, title="t")
    pdf = save_map_figure(tmp_path / "map.pdf", coords, LABELS, title="t")
    svg_text = svg.read_text()
    # matplotlib writes one <use> per point that references a shared marker path.
    assert svg_text.count("<use") >= len(LABELS)
    assert "<image" not in svg_text, "no pasted bitmap"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(png))
    for colour in label_colors(LABELS).values():
        assert _colour_share(image, colour) > 0.0005
    assert pdf.read_bytes()[:5] == b"%PDF-"
    csv = write_coords_csv(tmp_path / "coords.csv", coords, LABELS)
    lines = csv.read_text().splitlines()
    assert lines[0] == "row,x,y,label" and len(lines) == len(LABELS) + 1
