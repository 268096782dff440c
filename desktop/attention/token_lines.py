"""The token-lines mode (bertviz's head view): the tokens in two columns, query left and key
right, joined by lines whose width and opacity follow the attention."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtGui import QColor, QPen

LINE_THRESHOLD = 0.02  # weights below this are not drawn, so long rows stay fast
LINE_BUCKETS = 8  # lines are drawn in this many width/opacity steps, one item each


def draw_token_lines(
    plot: Any, matrix: npt.NDArray[np.float32], tokens: list[str], foreground: str
) -> list[tuple[int, int, float]]:
    """Draw ``matrix`` (queries x keys) as lines between ``tokens`` on ``plot`` (a pyqtgraph
    ``PlotItem``, cleared first); returns the drawn ``(query, key, weight)`` pairs."""
    plot.clear()
    n = len(tokens)
    for i, token in enumerate(tokens):
        left = pg.TextItem(token, color=foreground, anchor=(1.0, 0.5))
        left.setPos(-0.05, i)
        right = pg.TextItem(token, color=foreground, anchor=(0.0, 0.5))
        right.setPos(1.05, i)
        plot.addItem(left)
        plot.addItem(right)
    queries, keys = np.nonzero(matrix >= LINE_THRESHOLD)
    weights = matrix[queries, keys]
    pairs = [(int(q), int(k), float(w)) for q, k, w in zip(queries, keys, weights, strict=True)]
    top = float(weights.max()) if len(weights) else 1.0
    buckets = np.minimum((weights / top * LINE_BUCKETS).astype(int), LINE_BUCKETS - 1)
    for bucket in range(LINE_BUCKETS):
        chosen = np.flatnonzero(buckets == bucket)
        if not len(chosen):
            continue
        strength = (bucket + 1) / LINE_BUCKETS
        pen = QPen(QColor(90, 170, 255, int(40 + 215 * strength)))
        pen.setWidthF(0.5 + 4.0 * strength)
        pen.setCosmetic(True)
        xs = np.zeros(2 * len(chosen))
        xs[1::2] = 1.0
        ys = np.empty(2 * len(chosen))
        ys[0::2] = queries[chosen]
        ys[1::2] = keys[chosen]
        plot.addItem(pg.PlotCurveItem(xs, ys, pen=pen, connect="pairs"))
    plot.setXRange(-1.0, 2.0, padding=0)
    plot.setYRange(-0.5, max(n, 1) - 0.5, padding=0.02)
    return pairs
