"""The window on a large dataset: the sample's map first, the other rows placed as they are
embedded, then the real map; with the engine in its child process, as the app runs it.

"Large" is made small: ``LOUPE_PROGRESSIVE_ABOVE_ROWS`` is lowered before the window (and so
its engine process, which inherits the environment) starts, to below the 400 rows of real,
multilingual text the test opens and above the 300 rows of the demo the window opens first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.api.types import ProgressiveMap
from engine.core.progressive import ABOVE_ROWS_VARIABLE
from engine.maps.projection import ProjectionParams
from tests.conftest import shown_method
from tests.test_progressive_map import ROWS, write_rows

WAIT_MS = 600_000


@pytest.fixture
def lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ABOVE_ROWS_VARIABLE, "300")


def test_the_window_shows_the_progressive_map_then_ends_on_the_real_one(
    lowered: None, qtbot: Any, window: Any, tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "rows.csv")
    failures: list[str] = []
    window.job_failed.connect(failures.append)
    drawn: list[tuple[int, int, int, str, bool]] = []  # placed, total, rows drawn, title, finite

    def on_progressive(progressive: ProgressiveMap | None) -> None:
        # Connected after the presenter: the map has drawn this step when this runs.
        if progressive is None:
            return
        view = window.map_view
        drawn.append(
            (
                progressive.placed,
                progressive.total,
                len(view.visible_rows),
                window.presenter.title,
                bool(np.isfinite(view.coords).all()),
            )
        )

    window.model.progressive_changed.connect(on_progressive)
    window.model.set_params(ProjectionParams(method="pca"))
    window.open_path(path)
    qtbot.waitUntil(
        lambda: bool(failures) or (shown_method(window) == "pca" and window.model.rows == ROWS),
        timeout=WAIT_MS,
    )
    assert not failures, failures
    assert len(drawn) >= 3, drawn
    placed = [step[0] for step in drawn]
    assert placed[0] == 100 and placed == sorted(placed) and placed[-1] == ROWS
    for count, total, rows_drawn, title, finite in drawn:
        assert total == ROWS and rows_drawn == count and finite  # unplaced rows hidden, never at NaN
        assert title.startswith(f"Placing rows: {count:,} of {ROWS:,}")
    # The real map replaced it: every row drawn, the progressive map gone.
    assert window.model.progressive is None and window.model.shown is not None
    assert not window.model.shown.preview and len(window.map_view.visible_rows) == ROWS
    assert not window.presenter.title.startswith("Placing rows")
    assert window.model.run is not None and window.model.run.rows == ROWS
