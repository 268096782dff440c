"""Attention statistics of a group of rows: a layers x heads grid per statistic.

For a group of texts (a lasso selection) each head of each layer gets three numbers:

* ``entropy``: how spread out a query token's attention is. The Shannon entropy of each query
  row (natural log) divided by the log of the number of keys that query can see, so it lies
  in [0, 1] whatever the text's length (the units cancel, so nats or bits give the same
  value): 1 is uniform attention over every visible key, 0 is all of it on one key. Without
  the division a long text would look more diffuse only because it has more keys.
* ``special``: the share of attention that goes to special tokens ([CLS], [SEP], <s>...).
* ``previous``: the attention from token i to token i-1 (the "previous-token head" pattern).

Each text is computed exactly over its own tokens (no padding), each query token's value is
averaged within the text, and the texts are then averaged with equal weight: a group's
statistic is "what a typical row looks like", not dominated by its longest rows.

Cached attention is quantised to 8 bits, so a row can sum to 1 +- a few thousandths; rows
are re-normalised before anything is measured, which keeps entropies comparable between
freshly computed and cached maps.

Pure numpy and no Qt, like :mod:`engine.model.attention`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.model.inference import AttentionMaps

STATISTICS = ("entropy", "special", "previous")
LABELS = {
    "entropy": "entropy (normalised)",
    "special": "to special tokens",
    "previous": "to previous token",
}
DESCRIPTIONS = {
    "entropy": "Mean entropy of each query token's attention, divided by log(visible keys): "
    "1 is uniform, 0 is one key.",
    "special": "Mean share of each query token's attention that goes to special tokens ([CLS], [SEP], <s>).",
    "previous": "Mean attention from each token to the token just before it.",
}
Grid = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AttentionStatistics:
    """Layers x heads grids of attention statistics over ``rows`` texts (see the module docstring).

    ``requested`` is the size of the group asked for; when it is larger than ``rows`` the
    statistics come from an even random sample of it (see ``Engine.attention_statistics``).
    """

    entropy: Grid
    special: Grid
    previous: Grid
    rows: int
    requested: int

    @property
    def layers(self) -> int:
        return int(self.entropy.shape[0])

    @property
    def heads(self) -> int:
        return int(self.entropy.shape[1])

    @property
    def sampled(self) -> bool:
        return self.rows < self.requested

    @staticmethod
    def names() -> tuple[str, ...]:
        """The statistics' names, in the order a chooser lists them."""
        return STATISTICS

    def values(self, name: str) -> Grid:
        """The ``[layers, heads]`` grid of statistic ``name``."""
        if name not in STATISTICS:
            raise BadInputError(
                f"There is no attention statistic called {name!r}: use {', '.join(STATISTICS)}."
            )
        grid: Grid = getattr(self, name)
        return grid

    def describe(self, name: str) -> str:
        """One sentence saying what ``name`` measures and over how many rows."""
        self.values(name)
        rows = f"{self.rows} rows" + (f" sampled from {self.requested}" if self.sampled else "")
        return f"{DESCRIPTIONS[name]} Averaged over {rows}, each row weighted equally."


def text_statistics(maps: AttentionMaps) -> tuple[Grid, Grid, Grid]:
    """One text's ``(entropy, special, previous)`` grids, each ``[layers, heads]``.

    A grid is NaN where the text cannot say anything (one token: no previous token and no
    choice of key); :func:`attention_statistics` leaves such texts out of that mean.
    """
    attention = _normalised(maps.attentions)
    tokens = attention.shape[-1]
    visible = _visible_keys(attention)
    return (
        _entropy(attention, visible),
        _to_special(attention, maps.special),
        _to_previous(attention) if tokens > 1 else _nan_grid(attention),
    )


def attention_statistics(
    maps_list: Iterable[AttentionMaps], requested: int | None = None
) -> AttentionStatistics:
    """The group's statistics: each text's (see :func:`text_statistics`), averaged per text.

    ``requested`` is the size of the group the maps were sampled from (default: their number).
    """
    per_text = [text_statistics(maps) for maps in maps_list]
    if not per_text:
        raise BadInputError("There are no rows to compute attention statistics for.")
    shapes = {grids[0].shape for grids in per_text}
    if len(shapes) > 1:
        raise BadInputError("The rows' attention maps come from models of different shapes.")
    entropy, special, previous = (_mean_over_texts([grids[k] for grids in per_text]) for k in range(3))
    return AttentionStatistics(
        entropy=entropy,
        special=special,
        previous=previous,
        rows=len(per_text),
        requested=len(per_text) if requested is None else requested,
    )


def _normalised(attentions: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Rows divided by their sums, in float64; an all-zero row stays zero."""
    attention = attentions.astype(np.float64)
    sums = attention.sum(axis=-1, keepdims=True)
    normalised: npt.NDArray[np.float64] = np.divide(
        attention, sums, out=np.zeros_like(attention), where=sums > 0
    )
    return normalised


def _visible_keys(attention: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """How many keys each query may attend to: all of them, or i+1 for a causal (decoder) model.

    A decoder's query i cannot see keys after i, so dividing its entropy by log(T) would make
    early tokens look focused only because they have few keys to choose from.
    """
    tokens = attention.shape[-1]
    causal = tokens > 1 and not np.triu(attention, k=1).any()
    counts = np.arange(1, tokens + 1) if causal else np.full(tokens, tokens)
    return counts.astype(np.float64)


def _entropy(attention: npt.NDArray[np.float64], visible: npt.NDArray[np.float64]) -> Grid:
    """Mean over queries of H(row) / log(visible keys); queries with one visible key are skipped."""
    logs = np.log(attention, out=np.zeros_like(attention), where=attention > 0)
    entropy = -(attention * logs).sum(axis=-1)  # [layers, heads, queries]
    usable = visible > 1
    if not usable.any():
        return _nan_grid(attention)
    normalised = entropy[..., usable] / np.log(visible[usable])
    return _grid(normalised.mean(axis=-1))


def _to_special(attention: npt.NDArray[np.float64], special: tuple[bool, ...]) -> Grid:
    mask = np.asarray(special, dtype=bool)
    mass = attention[..., mask].sum(axis=-1)  # [layers, heads, queries]
    return _grid(mass.mean(axis=-1))


def _to_previous(attention: npt.NDArray[np.float64]) -> Grid:
    """Mean over queries 1..T-1 of the weight on key i-1 (query 0 has no previous token)."""
    previous = np.diagonal(attention, offset=-1, axis1=-2, axis2=-1)  # [layers, heads, T-1]
    return _grid(previous.mean(axis=-1))


def _grid(values: npt.NDArray[np.float64]) -> Grid:
    return np.asarray(values, dtype=np.float32)


def _nan_grid(attention: npt.NDArray[np.float64]) -> Grid:
    return np.full(attention.shape[:2], np.nan, dtype=np.float32)


def _mean_over_texts(grids: list[Grid]) -> Grid:
    """Per cell, the mean over the texts that have a value there (NaN only where none has)."""
    stacked = np.stack(grids).astype(np.float64)
    counts = np.isfinite(stacked).sum(axis=0)
    sums = np.nansum(stacked, axis=0)
    mean = np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)
    return _grid(mean)


MAX_ROWS = 512  # a group's statistics settle long before this; more would only cost time
SAMPLE_SEED = 0


def group_sample(texts: Sequence[str], max_rows: int = MAX_ROWS) -> list[str]:
    """The texts a group's statistics use: the non-blank ones, at most ``max_rows`` of them.

    A larger group is sampled uniformly at random with a fixed seed (so the same selection
    always gives the same sample, and the same cache entry), keeping the rows' order. Random
    rather than every k-th row because a lasso selection's order can follow the data's.
    """
    usable = [text for text in texts if text.strip()]
    if len(usable) <= max_rows:
        return usable
    chosen = np.random.default_rng(SAMPLE_SEED).choice(len(usable), size=max_rows, replace=False)
    return [usable[i] for i in np.sort(chosen)]


def group_digest(texts: Sequence[str]) -> str:
    """A digest naming exactly these texts in this order (length-prefixed, so no two lists collide)."""
    digest = hashlib.blake2b(digest_size=20)
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def statistics_to_array(stats: AttentionStatistics) -> tuple[npt.NDArray[np.float32], dict[str, int]]:
    """``[3, layers, heads]`` (in :data:`STATISTICS` order) and the row counts, for the cache."""
    return np.stack([stats.values(name) for name in STATISTICS]), {
        "rows": stats.rows,
        "requested": stats.requested,
    }


def statistics_from_array(array: npt.NDArray[np.float32], meta: dict[str, int]) -> AttentionStatistics:
    """The inverse of :func:`statistics_to_array`; ValueError for a value of the wrong shape."""
    if array.ndim != 3 or array.shape[0] != len(STATISTICS):
        raise ValueError(f"attention statistics have shape (3, layers, heads), not {array.shape}")
    grids = {name: np.asarray(array[k], np.float32) for k, name in enumerate(STATISTICS)}
    return AttentionStatistics(**grids, rows=int(meta["rows"]), requested=int(meta["requested"]))
