"""Views of attention maps: head averages, attention rollout, special tokens, character spans.

Pure numpy: everything here works on :class:`~engine.inference.AttentionMaps` that the eager
path has already produced, so the desktop can recompute a view on a click without torch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.inference import AttentionMaps


def head_average(maps: AttentionMaps) -> npt.NDArray[np.float32]:
    """The mean over heads of every layer: ``[layers, T, T]``."""
    averaged: npt.NDArray[np.float32] = maps.attentions.mean(axis=1, dtype=np.float64).astype(np.float32)
    return averaged


def rollout(maps: AttentionMaps, *, residual: bool = True, start_layer: int = 0) -> npt.NDArray[np.float32]:
    """Attention rollout (Abnar & Zuidema 2020) from ``start_layer`` to the last layer: ``[T, T]``.

    Each layer's heads are averaged; with ``residual`` the skip connection is modelled as
    ``0.5 * A + 0.5 * I``; rows are re-normalised to sum to 1, and the layers are multiplied
    in order, ``R = A'_L @ ... @ A'_start``, so row i says how much each input token flows
    into token i at the top. Computed in float64 so deep models do not drift from 1.
    """
    layers = maps.layers
    if not 0 <= start_layer < layers:
        raise BadInputError(f"start_layer {start_layer} is out of range: the layers are 0..{layers - 1}.")
    averaged = maps.attentions.astype(np.float64).mean(axis=1)
    tokens = averaged.shape[-1]
    result = np.eye(tokens)
    for layer in range(start_layer, layers):
        step = averaged[layer]
        if residual:
            step = 0.5 * step + 0.5 * np.eye(tokens)
        # A row of exact zeros (nothing attended) stays zero rather than dividing by zero.
        sums = step.sum(axis=-1, keepdims=True)
        step = np.divide(step, sums, out=np.zeros_like(step), where=sums > 0)
        result = step @ result
    return result.astype(np.float32)


def without_special(maps: AttentionMaps) -> AttentionMaps:
    """``maps`` with the special tokens' rows and columns dropped.

    The remaining values are kept as they were, not re-normalised: a row then sums to less
    than 1 by exactly the share that went to special tokens, which is the honest picture
    (BERT-like models park much of their attention on [CLS]/[SEP]). Callers that want rows
    summing to 1 can divide themselves.
    """
    keep = np.array([not s for s in maps.special], dtype=bool)
    index = np.flatnonzero(keep)
    return replace(
        maps,
        tokens=tuple(maps.tokens[i] for i in index),
        offsets=tuple(maps.offsets[i] for i in index),
        special=tuple(False for _ in index),
        attentions=np.ascontiguousarray(maps.attentions[:, :, index][:, :, :, index]),
    )


def token_spans(maps: AttentionMaps) -> list[tuple[int, int] | None]:
    """Each token's ``(start, end)`` character span in ``maps.text``; None for special tokens.

    ``maps.text[start:end]`` is the token's surface (for WordPiece without its ``##``), which
    is what highlighting the text under a token needs.
    """
    return [
        None if special or start == end else (start, end)
        for (start, end), special in zip(maps.offsets, maps.special, strict=True)
    ]
