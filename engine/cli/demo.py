"""The built-in demo, headless: stdlib docstrings → the map flow (embeddings, PCA, UMAP) → files.

This is ``loupe demo --no-gui``. It runs the one map flow (:func:`engine.api.flow.map_flow`) as
the window does, with the PCA preview, so the two leave the same cache entries; only the
window shows the preview and scores the map.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.api.flow import map_flow
from engine.api.types import EmbeddedRun, Identify, OpenDataset, ProjectedMap
from engine.cli.progress import end_progress_line
from engine.maps.projection import ProjectionParams
from engine.runtime.jobs import CancelToken, Report, silent_report
from engine.user.data_files import write_coords_csv
from engine.user.figures import save_map_figure

if TYPE_CHECKING:
    from engine.api.protocol import EngineAPI
    from engine.runtime.jobs import ProgressMeter

DEMO_ROWS = 4000


@dataclass(frozen=True)
class DemoResult:
    rows: int
    computed: int
    files: tuple[Path, ...]
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(
    api: EngineAPI,
    out_dir: Path,
    *,
    rows: int = DEMO_ROWS,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> DemoResult:
    """Run the whole demo and write ``map.png``, ``map.svg`` and ``coords.csv`` to ``out_dir``.

    ``timings`` are seconds from the start to the end of each stage: ``dataset``, ``embeddings``,
    ``map`` (the UMAP map, after its PCA preview) and ``files``.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    opened = api.open_dataset(OpenDataset(demo_rows=rows), token=token, report=report)
    dataset = opened.dataset
    timings["dataset"] = time.perf_counter() - start
    computed = 0
    shown: ProjectedMap | None = None
    for step in map_flow(
        api, opened.dataset_id, ProjectionParams(method="umap"), scores=False, token=token, report=report
    ):
        if isinstance(step, EmbeddedRun):
            computed = step.computed
            timings["embeddings"] = time.perf_counter() - start
        elif isinstance(step, ProjectedMap):
            shown = step
    assert shown is not None, "the map flow always ends with the map"
    timings["map"] = time.perf_counter() - start
    title = f"{dataset.name}: {len(dataset)} rows, {api.identify(Identify()).display_name}, UMAP"
    files = (
        save_map_figure(out_dir / "map.png", shown.coords, dataset.labels, title=title),
        save_map_figure(out_dir / "map.svg", shown.coords, dataset.labels, title=title),
        write_coords_csv(out_dir / "coords.csv", shown.coords, dataset.labels, dataset.texts),
    )
    timings["files"] = time.perf_counter() - start
    return DemoResult(rows=len(dataset), computed=computed, files=files, timings=timings)


def demo_command(api: EngineAPI, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe demo --no-gui`` (or without a display): the demo's files and one summary line."""
    start = time.perf_counter()
    result = run_demo(api, args.out, rows=args.rows, report=report)
    end_progress_line(args.quiet)
    if not args.quiet:
        print(
            f"loupe: demo: {result.rows} rows ({result.computed} embedded, {result.rows - result.computed} "
            f"from cache), map in {result.timings['map']:.1f} s, total {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
        for path in result.files:
            print(f"loupe: wrote {path}", file=sys.stderr)
    return 0
