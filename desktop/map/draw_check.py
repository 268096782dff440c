"""``loupe self-test``'s drawing check, run as its own process: can Qt draw a map here?

``python -m desktop.map.draw_check`` (with ``QT_QPA_PLATFORM=offscreen``, set by the caller)
draws a small pyqtgraph scatter plot into an image, counts the pixels that differ from the
background and prints one line; it exits 1 when nothing was drawn. It runs as a child so that
a Qt that cannot start (a missing plugin, a library it cannot load) aborts the child alone.
"""

from __future__ import annotations

import sys
import time

WIDTH, HEIGHT = 240, 180


def draw() -> tuple[int, str]:
    """Draw the plot offscreen; (pixels that are not the background, the platform Qt used)."""
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["loupe-draw-check"])
    widget = pg.PlotWidget(background="w")
    widget.resize(WIDTH, HEIGHT)
    points = np.random.default_rng(0).normal(size=(200, 2))
    widget.plot(points[:, 0], points[:, 1], pen=None, symbol="o", symbolSize=6, symbolBrush=(30, 90, 200))
    widget.show()
    app.processEvents()
    image = QImage(WIDTH, HEIGHT, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    try:
        widget.render(painter)
    finally:
        painter.end()
    pixels = np.frombuffer(image.constBits(), dtype=np.uint32, count=WIDTH * HEIGHT)
    drawn = int(np.count_nonzero(pixels != np.uint32(0xFFFFFFFF)))
    widget.close()
    return drawn, QGuiApplication.platformName()


def main() -> int:
    began = time.perf_counter()
    drawn, platform = draw()
    took = time.perf_counter() - began
    if drawn == 0:
        print(f"a {WIDTH}x{HEIGHT} plot drawn on Qt's {platform} platform is blank", file=sys.stderr)
        return 1
    print(
        f"a {WIDTH}x{HEIGHT} pyqtgraph plot on Qt's {platform} platform: {drawn} pixels drawn, {took:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
