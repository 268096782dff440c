"""Which cached row vectors keep an engine's precision promise, and what its runs are named.

A run's name says what its vectors promise (:func:`promise_of`): float32 (equal to
sentence-transformers to 1e-5), auto (within 0.9999 cosine of float32, whichever precision
computed them), or an explicit low precision. Each stored vector records the precision it was
computed in, and ``checked`` where auto chose that precision (:func:`stored_meta`).
:func:`serves` decides which stored vectors a run may take, so a cluster's fp16 rows open warm on
a desktop in auto that computes in bf16 or fp32, while a float32 run recomputes them (and its
float32 vectors then serve everyone).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from engine.cache.store import Cache, as_float32
from engine.core import cached_values
from engine.model.precision import DTYPES


def promise_of(requested: str) -> str | None:
    """The promise a run's name carries: None for fp32 (names as before precision existed,
    so their maps stay warm), ``auto``, or the explicit low precision's dtype name."""
    if requested == "auto":
        return "auto"
    return None if requested == "fp32" else DTYPES.get(requested, requested)


def stored_meta(computed_in: str, requested: str) -> dict[str, object]:
    """What a vector computed in ``computed_in`` for a run asking ``requested`` records."""
    meta: dict[str, object] = {"precision": computed_in}
    if computed_in != "float32" and requested == "auto":
        meta["checked"] = True  # auto chose it: it agrees with float32 on this model
    return meta


def serves(stored: str, *, checked: bool, requested: str, resolved: Callable[[], str]) -> bool:
    """Whether a vector computed in ``stored`` serves a run asking ``requested``; ``resolved``
    gives the dtype that run computes in (called only where needed: it may load the model)."""
    if stored == "float32":
        return True
    if requested == "auto":
        return checked or stored == resolved()
    # An explicit precision by its name: fp16 asked for on a CPU-only node (a cluster's final
    # map after GPU workers) takes the workers' fp16 rows without resolving the device.
    return stored == DTYPES.get(requested)


def usable_vectors(
    cache: Cache, keys: list[str], width: int | None, requested: str, resolved: Callable[[], str]
) -> list[npt.NDArray[np.float32] | None]:
    """The cached vectors for ``keys`` (None where missing, malformed or not :func:`serves`)."""
    vectors: list[npt.NDArray[np.float32] | None] = []
    unusable: list[str] = []  # rejected together: one log line per call, not one per row
    # The codec checks shape (the model's width), dtype and finiteness before decompressing.
    for key, hit in zip(keys, cache.get_many(keys, cached_values.embedding_expected(width)), strict=True):
        if hit is None:
            vectors.append(None)
            continue
        stored = hit.meta.get("precision", "float32")
        if not isinstance(stored, str):
            unusable.append(key)
            vectors.append(None)
        elif not serves(
            stored, checked=hit.meta.get("checked") is True, requested=requested, resolved=resolved
        ):
            vectors.append(None)
        else:
            vectors.append(as_float32(hit))
    if unusable:
        cache.reject(unusable[0], "its precision is not a dtype name", count=len(unusable))
    return vectors
