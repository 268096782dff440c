"""``loupe compare``: what changed between two embeddings of the same rows.

The two sides (a model, its layer, its pooling) are embedded and mapped by the engine's
``compare`` (each from the cache when present), the second map aligned onto the first. The
rows go to ``--out`` (with a provenance sidecar), the two maps to ``--figure``, and the
whole-space scores to stdout: they are the command's answer, so ``--quiet`` keeps them and
a script can read them; progress and "wrote" lines go to stderr as for every command.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.maps import open_dataset, projection_params
from engine.cli.outputs import check_out
from engine.cli.progress import end_progress_line
from engine.errors import LoupeError

if TYPE_CHECKING:
    from engine.api.protocol import EngineAPI
    from engine.api.types import ComparedSide, Comparison
    from engine.runtime.jobs import ProgressMeter


def compare_command(api: EngineAPI, args: argparse.Namespace, report: ProgressMeter) -> int:
    """``loupe compare``: both sides' maps and the per-row changes to ``--out``, the scores to stdout."""
    from engine.api.types import Compare, Side
    from engine.user.compare_export import (
        COMPARISON_FORMATS,
        comparison_provenance,
        comparison_summary,
        write_comparison_rows,
    )
    from engine.user.data_files import dataset_files
    from engine.user.export import sidecar_path, write_sidecar
    from engine.user.figures import FIGURE_FORMATS

    # Everything a user can get wrong is refused before any model is loaded.
    if args.k < 1:
        raise LoupeError(f"--k must be at least 1 (neighbours per row), not {args.k}.")
    inputs = dataset_files(args.path)
    for path, formats in ((args.out, COMPARISON_FORMATS), (args.figure, FIGURE_FORMATS)):
        if path is not None:
            check_out(path, formats, inputs)
            check_out(sidecar_path(path), ".json", inputs)
    params = projection_params(args)
    opened = open_dataset(api, args, report)
    if opened.own_vectors:
        raise LoupeError(
            f"{args.path} came with its own vectors (.npy): a comparison embeds its texts with two "
            "models, so open the table without the .npy beside it."
        )
    request = Compare(
        opened.dataset_id,
        Side(model=args.model, layer=args.layer, pooling=args.pooling),
        Side(model=args.against, layer=args.against_layer, pooling=args.against_pooling),
        params,
        k=args.k,
    )
    comparison = api.compare(request, report=report)
    end_progress_line(args.quiet)
    dataset = opened.dataset
    record = comparison_provenance(
        comparison,
        dataset_source=str(Path(dataset.path).resolve()) if dataset.path else None,
        dataset_fingerprint=dataset.fingerprint,
    )
    written = [write_comparison_rows(args.out, dataset, comparison, record)]
    if args.figure is not None:
        from engine.user.compare_figure import save_comparison_figure

        labels = dataset.labels if dataset.label_column else None
        written.append(save_comparison_figure(args.figure, comparison, labels, provenance=record))
        write_sidecar(args.figure, {**record, "scores": comparison_summary(comparison)})
    print(scores_text(comparison), end="")
    if not args.quiet:
        for path in written:
            print(f"loupe: wrote {path} and {sidecar_path(path).name}", file=sys.stderr)
    return 0


def scores_text(comparison: Comparison) -> str:
    """The whole-space scores as ``loupe compare`` prints them, one per line."""
    cka = comparison.cka
    lines = [
        f"base: {side_line(comparison.base)}",
        f"against: {side_line(comparison.against)}",
        f"rows: {len(comparison.overlap)}",
        f"mean neighbour overlap: {comparison.mean_overlap:.4f} (Jaccard of k={comparison.k} cosine "
        f"neighbours, {'exact' if comparison.exact_neighbours else 'approximate'} neighbours)",
        f"linear CKA: {'n/a (a space with every row in one place)' if math.isnan(cka) else f'{cka:.4f}'}",
    ]
    if comparison.overlap_by_label:
        lines.append("mean overlap by label:")
        width = max(len(label) for label in comparison.overlap_by_label)
        lines += [f"  {label:<{width}}  {value:.4f}" for label, value in comparison.overlap_by_label.items()]
    lines.append(f"comparison: {'from the cache' if comparison.from_cache else 'computed'}")
    return "\n".join(lines) + "\n"


def side_line(side: ComparedSide) -> str:
    """``all-MiniLM-L6-v2, layer 1, mean pooling (0 embedded, 2000 from the cache)``."""
    run = side.run
    layer = "last layer" if run.layer == -1 else f"layer {run.layer}"
    pooling = side.identity.pooling
    return (
        f"{side.identity.display_name}, {layer}, {pooling} pooling "
        f"({run.computed} embedded, {run.from_cache} from the cache)"
    )
