"""What one progressive step costs the GUI thread at 50,000 rows: the window's own handlers only.

The window's model gets a progressive map of 50,000 rows (synthetic coordinates, 12 labels) at
each of the 11 steps the engine sends for 50,000 rows (5,000 sampled, then 4,500 a step), and
the time from ``AppModel.show_progressive`` to its return (the presenter's redraw, in that turn)
and of the draws it left for later turns is printed. No engine, no model: in process, so the
numbers are the window's, not the machine's load. Paints are not included.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/bench/progressive_step_cost.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LOUPE_HOME", tempfile.mkdtemp(prefix="lb", dir="/tmp"))

import numpy as np
from PySide6.QtWidgets import QApplication

from desktop.app import create_window
from engine.api.types import OpenedDataset, ProgressiveMap
from engine.data.datasets import Dataset
from engine.maps.projection import ProjectionParams

ROWS = 50_000
SAMPLE = 5_000
STEP = 4_500


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    args = argparse.Namespace(
        command="open", path=None, model="minilm", device="cpu", redis=None, no_cache=True, rows=300,
        text_column=None, label_column=None,
    )  # fmt: skip
    window = create_window(args, in_process=True)  # no engine call is made: nothing is started
    window.show()
    rng = np.random.default_rng(0)
    labels = [f"label {i % 12}" for i in range(ROWS)]
    window.model.set_dataset(OpenedDataset("d1", Dataset("x", [f"text {i}" for i in range(ROWS)], labels)))
    every = rng.normal(size=(ROWS, 2)).astype(np.float32)
    sampled = np.arange(0, ROWS, ROWS // SAMPLE)
    order = np.concatenate([sampled, rng.permutation(np.setdiff1d(np.arange(ROWS), sampled))])
    for placed in range(SAMPLE, ROWS + 1, STEP):
        coords = np.full((ROWS, 2), np.nan, np.float32)
        coords[order[:placed]] = every[order[:placed]]
        step = ProgressiveMap("p1", "d1", ProjectionParams(), coords, placed, ROWS)
        started = time.perf_counter()
        window.model.show_progressive(step)
        handled = time.perf_counter()
        window.map_view.draw_pending()
        drawn = time.perf_counter()
        app.processEvents()
        print(
            f"{placed:>7,} placed: show_progressive {1000 * (handled - started):5.1f} ms, "
            f"draws left for later turns {1000 * (drawn - handled):5.1f} ms"
        )
    window.close()


if __name__ == "__main__":
    main()
