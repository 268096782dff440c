"""A map of very many rows: fit on a spread sample of them, then place every other row on it.

``--fit-sample N`` (:attr:`ProjectionParams.fit_sample <engine.maps.projection.ProjectionParams>`)
fits the asked-for method on ``N`` rows chosen by :func:`spread_sample` and puts each other row
at the similarity-weighted mean of the positions of its nearest sampled rows
(:mod:`engine.maps.placement`). The sampled rows keep their fitted positions exactly. A UMAP fit
grows faster than linearly with the rows and placing is a neighbour search, so at 1M rows this
is the way to a map at all (tests/bench/results/fit_sample.md has the times and the
trustworthiness it costs at 50,000 rows, where both can be measured).

UMAP fits up to 10,000 rows with 500 epochs and larger ones with 200 (umap-learn's default), so
a sample of 10,000 rows costs about as much as a full fit of 50,000: the sample pays from a few
hundred thousand rows, and a sample above 10,000 rows is both cheaper per row and more faithful.

The same rows, parameters, sample size and seed give the same map: the sample is drawn from
``numpy.random.default_rng(seed)``, the fit is seeded, and placement is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.maps.parameter_specs import Value, shown
from engine.maps.placement import RowPlacer, placement_recipe
from engine.runtime.jobs import CancelToken, Report, silent_report

# Bump when spread_sample picks other rows for the same (rows, size, seed), so maps cached with
# the old sample are not served as if this one had been fitted.
SAMPLE_RULE = 1


def check_fit_sample(method: str, size: object, values: Mapping[str, Value]) -> None:
    """One sentence unless ``size`` rows are a sample ``method`` can be fitted on: enough that a
    sampled row's neighbours (UMAP's n_neighbors, t-SNE's about 3 × perplexity) are not most of it."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise BadInputError(f"--fit-sample must be a whole number of rows, not {size!r}.")
    if method == "pca":
        raise BadInputError("--fit-sample is for umap and tsne: PCA fits every row in seconds, even 1M rows.")
    if method == "umap":
        least, why = 2 * int(values["n_neighbors"]), f"twice n_neighbors ({values['n_neighbors']})"
    else:
        perplexity = float(values["perplexity"])
        least, why = math.ceil(3 * perplexity), f"3 × perplexity ({shown(perplexity)})"
    if size < max(least, 3):
        raise BadInputError(f"--fit-sample must be at least {max(least, 3)} rows ({why}), not {size}.")


def fit_sample_recipe() -> dict[str, object]:
    """What a fit-sample map depends on besides its size and the fit's own parameters."""
    return {"sample": SAMPLE_RULE, "placement": placement_recipe()}


def spread_sample(rows: int, size: int, seed: int) -> npt.NDArray[np.intp]:
    """``size`` row indices, ascending: one drawn at random (seeded) from each of ``size`` equal
    stretches of the rows.

    Spread like the window's progressive sample (evenly through the file, so a file sorted by
    topic or date is covered end to end) but seeded rather than evenly spaced, so a file with a
    period of its own (every 10th row a heading, say) is not sampled at one phase of it.
    """
    if size >= rows:
        return np.arange(rows, dtype=np.intp)
    edges = np.linspace(0, rows, size + 1).round().astype(np.intp)  # size stretches, none empty
    offsets = np.random.default_rng(seed).random(size)
    return edges[:-1] + (offsets * (edges[1:] - edges[:-1])).astype(np.intp)


def fit_then_place(
    vectors: npt.NDArray[np.float32],
    sample: npt.NDArray[np.intp],
    fit: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]],
    *,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> npt.NDArray[np.float32]:
    """Coordinates ``[rows, 2]``: ``fit(vectors[sample])`` for the sampled rows, every other row
    placed on that map."""
    rows = len(vectors)
    if token is not None:
        token.raise_if_cancelled()
    sampled = np.ascontiguousarray(vectors[sample])
    fitting = f"Fitting the map on a spread sample of {len(sample):,} of {rows:,} rows"
    report(0, 1, fitting)
    fitted = np.asarray(fit(sampled), dtype=np.float32)
    report(1, 1, fitting)
    coords = np.empty((rows, 2), np.float32)
    coords[sample] = fitted
    rest = np.ones(rows, bool)
    rest[sample] = False
    if rest.any():
        placer = RowPlacer(sampled, fitted)
        coords[rest] = placer.place(vectors[rest], token=token, report=report)
    return coords
