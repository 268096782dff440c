"""Render Loupe's PNG icons (48, 128 and 256 pixels) from the scalable SVG with Qt's SVG renderer.

The PNGs are committed under ``resources/icons/hicolor/<size>x<size>/apps/``; run this again
after changing ``resources/icons/loupe.svg``:

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icons.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

APP_ID = "io.github.loupe_viz.Loupe"
SIZES = (48, 128, 256)
RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def render(svg: Path, size: int, out: Path) -> None:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: {svg} is not a valid SVG.")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)  # the icon's corners stay see-through
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"render_icons: cannot write {out}.")


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # Qt paints once an app exists
    svg = RESOURCES / "icons" / "loupe.svg"
    for size in SIZES:
        out = RESOURCES / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        render(svg, size, out)
        print(out.relative_to(RESOURCES.parent))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
