"""The headless map commands: ``loupe project`` (coordinates to CSV) and ``loupe export``
(figure and/or data file, each with a provenance sidecar), and ``project --layer all``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.outputs import check_out
from engine.cli.progress import end_progress_line
from engine.errors import LoupeError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from engine.core.engine import Engine
    from engine.data.datasets import Dataset
    from engine.maps.projection import ProjectionParams
    from engine.runtime.jobs import ProgressMeter

log = logging.getLogger("loupe")


@dataclass
class ComputedMap:
    """One map of a dataset, as ``project`` and ``export`` compute it, and its analysis columns."""

    dataset: Dataset
    params: ProjectionParams
    coords: npt.NDArray[np.float32]
    extra: dict[str, Sequence[object]] = field(default_factory=dict)
    trust: float | None = None


def map_inputs(args: argparse.Namespace) -> tuple[Dataset, ProjectionParams]:
    """The dataset and projection parameters that ``project`` and ``export`` were given."""
    from engine.data.datasets import load_dataset
    from engine.maps.projection import ProjectionParams

    params = ProjectionParams.from_options(args.method, param_options(args.param), seed=args.seed)
    return load_dataset(args.path, text_column=args.text_column, label_column=args.label_column), params


def param_options(pairs: Sequence[str]) -> dict[str, str]:
    """``--param name=value`` pairs as a dict; the engine parses and checks the values."""
    options: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise LoupeError(f"--param takes NAME=VALUE, not {pair!r}.")
        options[name.strip()] = value.strip()
    return options


def compute_map(engine: Engine, args: argparse.Namespace, report: ProgressMeter) -> ComputedMap:
    """The map asked for by ``--method/--param/--seed/--layer`` (cached where possible)."""
    dataset, params = map_inputs(args)
    # A cached map is found from the texts alone: no embeddings read, no model, no torch.
    coords = None
    if dataset.vectors is None:
        coords = engine.cached_map(dataset.texts, params, layer=args.layer)
    if coords is not None and coords.shape != (len(dataset), 2):
        # A cached map not of this dataset's shape (a crafted value) is recomputed, never written.
        log.warning("cached map has shape %s for %d rows; computing it again", coords.shape, len(dataset))
        coords = None
    run = None
    if coords is None or args.analyse:
        run = engine.dataset_embeddings(dataset, layer=args.layer, report=report)
    if coords is None:
        assert run is not None
        coords = engine.projection(run.vectors, params, input_id=run.input_id, report=report)
    result = ComputedMap(dataset, params, coords)
    if args.analyse:
        from engine.maps.analysis import trust_neighbours, trustworthiness

        assert run is not None
        clustering = engine.clusters(coords, dataset.texts)
        result.extra["cluster"] = [int(c) for c in clustering.labels]
        result.extra["cluster_name"] = [clustering.names.get(int(c), "") for c in clustering.labels]
        result.extra["faithfulness"] = [
            float(v) for v in engine.faithfulness(run.vectors, coords, input_id=run.input_id, report=report)
        ]
        result.trust = trustworthiness(run.vectors, coords, k=trust_neighbours(len(coords)))
    return result


def project_command(engine: Engine, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe project``: the map's coordinates (and ``--analyse`` columns) to CSV."""
    from engine.user.export import dataset_files, write_coords_csv

    check_out(args.out, ".csv", dataset_files(args.path))
    if args.layer == "all":
        return project_layers(engine, *map_inputs(args), args, report)
    computed = compute_map(engine, args, report)
    end_progress_line(args.quiet)
    write_coords_csv(args.out, computed.coords, computed.dataset.labels, extra=computed.extra)
    if not args.quiet:
        print(f"loupe: wrote {args.out} ({len(computed.dataset)} rows)", file=sys.stderr)
        if computed.trust is not None:
            print(f"loupe: trustworthiness {computed.trust:.3f} (cosine)", file=sys.stderr)
    return 0


def export_command(engine: Engine, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe export``: the map as a figure and/or data file, each with a provenance sidecar."""
    from engine.user.export import (
        DATA_FORMATS,
        FIGURE_FORMATS,
        check_map_figure,
        dataset_files,
        provenance,
        save_map_figure,
        sidecar_path,
        write_data,
        write_sidecar,
    )

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
    computed = compute_map(engine, args, report)
    record = provenance(engine, computed.dataset, computed.params, args.layer, computed.trust)
    end_progress_line(args.quiet)
    written: list[Path] = []
    if args.figure is not None:
        written.append(
            save_map_figure(
                args.figure,
                computed.coords,
                computed.dataset.labels,
                title=args.title,
                dpi=args.dpi,
                size=(args.width, args.height),
                legend=not args.no_legend,
                axes=args.axes,
                provenance=record,
            )
        )
    if args.data is not None:
        dataset = computed.dataset
        written.append(
            write_data(
                args.data,
                computed.coords,
                dataset.labels,
                texts=dataset.texts,  # as the window's Export data…: which text each point is
                extra=computed.extra,
                provenance=record,
            )
        )
    written += [write_sidecar(path, record) for path in list(written)]
    if not args.quiet:
        for path in written:
            print(f"loupe: wrote {path}", file=sys.stderr)
    return 0


def project_layers(
    engine: Engine,
    dataset: Dataset,
    params: ProjectionParams,
    args: argparse.Namespace,
    report: ProgressMeter,
) -> int:
    """``loupe project --layer all``: every layer's map, aligned, in one long CSV."""
    import csv

    from engine.runtime.atomic import atomic_path

    maps = engine.layer_maps(dataset.texts, params, report=report)
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
