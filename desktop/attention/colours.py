"""The attention views' own colours for the light and dark themes (pyqtgraph draws its plots
itself, so they do not follow the Qt palette)."""

from __future__ import annotations

import pyqtgraph as pg

BACKGROUND = {False: "#ffffff", True: "#1e1e1e"}
FOREGROUND = {False: "#222222", True: "#dddddd"}


def colour_axes(axes: list[pg.AxisItem], dark: bool) -> None:
    """Axis lines and tick labels in the theme's foreground colour."""
    for axis in axes:
        axis.setPen(FOREGROUND[dark])
        axis.setTextPen(FOREGROUND[dark])
