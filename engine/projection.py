"""2-D projections of embedding matrices: PCA (instant preview) and UMAP (the map).

umap-learn compiles its kernels with numba on first use; ``NUMBA_CACHE_DIR`` is pointed at
Loupe's cache directory before umap is imported, so later processes reuse the compiled code.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError

Method = Literal["pca", "umap"]


@dataclass(frozen=True)
class ProjectionParams:
    """A projection method and its parameters; all of them go into the cache key."""

    method: Method = "umap"
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    seed: int = 42

    def validate(self) -> None:
        if self.method not in ("pca", "umap"):
            raise BadInputError(f"Unknown projection method {self.method!r}: use pca or umap.")
        if self.n_neighbors < 2:
            raise BadInputError(f"n_neighbors must be at least 2, not {self.n_neighbors}.")
        if not 0.0 <= self.min_dist <= 1.0:
            raise BadInputError(f"min_dist must be between 0 and 1, not {self.min_dist}.")

    def cache_parts(self) -> dict[str, Any]:
        parts: dict[str, Any] = asdict(self)
        if self.method == "pca":
            parts = {"method": "pca", "seed": self.seed}
        parts["versions"] = _library_versions(self.method)
        return parts


def _library_versions(method: Method) -> dict[str, str]:
    from importlib.metadata import version

    names = ["numpy", "scikit-learn"] + (["umap-learn", "numba"] if method == "umap" else [])
    return {name: version(name) for name in names}


def project(vectors: npt.NDArray[np.float32], params: ProjectionParams) -> npt.NDArray[np.float32]:
    """Project ``vectors`` [n, d] to [n, 2]; the same params and seed give the same map."""
    params.validate()
    n = vectors.shape[0]
    if n < 3:
        raise BadInputError(f"A map needs at least 3 rows, not {n}.")
    if params.method == "pca":
        return _pca(vectors)
    return _umap(vectors, params)


def _pca(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    from sklearn.decomposition import PCA

    coords = PCA(n_components=2, random_state=0).fit_transform(vectors.astype(np.float64))
    # PCA's sign is arbitrary; fix it so the same data always gives the same picture.
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), [0, 1]])
    return np.asarray(coords * np.where(signs == 0, 1, signs), dtype=np.float32)


def _umap(vectors: npt.NDArray[np.float32], params: ProjectionParams) -> npt.NDArray[np.float32]:
    prepare_numba_cache()
    with warnings.catch_warnings():
        # umap-learn announces on import that TensorFlow (for ParametricUMAP) is missing.
        warnings.simplefilter("ignore", ImportWarning)
        import umap

    n = vectors.shape[0]
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(params.n_neighbors, n - 1),
        min_dist=params.min_dist,
        metric=params.metric,
        random_state=params.seed,
        # Spectral initialisation needs more rows than n_components + 1 (scipy's eigsh).
        init="spectral" if n > 3 else "random",
    )
    with warnings.catch_warnings():
        # A fixed seed makes umap-learn single-threaded and say so; reproducible maps are the point.
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden", category=UserWarning)
        coords = reducer.fit_transform(vectors)
    return np.asarray(coords, dtype=np.float32)


def prepare_numba_cache() -> None:
    """Point numba's on-disk cache at Loupe's cache directory (before umap is imported)."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        from engine.paths import cache_dir

        os.environ["NUMBA_CACHE_DIR"] = str(cache_dir() / "numba")
