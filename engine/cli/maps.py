"""The headless map commands: ``loupe project`` (coordinates to CSV), ``loupe export`` (figure
and/or data file, each with a provenance sidecar) and ``project --layer all``.

A map is made by the one map flow (:func:`engine.api.flow.map_flow`) on the engine's API, as the
window and the demo make theirs; the ``--analyse`` columns and the trustworthiness are the API's
scores (``score_map``, ``score_rows``). Without ``--analyse`` the flow first looks the map up
from the texts alone, so a warm ``loupe project`` reads one cache value and never imports torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.outputs import check_out
from engine.cli.progress import end_progress_line
from engine.errors import LoupeError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from engine.api.protocol import EngineAPI
    from engine.api.types import EngineIdentity, OpenedDataset
    from engine.data.datasets import Dataset
    from engine.maps.projection import ProjectionParams
    from engine.runtime.jobs import ProgressMeter


@dataclass
class MadeMap:
    """One map of a dataset, as ``project`` and ``export`` write it, and its ``--analyse`` columns."""

    dataset: Dataset
    params: ProjectionParams
    coords: npt.NDArray[np.float32]
    own_vectors: bool = False  # mapped from the dataset's own vectors: no model made it
    extra: dict[str, Sequence[object]] = field(default_factory=dict)
    trust: float | None = None


def projection_params(args: argparse.Namespace) -> ProjectionParams:
    """``--method/--param/--seed`` as checked parameters (before the dataset is read, as always)."""
    from engine.maps.projection import ProjectionParams

    params = ProjectionParams.from_options(args.method, param_options(args.param), seed=args.seed)
    if getattr(args, "fit_sample", None) is None:
        return params
    params = replace(params, fit_sample=args.fit_sample)
    params.validate()  # a sample too small for the method: one sentence before any row is read
    return params


def for_rows(params: ProjectionParams, rows: int, quiet: bool) -> ProjectionParams:
    """``params`` for a dataset of ``rows`` rows: a --fit-sample not below them is a full fit
    (and is cached as one, so the two never make two maps of the same rows)."""
    if params.fit_sample is None or params.fit_sample < rows:
        return params
    note = f"--fit-sample {params.fit_sample} is not below the dataset's {rows} rows: fitting every row"
    logging.getLogger(__name__).info(note)
    if not quiet:
        print(f"loupe: {note}.", file=sys.stderr)
    return params.fitting_every_row()


def open_dataset(api: EngineAPI, args: argparse.Namespace, report: ProgressMeter) -> OpenedDataset:
    """The dataset at ``args.path``, opened by the engine."""
    from engine.api.types import OpenDataset

    request = OpenDataset(args.path, text_column=args.text_column, label_column=args.label_column)
    return api.open_dataset(request, report=report)


def param_options(pairs: Sequence[str]) -> dict[str, str]:
    """``--param name=value`` pairs as a dict; the engine parses and checks the values."""
    options: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise LoupeError(f"--param takes NAME=VALUE, not {pair!r}.")
        options[name.strip()] = value.strip()
    return options


def make_map(api: EngineAPI, args: argparse.Namespace, report: ProgressMeter) -> MadeMap:
    """The map asked for by ``--method/--param/--seed/--layer`` (cached where possible), scored
    by the engine when ``--analyse`` asks for its columns."""
    from engine.api.flow import map_flow
    from engine.api.types import MapScores, ProjectedMap, ScoreRows

    params = projection_params(args)
    opened = open_dataset(api, args, report)
    dataset_id, dataset = opened.dataset_id, opened.dataset
    params = for_rows(params, len(dataset), args.quiet)
    shown: ProjectedMap | None = None
    scores: MapScores | None = None
    # No PCA preview: nobody looks at a headless map before it is written.
    for step in map_flow(
        api,
        dataset_id,
        params,
        layer=args.layer,
        preview=False,
        scores=args.analyse,
        cached_first=True,
        report=report,
    ):
        if isinstance(step, ProjectedMap):
            shown = step
        elif isinstance(step, MapScores):
            scores = step
    assert shown is not None, "the map flow always ends with a map (and its scores when asked)"
    made = MadeMap(dataset, params, shown.coords, own_vectors=opened.own_vectors)
    if scores is not None:
        faithful = api.score_rows(ScoreRows(shown.map_id), report=report)
        made.extra["cluster"] = [int(c) for c in scores.labels]
        made.extra["cluster_name"] = [scores.names.get(int(c), "") for c in scores.labels]
        made.extra["faithfulness"] = [float(v) for v in faithful.values]
        made.trust = scores.trustworthiness
    return made


def project_command(api: EngineAPI, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe project``: the map's coordinates (and ``--analyse`` columns) to CSV."""
    from engine.user.data_files import dataset_files, write_coords_csv

    check_out(args.out, ".csv", dataset_files(args.path))
    if args.layer == "all":
        return project_layers(api, args, report)
    made = make_map(api, args, report)
    end_progress_line(args.quiet)
    write_coords_csv(args.out, made.coords, made.dataset.labels, extra=made.extra)
    if not args.quiet:
        print(f"loupe: wrote {args.out} ({len(made.dataset)} rows)", file=sys.stderr)
        if made.trust is not None:
            print(f"loupe: trustworthiness {made.trust:.3f} (cosine)", file=sys.stderr)
    return 0


def export_command(api: EngineAPI, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe export``: the map as a figure and/or data file, each with a provenance sidecar."""
    from engine.user.data_files import DATA_FORMATS, dataset_files, write_data
    from engine.user.export import provenance, sidecar_path, write_sidecar
    from engine.user.figures import FIGURE_FORMATS, check_map_figure, save_map_figure

    if args.figure is None and args.data is None:
        raise LoupeError("loupe export needs --figure F.png|svg|pdf, --data F.csv|parquet, or both.")
    if args.layer == "all":
        raise LoupeError("loupe export maps one layer; use loupe project --layer all for every layer.")
    inputs = dataset_files(args.path)
    for path, formats in ((args.figure, FIGURE_FORMATS), (args.data, DATA_FORMATS)):
        if path is not None:
            check_out(path, formats, inputs)
            check_out(sidecar_path(path), ".json", inputs)
    if args.figure is not None:
        check_map_figure(args.figure, (args.width, args.height), args.dpi)
    made = make_map(api, args, report)
    record = provenance(model_identity(api, made), made.dataset, made.params, args.layer, made.trust)
    end_progress_line(args.quiet)
    written: list[Path] = []
    if args.figure is not None:
        written.append(
            save_map_figure(
                args.figure,
                made.coords,
                made.dataset.labels,
                title=args.title,
                dpi=args.dpi,
                size=(args.width, args.height),
                legend=not args.no_legend,
                axes=args.axes,
                provenance=record,
            )
        )
    if args.data is not None:
        dataset = made.dataset
        written.append(
            write_data(
                args.data,
                made.coords,
                dataset.labels,
                texts=dataset.texts,  # as the window's Export data…: which text each point is
                extra=made.extra,
                provenance=record,
            )
        )
    written += [write_sidecar(path, record) for path in list(written)]
    if not args.quiet:
        for path in written:
            print(f"loupe: wrote {path}", file=sys.stderr)
    return 0


def model_identity(api: EngineAPI, made: MadeMap) -> EngineIdentity | None:
    """What the engine computes with, for the provenance record; None for a map of the dataset's
    own vectors, for which no model is asked for (the configured one need not even exist)."""
    from engine.api.types import Identify

    return None if made.own_vectors else api.identify(Identify())


def project_layers(api: EngineAPI, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe project --layer all``: every layer's map, aligned, in one long CSV."""
    import csv

    from engine.api.types import MapLayers
    from engine.runtime.atomic import atomic_path

    params = projection_params(args)
    opened = open_dataset(api, args, report)
    dataset_id, dataset = opened.dataset_id, opened.dataset
    params = for_rows(params, len(dataset), args.quiet)
    maps = api.map_layers(MapLayers(dataset_id, params), report=report).maps
    end_progress_line(args.quiet)
    with atomic_path(args.out) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["layer", "row", "x", "y", "label"])
        for layer, coords in enumerate(maps):
            for row, ((x, y), label) in enumerate(zip(coords.tolist(), dataset.labels, strict=True)):
                writer.writerow([layer, row, f"{x:.6g}", f"{y:.6g}", label])
    if not args.quiet:
        print(f"loupe: wrote {args.out} ({len(maps)} layers x {len(dataset)} rows)", file=sys.stderr)
    return 0
