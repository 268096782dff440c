"""What a cached value of the engine must be, and how it is read back.

Each ``*_expected`` bounds a value (shape, dtype, size, finiteness) so the codec refuses a
value that does not fit before it decompresses anything; each ``*_from`` rebuilds a result
from a value and raises ValueError where it does not fit, which the cache takes as a miss.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.cache.codec import Decoded, Expected
from engine.cache.store import as_float32
from engine.core.runs import Clustering
from engine.model.attention_stats import AttentionStatistics, statistics_from_array
from engine.model.inference import AttentionMaps
from engine.model.models import ModelSpec

# What a cached value must be, checked by the codec before it decompresses anything.
FLOAT32: frozenset[str] = frozenset({"float32"})
FLOATS: frozenset[str] = frozenset({"float32", "float64"})
INTEGERS: frozenset[str] = frozenset({"int32", "int64"})
MAX_WIDTH = 65536  # a model width beyond any real one, for a config that states none
SMALL_HEADER = 4096  # an embedding's or a map's header holds a few short fields


def embedding_expected(width: int | None) -> Expected:
    """One row's vector: exactly the model's width (rows x width for a batch), finite float32."""
    shape = (width,) if width else (None,)
    return Expected(
        shape=shape,
        dtypes=FLOAT32,
        max_bytes=4 * (width or MAX_WIDTH),
        max_header_bytes=SMALL_HEADER,
        finite=True,
    )


def coords_expected(rows: int) -> Expected:
    return Expected(
        shape=(rows, 2), dtypes=FLOATS, max_bytes=16 * rows, max_header_bytes=SMALL_HEADER, finite=True
    )


def attention_expected(spec: ModelSpec) -> Expected:
    """layers x heads x tokens x tokens, tokens at most the model's maximum length."""
    heads = spec.heads or 64
    most = (spec.layers or 64) * heads * spec.max_length**2 * 4
    return Expected(
        shape=(spec.layers, spec.heads, None, None),
        dtypes=FLOAT32,
        max_bytes=min(most, 512 << 20),
        finite=True,
    )


def coords_from(decoded: Decoded, rows: int) -> npt.NDArray[np.float32]:
    coords = as_float32(decoded)
    if coords.shape != (rows, 2):
        raise ValueError(f"a projection of {rows} rows has shape ({rows}, 2), not {coords.shape}")
    return coords


def attention_from(decoded: Decoded, text: str) -> AttentionMaps:
    """Attention maps from a cached value; ValueError unless its tokens fit ``text`` and its maps."""
    meta = decoded.meta
    tokens, offsets, special = meta["tokens"], meta["offsets"], meta["special"]
    if not (isinstance(tokens, list) and isinstance(offsets, list) and isinstance(special, list)):
        raise ValueError("token metadata is not three lists")
    if not all(isinstance(t, str) for t in tokens) or not all(type(s) is bool for s in special):
        raise ValueError("tokens are not strings or special flags not booleans")
    if not all(
        isinstance(o, list)
        and len(o) == 2
        and all(type(i) is int for i in o)
        and 0 <= o[0] <= o[1] <= len(text)
        for o in offsets
    ):
        raise ValueError("token offsets are not spans of the text")
    maps = AttentionMaps(
        text=text,
        tokens=tuple(tokens),
        offsets=tuple((a, b) for a, b in offsets),
        special=tuple(special),
        attentions=as_float32(decoded),
    )
    n = len(maps.tokens)
    if maps.attentions.ndim != 4 or maps.attentions.shape[2:] != (n, n):
        raise ValueError("attention shape does not match its tokens")
    if len(maps.offsets) != n or len(maps.special) != n:
        raise ValueError("token metadata lengths differ")
    return maps


def statistics_from(decoded: Decoded, requested: int) -> AttentionStatistics:
    rows, asked = decoded.meta.get("rows"), decoded.meta.get("requested")
    if type(rows) is not int or type(asked) is not int or not 0 <= rows <= asked == requested:
        raise ValueError("row counts do not fit the group")
    if np.isinf(decoded.array).any():
        raise ValueError("infinite statistics")
    return statistics_from_array(as_float32(decoded), {"rows": rows, "requested": asked})


def clustering_from(decoded: Decoded) -> Clustering:
    """Clusters from a cached value: labels -1 (noise) or >= 0, one string name per cluster."""
    labels = np.asarray(decoded.array, np.int32)
    names = decoded.meta.get("names")
    if not isinstance(names, dict):
        raise ValueError("cluster names are not an object")
    if not all(
        isinstance(k, str) and k.isascii() and k.isdigit() and isinstance(v, str) for k, v in names.items()
    ):
        raise ValueError("cluster names are not numbered strings")
    if labels.size and labels.min() < -1:
        raise ValueError("labels below -1")
    named = {int(k): v for k, v in names.items()}
    if set(named) != {int(label) for label in np.unique(labels) if label != -1}:
        raise ValueError("cluster names do not match the labels")
    if named and max(named) >= len(labels):  # the window lists clusters 0..highest: bound it by rows
        raise ValueError("a cluster number is larger than the number of rows")
    return Clustering(labels=labels, names=named)


def shares_from(decoded: Decoded) -> npt.NDArray[np.float32]:
    """Faithfulness per row: a share, between 0 and 1."""
    shares = as_float32(decoded)
    if shares.size and (shares.min() < 0 or shares.max() > 1):
        raise ValueError("faithfulness outside [0, 1]")
    return shares
