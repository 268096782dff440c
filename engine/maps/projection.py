"""2-D projections of embedding matrices: PCA (instant preview), UMAP (the map) and t-SNE.

Each method's parameters are described by :data:`PARAMETERS`, one :class:`ParamSpec` each, so
the command line (``--param k=v``) and the desktop's form parse and check them the same way
(:meth:`ProjectionParams.from_options`). Every parameter, defaults filled in, the seed and the
versions of the libraries that compute the map go into :meth:`ProjectionParams.cache_parts`.

UMAP goes through umap-learn with three changes that leave its algorithm alone: below 4,096 rows
the distance matrix it would build one Python call per pair is built vectorised (3x faster
fits); from 4,096 rows the neighbour graph comes from faiss (:mod:`engine.maps.neighbour_graph`)
instead of pynndescent, whose kernels cannot be cached (25 s of compiling in every process);
and umap-learn's numba kernels are compiled with ``cache=True`` into Loupe's cache directory
(``NUMBA_CACHE_DIR``), so only the first fit on a machine ever compiles them.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.maps.parameter_specs import ParamSpec, Value
from engine.maps.parameter_specs import listed as _listed
from engine.maps.parameter_specs import shown as _shown
from engine.maps.umap_import import import_umap as _import_umap
from engine.maps.umap_import import prepare_numba_cache
from engine.runtime.jobs import CancelToken, Report, silent_report

# Re-exported: callers prepare the cache before other numba users, and read specs and values here.
__all__ = ["ParamSpec", "Value", "prepare_numba_cache"]

Method = Literal["umap", "pca", "tsne"]
METHODS: tuple[Method, ...] = get_args(Method)

# Bump when Loupe's own handling of a method changes its output (e.g. PCA's sign rule), so
# maps cached by an older Loupe are not served as if this one had computed them.
RECIPE = 3  # 3: the neighbour graph from 4,096 rows comes from faiss, not pynndescent
_METRICS = ("cosine", "euclidean", "manhattan", "correlation")


PARAMETERS: dict[Method, dict[str, ParamSpec]] = {
    "umap": {
        "n_neighbors": ParamSpec(
            "int",
            15,
            "How many neighbours shape each point's place: small = local detail, large = global shape.",
            minimum=2,
            maximum=500,
        ),
        "min_dist": ParamSpec(
            "float",
            0.1,
            "How tightly points may pack: 0 = dense clumps, 1 = evenly spread.",
            minimum=0.0,
            maximum=1.0,
        ),
        "spread": ParamSpec(
            "float", 1.0, "The scale of the map; min_dist is measured against it.", minimum=0.1, maximum=10.0
        ),
        "metric": ParamSpec(
            "choice", "cosine", "How distance between embeddings is measured.", choices=_METRICS
        ),
    },
    "tsne": {
        "perplexity": ParamSpec(
            "float",
            30.0,
            "About how many neighbours each point keeps close; must be less than the rows.",
            minimum=1.0,
            maximum=500.0,
        ),
        "learning_rate": ParamSpec(
            "float",
            "auto",
            "Step size of the optimisation; auto scales it with the number of rows.",
            minimum=1.0,
            maximum=100000.0,
            words=("auto",),
        ),
        "early_exaggeration": ParamSpec(
            "float",
            12.0,
            "How far apart clusters are pushed early on: larger = more space between them.",
            minimum=1.0,
            maximum=100.0,
        ),
        "max_iter": ParamSpec(
            "int",
            1000,
            "Optimisation steps, 250 of them exaggerated; more = more settled.",
            minimum=250,
            maximum=10000,
        ),
        "metric": ParamSpec(
            "choice", "cosine", "How distance between embeddings is measured.", choices=_METRICS
        ),
    },
    "pca": {
        "whiten": ParamSpec(
            "bool", False, "Scale both axes to unit variance (a rounder, less elongated map)."
        ),
    },
}


@dataclass(frozen=True)
class ProjectionParams:
    """A projection method, its parameters and a seed; all of them go into the cache key.

    ``options`` holds the parameters set explicitly, as ``(name, value)`` pairs (kept sorted);
    :meth:`settings` fills in the defaults. Build one from strings with :meth:`from_options`.
    """

    method: Method = "umap"
    seed: int = 42
    options: tuple[tuple[str, Value], ...] = field(default=())
    # Fit on a spread sample of this many rows and place the others (engine.maps.fit_sample);
    # None fits every row. Not a method parameter: it is about which rows are fitted.
    fit_sample: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))

    @classmethod
    def from_options(
        cls, method: str, options: Mapping[str, Value] | None = None, seed: int = 42
    ) -> ProjectionParams:
        """Parse and check ``options`` (strings from ``--param k=v`` or a form, or Python values).

        Raises :class:`BadInputError` with one sentence: an unknown method or parameter (naming
        the valid ones) or a value of the wrong type or out of range.
        """
        checked = _method(method)
        parsed = {name: param_spec(checked, name).parse(name, raw) for name, raw in (options or {}).items()}
        params = cls(method=checked, seed=seed, options=tuple(parsed.items()))
        params.validate()
        return params

    def fitting_every_row(self) -> ProjectionParams:
        """These parameters without :attr:`fit_sample` (what the sample itself is fitted with)."""
        return replace(self, fit_sample=None)

    def with_options(self, **values: Value) -> ProjectionParams:
        """A copy with ``values`` set (checked by :meth:`validate`, not here)."""
        return replace(self, options=tuple({**dict(self.options), **values}.items()))

    def settings(self) -> dict[str, Value]:
        """Every parameter of the method, parsed, the explicitly set ones over the defaults.

        Raises :class:`BadInputError` for an unknown parameter or a bad value.
        """
        method = _method(self.method)
        given = {name: param_spec(method, name).parse(name, raw) for name, raw in self.options}
        return {name: spec.default for name, spec in PARAMETERS[method].items()} | given

    def value(self, name: str) -> Value:
        """One parameter's value (its default if not set)."""
        param_spec(_method(self.method), name)
        return self.settings()[name]

    def validate(self, rows: int | None = None) -> None:
        """Raise :class:`BadInputError` (one sentence) unless these parameters can map ``rows`` rows."""
        method = _method(self.method)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise BadInputError(f"The seed must be a whole number from 0 to {2**32 - 1}, not {self.seed!r}.")
        values = self.settings()
        if method == "umap" and float(values["min_dist"]) > float(values["spread"]):
            raise BadInputError(
                f"min_dist must not be larger than spread ({_shown(float(values['spread']))}), "
                f"not {_shown(float(values['min_dist']))}."
            )
        if self.fit_sample is not None:
            from engine.maps.fit_sample import check_fit_sample

            check_fit_sample(method, self.fit_sample, values)
        if rows is None:
            return
        if self.fit_sample is not None and self.fit_sample < rows:
            rows = self.fit_sample  # the fit sees the sample; the other rows are placed
        if rows < 3:
            raise BadInputError(f"A map needs at least 3 rows, not {rows}.")
        if method == "tsne" and float(values["perplexity"]) >= rows:
            raise BadInputError(
                f"perplexity must be less than the number of rows ({rows}), "
                f"not {_shown(float(values['perplexity']))}."
            )

    def cache_parts(self) -> dict[str, Any]:
        """What the map depends on: method, every parameter, seed, Loupe's recipe, library versions."""
        method = _method(self.method)
        parts: dict[str, Any] = {
            "method": method,
            "params": self.settings(),
            "seed": self.seed,
            "recipe": RECIPE,
            "versions": _library_versions(method),
        }
        if method == "umap":
            from engine.maps.neighbour_graph import graph_recipe

            parts["neighbours"] = graph_recipe()  # a map made with another graph differs
        if self.fit_sample is not None:  # absent otherwise: a full fit's address is unchanged
            from engine.maps.fit_sample import fit_sample_recipe

            parts["fit_sample"] = {"rows": self.fit_sample, **fit_sample_recipe()}
        return parts


def _method(method: str) -> Method:
    if method not in METHODS:
        raise BadInputError(f"Unknown projection method {method!r}: use {_listed(list(METHODS), 'or')}.")
    return method


def param_spec(method: Method, name: str) -> ParamSpec:
    """The schema of ``method``'s parameter ``name``; :class:`BadInputError` naming the valid ones."""
    specs = PARAMETERS[method]
    if name not in specs:
        raise BadInputError(
            f"{method} has no parameter {name!r}; its parameters are {_listed(list(specs), 'and')}."
        )
    return specs[name]


def _library_versions(method: Method) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["numpy", "scipy", "scikit-learn"]
    if method == "umap":
        names += ["umap-learn", "pynndescent", "numba"]
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # faiss-cpu is optional: the graph recipe says "missing"
            found[name] = "missing"
    return found


def project(
    vectors: npt.NDArray[np.float32],
    params: ProjectionParams,
    *,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> npt.NDArray[np.float32]:
    """Project ``vectors`` [n, d] to [n, 2] float32; the same params and seed give the same map.

    Runs on the calling thread (a job lane); a UMAP or t-SNE fit cannot stop halfway. With
    ``params.fit_sample`` below the rows, the fit is of a spread sample and the other rows are
    placed on it (:mod:`engine.maps.fit_sample`), which reports its progress and checks ``token``.
    """
    if vectors.ndim != 2:
        raise BadInputError(f"A map is made from a [rows, width] matrix, not shape {vectors.shape}.")
    params.validate(rows=vectors.shape[0])
    if params.fit_sample is not None and params.fit_sample < len(vectors):
        from engine.maps.fit_sample import fit_then_place, spread_sample

        every_row = params.fitting_every_row()
        sample = spread_sample(len(vectors), params.fit_sample, params.seed)
        return fit_then_place(
            vectors, sample, lambda sampled: project(sampled, every_row), token=token, report=report
        )
    if params.method == "pca":
        return _pca(vectors, params)
    if params.method == "tsne":
        return _tsne(vectors, params)
    return _umap(vectors, params)


def _pca(vectors: npt.NDArray[np.float32], params: ProjectionParams) -> npt.NDArray[np.float32]:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, whiten=bool(params.value("whiten")), random_state=params.seed)
    coords = pca.fit_transform(vectors.astype(np.float64))
    # PCA's sign is arbitrary; fix it so the same data always gives the same picture.
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), [0, 1]])
    return np.asarray(coords * np.where(signs == 0, 1, signs), dtype=np.float32)


def _tsne(vectors: npt.NDArray[np.float32], params: ProjectionParams) -> npt.NDArray[np.float32]:
    """scikit-learn's Barnes-Hut t-SNE, chosen over openTSNE by measuring both.

    Demo embeddings (all-MiniLM-L6-v2), cosine, perplexity 30, 1,000 iterations, seed 42, two
    cores, trustworthiness with k=10 on 2,000 rows. 3,926 rows: sklearn 9.1-9.2 s, 0.933;
    openTSNE 9.0-9.8 s, 0.920. 11,778 rows: sklearn 42.5 s, 0.901; openTSNE (FFT) 97.9 s, 0.907.
    As fast or faster, as faithful or more at the demo's size, one dependency fewer, and its
    map does not depend on the thread count (openTSNE's Annoy neighbours do).
    """
    from sklearn.manifold import TSNE

    values = params.settings()
    learning_rate = values["learning_rate"]
    reducer = TSNE(
        n_components=2,
        perplexity=float(values["perplexity"]),
        early_exaggeration=float(values["early_exaggeration"]),
        learning_rate=learning_rate if learning_rate == "auto" else float(learning_rate),
        max_iter=int(values["max_iter"]),
        metric=str(values["metric"]),
        init="pca",
        random_state=params.seed,
        n_jobs=-1,  # only the neighbour search is threaded; the map is the same for any count
    )
    coords = reducer.fit_transform(np.asarray(vectors, dtype=np.float32))
    return np.asarray(coords, dtype=np.float32)


def umap_arguments(params: ProjectionParams, rows: int) -> dict[str, Any]:
    """The keyword arguments of ``umap.UMAP`` that Loupe uses for ``params`` on ``rows`` rows."""
    values = params.settings()
    return {
        "n_components": 2,
        "n_neighbors": min(int(values["n_neighbors"]), rows - 1),
        "min_dist": float(values["min_dist"]),
        "spread": float(values["spread"]),
        "metric": str(values["metric"]),
        "random_state": params.seed,
        "n_jobs": 1,  # what a fixed seed implies; umap-learn warns if it has to decide that itself
        # Spectral initialisation needs more rows than n_components + 1 (scipy's eigsh).
        "init": "spectral" if rows > 3 else "random",
    }


def _umap(vectors: npt.NDArray[np.float32], params: ProjectionParams) -> npt.NDArray[np.float32]:
    rows = vectors.shape[0]
    arguments = umap_arguments(params, rows)
    data: npt.NDArray[Any] = vectors
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="loupe-graph") as pool:
        graph = None
        if rows >= EXACT_NEIGHBOURS_BELOW and _graph_from_faiss(arguments["metric"]):
            from engine.maps.neighbour_graph import neighbour_graph

            # faiss works without the GIL and builds the graph on one thread: started first, it
            # overlaps umap-learn's import (about 2 s of a fresh process) on the other core.
            graph = pool.submit(neighbour_graph, vectors, arguments["n_neighbors"], arguments["metric"])
        umap = _import_umap()
        if rows < EXACT_NEIGHBOURS_BELOW:
            # Below this size umap-learn finds neighbours from the full distance matrix, but
            # builds that matrix through sklearn calling umap's numba metric once per pair from
            # Python: 16.7 s of a 17 s fit on the 3,926 demo rows. The same matrix, vectorised,
            # takes 0.1 s (the fit 5.5 s) and the maps are as faithful (trustworthiness 0.912 vs
            # 0.907).
            metric = arguments.pop("metric")
            data = _distance_matrix(vectors, metric)
            disconnected = _DISCONNECTED.get(metric, np.inf)
            arguments |= {"metric": "precomputed", "disconnection_distance": disconnected}
            _ignore_precomputed_metric_warning()
        elif graph is not None:
            arguments["precomputed_knn"] = graph.result()
            _ignore_missing_search_index_warning()
    coords = umap.UMAP(**arguments).fit_transform(data)
    return np.asarray(coords, dtype=np.float32)


def _graph_from_faiss(metric: str) -> bool:
    """Whether Loupe computes the neighbour graph (faiss installed and the metric one it handles)."""
    import importlib.util

    from engine.maps.neighbour_graph import computes

    return computes(metric) and importlib.util.find_spec("faiss") is not None


def _ignore_missing_search_index_warning() -> None:
    """umap-learn notes on every fit from a precomputed graph that ``transform`` will not work;
    Loupe never calls it (new rows are placed by :mod:`engine.maps.placement`). Process-wide, as
    :func:`_ignore_precomputed_metric_warning` and for the same reason."""
    warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning, module="umap")


# umap-learn's threshold between exact neighbours (full distance matrix) and pynndescent.
EXACT_NEIGHBOURS_BELOW = 4096
# umap-learn's own disconnection distances for bounded metrics (an antipodal pair is no edge).
_DISCONNECTED = {"cosine": 2.0, "correlation": 2.0}


def _distance_matrix(vectors: npt.NDArray[np.float32], metric: str) -> npt.NDArray[np.float64]:
    from sklearn.metrics import pairwise_distances

    distances = pairwise_distances(np.asarray(vectors, dtype=np.float64), metric=metric)
    np.fill_diagonal(distances, 0.0)
    return np.asarray(distances, dtype=np.float64)


def _ignore_precomputed_metric_warning() -> None:
    """Loupe never inverts a map, so umap-learn's note about it on every precomputed fit is noise.

    A process-wide filter for that one message from umap, added again before each fit (pytest
    resets filters per test) rather than ``catch_warnings``, which is not thread-safe: sweep
    cells fit on several threads at once.
    """
    warnings.filterwarnings(
        "ignore", message="using precomputed metric; inverse_transform", category=UserWarning, module="umap"
    )


def warm_up(rows: int | None = None) -> None:
    """Run tiny UMAP fits so that numba has compiled (or loaded) the kernels a real fit uses.

    The first takes the small-data path (exact neighbours, under 4,096 rows): about 2 s with a
    warm numba cache. The second takes the path from 4,096 rows (a neighbour graph handed to
    umap-learn), skipped when ``rows`` says the data is small. Every kernel both use is cached
    on disk, so this only costs time on a machine's first run (or after an upgrade).
    """
    umap = _import_umap()
    points = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    fast = ProjectionParams()
    _umap(points, fast)
    if (rows is None or rows >= EXACT_NEIGHBOURS_BELOW) and _graph_from_faiss("cosine"):
        from engine.maps.neighbour_graph import neighbour_graph

        arguments = umap_arguments(fast, len(points))
        arguments |= {"n_epochs": 10, "precomputed_knn": neighbour_graph(points, 15, "cosine")}
        _ignore_missing_search_index_warning()
        umap.UMAP(**arguments).fit(points)


def warm_up_in_background(rows: int | None = None) -> threading.Thread:
    """Start :func:`warm_up` on a thread named ``loupe-warmup`` and return it (already started).

    Call it once, from any thread, as early as possible: at start-up, or when a dataset of
    ``rows`` rows is opened (which skips the slow half for small data). Compiling holds the GIL,
    so a fit that overlaps it runs about 2.3x slower (tests/bench/first_fit_vs_later.py); a real
    fit that needs a kernel being compiled waits for it instead of compiling it twice. The
    thread is a daemon so that quitting never waits for a compile (numba writes its cache files
    atomically); callers that must not leave it running (tests, a clean shutdown) ``join()`` it.
    A failure is logged and otherwise ignored: the first real fit then compiles as it would have.
    """

    def run() -> None:
        try:
            warm_up(rows)
        except Exception:  # the warm-up is an optimisation; the real fit reports real errors
            logging.getLogger(__name__).warning("UMAP warm-up failed", exc_info=True)

    thread = threading.Thread(target=run, name="loupe-warmup", daemon=True)
    thread.start()
    return thread
