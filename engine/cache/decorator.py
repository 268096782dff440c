"""``@cached``: put a function's array result in the cache under a content address.

The decorated function is a method of an object with a ``cache`` attribute (the engine).
``key`` maps the call's arguments to the parts the result depends on; the cache key is
``loupe:v<schema>:<kind>:<digest of those parts>``. ``expect`` maps them to what a cached
value must look like (:class:`engine.cache.codec.Expected`: dtype, shape, size, finite),
checked before the value is decompressed. ``store`` turns the result into (array, JSON
metadata); ``load(decoded, owner, *args, **kwargs)`` turns a cached value back into a result
for this call and raises for a value that does not fit it. Any exception from ``load`` is a
miss: logged, counted as invalid, recomputed and overwritten, exactly like a value that fails
the codec's checks; never a crash. A result that cannot be stored is returned all the same.

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

from engine.cache.codec import Codec, Decoded, Expected
from engine.cache.keys import cache_key
from engine.cache.store import DEFAULT_EXPECTED, Cache

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
    expect: Callable[..., Expected] | None = None,
    codec: Codec = "zstd",
    store: Callable[[Any], Stored] = _as_array,
    load: Callable[..., Any] = _array_from,
) -> Callable[[Callable[Concatenate[Any, P], R]], Callable[Concatenate[Any, P], R]]:
    """Cache the decorated method's result under ``kind`` (see the module docstring)."""

    def decorate(fn: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
        @functools.wraps(fn)
        def wrapper(owner: HasCache, /, *args: P.args, **kwargs: P.kwargs) -> R:
            address = cache_key(kind, key(owner, *args, **kwargs))
            wanted = DEFAULT_EXPECTED if expect is None else expect(owner, *args, **kwargs)
            hit = owner.cache.get(address, wanted)
            if hit is not None:
                try:
                    return load(hit, owner, *args, **kwargs)  # type: ignore[no-any-return]
                except Exception as exc:  # whatever a hostile value makes a loader raise
                    owner.cache.reject(address, f"{type(exc).__name__}: {exc}")
            result = fn(owner, *args, **kwargs)
            try:
                array, meta = store(result)
                # A value its own readers would refuse (attention of a text longer than the read
                # bound, say) is not written: it would be recomputed on every run all the same,
                # and rewriting it would push other values out of the cache.
                wanted.check(array.dtype.name, tuple(array.shape), array.nbytes)
                owner.cache.set(kind, address, array, codec_name=codec, meta=meta)
            except Exception as exc:  # the result is correct; only caching it failed
                log.warning("could not cache %s (%s: %s)", address, type(exc).__name__, exc)
            return result

        return wrapper

    return decorate
