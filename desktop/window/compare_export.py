"""Export a comparison from the window: both maps as one figure, or every row's two places,
displacement and neighbour overlap as data, each with a sidecar naming both sides.

As :mod:`desktop.window.export`: :func:`snapshot_comparison` (GUI thread) keeps references to
what the model shows; the writing runs on a job's thread. The writers are the command line's
(``loupe compare --out/--figure``), so a figure from the window and one from ``loupe compare``
say the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.model.document import AppModel
from engine.api.types import Comparison
from engine.data.datasets import Dataset
from engine.errors import LoupeError


@dataclass(frozen=True)
class ComparisonSnapshot:
    """A comparison, its dataset and where the data came from, to be written on another thread."""

    comparison: Comparison
    dataset: Dataset
    dataset_path: Path | None  # None: the demo
    titles: tuple[str, str]

    def record(self) -> dict[str, Any]:
        """The sidecar's record: both sides' models, layers and poolings, the map, k, the scores."""
        compare_export, _figure = _writers()
        source = str(self.dataset_path) if self.dataset_path is not None else "the demo dataset"
        record: dict[str, Any] = compare_export.comparison_provenance(
            self.comparison, dataset_source=source, dataset_fingerprint=self.dataset.fingerprint
        )
        record.setdefault("scores", compare_export.comparison_summary(self.comparison))
        return record

    def write_figure(self, path: Path) -> list[Path]:
        """Both maps side by side, lines from A to B for the rows that moved most (SVG, PDF, PNG)."""
        from engine.user.export import write_sidecar

        _export, compare_figure = _writers()

        self._refuse_inputs(path)
        record = self.record()
        labels = self.dataset.labels if self.dataset.label_column else None
        figure: Path = compare_figure.save_comparison_figure(
            path, self.comparison, labels, provenance=record, titles=self.titles
        )
        return [figure, write_sidecar(figure, record)]

    def write_rows(self, path: Path) -> list[Path]:
        """One row per dataset row: both places, displacement, overlap, label, text (CSV, Parquet)."""
        from engine.user.export import sidecar_path

        compare_export, _figure = _writers()

        self._refuse_inputs(path)
        written: Path = compare_export.write_comparison_rows(
            path, self.dataset, self.comparison, self.record()
        )
        return [written, sidecar_path(written)]

    def _refuse_inputs(self, path: Path) -> None:
        """An export (or its sidecar) never replaces the open dataset."""
        from engine.runtime.atomic import refuse_overwriting_inputs
        from engine.user.data_files import dataset_files
        from engine.user.export import sidecar_path

        if self.dataset_path is not None:
            for output in (path, sidecar_path(path)):
                refuse_overwriting_inputs(output, dataset_files(self.dataset_path), "export")


def _writers() -> tuple[Any, Any]:
    """The command line's comparison writers (``engine.user.compare_export``, ``compare_figure``)."""
    try:
        from engine.user import (  # type: ignore[attr-defined, unused-ignore]
            compare_export,
            compare_figure,
        )
    except ImportError:  # an engine without them
        raise LoupeError("This Loupe cannot write comparison exports.") from None
    return compare_export, compare_figure


def snapshot_comparison(model: AppModel, titles: tuple[str, str]) -> ComparisonSnapshot:
    """What the model's comparison is now (GUI thread); :class:`LoupeError` without one."""
    comparison, dataset = model.comparison, model.dataset
    if comparison is None or dataset is None:
        raise LoupeError("There is no comparison to export: Map ▸ Compare with… first.")
    path = model.source.path if model.source is not None else None
    return ComparisonSnapshot(comparison, dataset, path, titles)
