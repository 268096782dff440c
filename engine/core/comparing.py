"""Comparing two embedding runs of the same rows, with the comparison's own result cached.

Each side's embeddings and map come from its engine (and so from the cache when present:
comparing two already-embedded models computes no embedding). What is the comparison's own
work, the two neighbour searches and CKA, is cached under both runs' input ids, so a rerun
reads one value. The alignment and the displacements are cheap and recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.cache.codec import Decoded, Expected
from engine.cache.decorator import cached
from engine.cache.store import Cache, as_float32
from engine.core.cached_values import FLOAT32, SMALL_HEADER
from engine.core.runs import EmbeddingRun
from engine.errors import BadInputError
from engine.maps import comparison, neighbour_index
from engine.runtime.jobs import CancelToken, Report, silent_report

# Bump when what the cached comparison means changes (its measures, not its inputs).
RECIPE = 1


@dataclass(frozen=True)
class SpaceScores:
    """The comparison's own expensive results: per-row neighbour overlap, and linear CKA."""

    overlap: npt.NDArray[np.float32]
    cka: float
    exact: bool
    computed: bool  # False when it came from the cache


def _key(comparer: Comparer, base: EmbeddingRun, against: EmbeddingRun, k: int, **_: Any) -> dict[str, Any]:
    rows = len(base.vectors)
    return {
        "recipe": RECIPE,
        "base": base.input_id,
        "against": against.input_id,
        "rows": rows,
        "k": k,
        "neighbours": neighbour_index.index_kind(rows),
    }


def _expected(comparer: Comparer, base: EmbeddingRun, against: EmbeddingRun, k: int, **_: Any) -> Expected:
    rows = len(base.vectors)
    return Expected(
        shape=(rows,), dtypes=FLOAT32, max_bytes=4 * rows, max_header_bytes=SMALL_HEADER, finite=True
    )


def _store(scores: SpaceScores) -> tuple[npt.NDArray[Any], dict[str, Any]]:
    # A degenerate space's NaN CKA is stored as null: the codec keeps metadata strict JSON.
    cka = None if np.isnan(scores.cka) else scores.cka
    return scores.overlap, {"cka": cka, "exact": scores.exact}


def _load(
    decoded: Decoded, comparer: Comparer, base: EmbeddingRun, against: EmbeddingRun, k: int, **_: Any
) -> SpaceScores:
    """A cached comparison, checked like anything read from a shared cache: raise where it does not fit.

    Beyond the shape and range, each overlap must be a Jaccard overlap two lists of k rows can
    have (j shared of 2k - j), and a missing CKA (stored for NaN) is only what a space with every
    row in one place gives: a planted null or 0.37 would otherwise be served as a result."""
    overlap = as_float32(decoded)
    rows = len(base.vectors)
    if overlap.shape != (rows,):
        raise ValueError("overlaps do not fit the rows")
    if overlap.size and (overlap.min() < 0 or overlap.max() > 1):
        raise ValueError("overlap outside [0, 1]")
    if overlap.size and not _possible_overlaps(overlap, min(k, rows - 1)):
        raise ValueError("an overlap that no two neighbour lists of k rows can have")
    cka, exact = decoded.meta.get("cka"), decoded.meta.get("exact")
    if cka is None and _degenerate(base, against):
        cka = float("nan")
    elif type(cka) is not float or not 0.0 <= cka <= 1.0:
        raise ValueError("CKA is not a number between 0 and 1")
    if type(exact) is not bool:
        raise ValueError("the neighbour search's kind is not a boolean")
    return SpaceScores(overlap, cka, exact, computed=False)


def _possible_overlaps(overlap: npt.NDArray[np.float32], k: int) -> bool:
    """Every value is j / (2k - j) for a whole j in 0..k (float32's rounding allowed)."""
    if k < 1:
        return bool(np.all(overlap == 1.0))
    values = overlap.astype(np.float64)
    shared = np.rint(2 * k * values / (1 + values))
    return bool(np.all(np.abs(shared / (2 * k - shared) - values) < 1e-6))


def _degenerate(*runs: EmbeddingRun) -> bool:
    """True when a run has every row in one place (where linear CKA is undefined: NaN)."""
    return any(len(run.vectors) and bool(np.all(run.vectors == run.vectors[0])) for run in runs)


class Comparer:
    """The cached part of comparing two runs (an object with a ``cache``, for ``@cached``)."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    @cached("cmp", key=_key, expect=_expected, store=_store, load=_load)
    def space_scores(
        self,
        base: EmbeddingRun,
        against: EmbeddingRun,
        k: int,
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> SpaceScores:
        """Per-row neighbour overlap and CKA of two runs of the same rows (cached)."""
        rows = len(base.vectors)
        if len(against.vectors) != rows:
            raise BadInputError(
                f"The two sides have {rows} and {len(against.vectors)} rows: compare the same rows."
            )
        if rows < 3:
            raise BadInputError(f"A comparison needs at least 3 rows, not {rows}.")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise BadInputError(f"k must be a whole number of at least 1, not {k!r}.")

        def half(offset: int, name: str) -> Report:  # two searches, one progress bar
            return lambda done, total, message="": report(
                offset * total + done, 2 * total, f"{name}: {message}"
            )

        first = neighbour_index.nearest(base.vectors, k, token=token, report=half(0, "Base neighbours"))
        second = neighbour_index.nearest(
            against.vectors, k, token=token, report=half(1, "Against neighbours")
        )
        overlap = comparison.neighbour_overlap(first.indices, second.indices)
        cka = comparison.linear_cka(base.vectors, against.vectors)
        return SpaceScores(overlap, cka, exact=first.exact and second.exact, computed=True)


def overlap_by_label(
    overlap: npt.NDArray[np.float32], labels: Sequence[str | None] | None
) -> dict[str, float]:
    """Mean overlap per label, or nothing for a dataset without labels."""
    return {} if labels is None else comparison.mean_by_label(overlap, labels)
