"""``@cached``: put a function's array result in the cache under a content address.

The decorated function is a method of an object with a ``cache`` attribute (the engine).
``key`` maps the call's arguments to the parts the result depends on; the cache key is
``loupe:v1:<kind>:<digest of those parts>``. ``store`` turns the result into (array, JSON
metadata); ``load(decoded, owner, *args, **kwargs)`` turns a cached value back into a result
for this call and raises ``ValueError`` (or ``KeyError``/
``TypeError``) for a value that does not fit the call, which then counts as a miss and is
recomputed and overwritten, exactly like a value that fails the codec's checks.

Per-row results (one key per text) go through :meth:`Cache.get_many`/:meth:`Cache.set_many`
directly, because they are looked up and written in batches.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from engine.cache.codec import Codec, Decoded
from engine.cache.keys import cache_key
from engine.cache.store import Cache

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


class HasCache(Protocol):
    cache: Cache


Stored = tuple[npt.NDArray[Any], dict[str, Any]]


def _as_array(result: Any) -> Stored:
    return np.asarray(result), {}


def _array_from(decoded: Decoded, *call: Any, **kwargs: Any) -> Any:
    return decoded.array


def cached(
    kind: str,
    *,
    key: Callable[..., Mapping[str, Any]],
    codec: Codec = "zstd",
    store: Callable[[Any], Stored] = _as_array,
    load: Callable[..., Any] = _array_from,
) -> Callable[[Callable[Concatenate[Any, P], R]], Callable[Concatenate[Any, P], R]]:
    """Cache the decorated method's result under ``kind`` (see the module docstring)."""

    def decorate(fn: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
        @functools.wraps(fn)
        def wrapper(owner: HasCache, /, *args: P.args, **kwargs: P.kwargs) -> R:
            address = cache_key(kind, key(owner, *args, **kwargs))
            hit = owner.cache.get(address)
            if hit is not None:
                try:
                    return load(hit, owner, *args, **kwargs)  # type: ignore[no-any-return]
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("cache value %s does not fit its call (%s); recomputing", address, exc)
            result = fn(owner, *args, **kwargs)
            array, meta = store(result)
            owner.cache.set(kind, address, array, codec_name=codec, meta=meta)
            return result

        return wrapper

    return decorate
