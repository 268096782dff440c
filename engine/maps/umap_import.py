"""umap-learn, imported so that numba caches its compiled kernels in Loupe's cache directory.

Imported lazily by :mod:`engine.maps.projection` (umap-learn takes seconds to import).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def import_umap() -> Any:
    """umap-learn, imported so that numba caches its compiled kernels on disk (see below)."""
    prepare_numba_cache()
    with _IMPORT_LOCK:
        if "umap" not in sys.modules:
            with _numba_caches_by_default(), warnings.catch_warnings():
                # umap-learn announces on import that TensorFlow (for ParametricUMAP) is missing.
                warnings.simplefilter("ignore", ImportWarning)
                import umap  # noqa: F401
    return sys.modules["umap"]


_IMPORT_LOCK = threading.Lock()


@contextmanager
def _numba_caches_by_default() -> Iterator[None]:
    """While umap-learn is imported, make ``cache=True`` the default of its numba kernels.

    Most of umap-learn's kernels are compiled without ``cache=True``, so NUMBA_CACHE_DIR alone
    left a new process about 20 s of compiling before its first map; with this, every process
    after the first loads them from Loupe's cache. Only functions defined in umap's own modules
    are affected (pynndescent chooses for itself: the kernels it leaves uncached hold ctypes
    pointers and cannot be cached), an explicit ``cache=False`` stays, and only during the import.
    """
    import numba

    originals = numba.njit, numba.jit

    def caching(decorator: Callable[..., Any]) -> Callable[..., Any]:
        def decorate(*args: Any, **kwargs: Any) -> Any:
            if len(args) == 1 and callable(args[0]):  # @numba.njit or numba.njit(function, ...)
                return decorator(**_with_cache(args[0], **kwargs))(args[0])
            return lambda function: decorator(*args, **_with_cache(function, **kwargs))(function)

        return decorate

    numba.njit, numba.jit = caching(originals[0]), caching(originals[1])
    try:
        yield
    finally:
        numba.njit, numba.jit = originals


def _with_cache(function: Callable[..., Any], **options: Any) -> dict[str, Any]:
    if str(getattr(function, "__module__", "")).startswith("umap."):
        options.setdefault("cache", True)
        options.setdefault("nogil", True)
    return options


def prepare_numba_cache() -> None:
    """Point numba's on-disk cache at Loupe's cache directory (before umap is imported)."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        from engine.runtime.paths import cache_dir

        os.environ["NUMBA_CACHE_DIR"] = str(cache_dir() / "numba")
