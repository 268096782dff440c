"""Analysis of a map and its embeddings: clusters, their names, neighbours, and how far to trust the map.

Pure functions of numpy arrays with no shared state, so any job lane may call them; the long
ones (:func:`knn_indices`, :func:`faithfulness`) take the usual keyword-only ``token`` and
``report`` and check the token once per block. Bad parameters raise :class:`BadInputError`
with one sentence. scikit-learn is imported inside the functions (ruff TID253).

Model space is compared by cosine distance (what the embedding models are trained for), the
map by Euclidean distance (what the eye sees).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.maps.isolated_tasks import TASKS as ISOLATED_TASKS
from engine.maps.isolated_tasks import hdbscan_fit
from engine.runtime.isolated import run_isolated
from engine.runtime.jobs import CancelToken, Report, silent_report

FloatArray = npt.NDArray[np.float32]
Indices = npt.NDArray[np.intp]

NOISE = -1
# min_samples when the caller leaves it out; see clusters() for why it does not follow
# min_cluster_size the way scikit-learn's default does.
DEFAULT_MIN_SAMPLES = 5
# Words are identifiers: a letter or underscore, then letters, digits or underscores, optionally
# dotted (``os.path.join``, ``__init__``, ``utf_8``). Bare numbers are never keywords.
WORD_PATTERN = r"(?u)\b[^\W\d]\w+(?:\.[^\W\d]\w*)*"
# clusters() fits HDBSCAN in a child process above this many rows. In process on two cores the
# fit holds the GIL (a 5 ms ticker thread's longest gap) for 0.08 s at 5,000 rows, 0.33 s at
# 10,000, 1.4 s at 20,000, 9.4 s at 50,000 and 177 s at 200,000; a child costs about 1.15 s
# more (a fresh Python importing scikit-learn: 10,000 rows 0.36 -> 1.51 s, 20,000 rows 1.5 ->
# 2.65 s) and the ticker's longest gap stays under 25 ms. Worth it from where a freeze shows.
ISOLATE_ABOVE_ROWS = 10_000
# Size of one block of similarities in knn_indices; with argpartition's int64 indices of the
# same shape the block costs about three times this.
_BLOCK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class ClusterResult:
    """Clusters of a map: ``labels[i]`` is row i's cluster, numbered by size (0 is the largest),
    or ``-1`` for noise; ``probabilities[i]`` is how firmly it belongs (0 for noise). The
    parameters are the ones HDBSCAN was given, defaults resolved (they belong in a cache key)."""

    labels: npt.NDArray[np.int32]
    probabilities: FloatArray
    min_cluster_size: int
    min_samples: int
    max_cluster_size: int

    @property
    def count(self) -> int:
        """How many clusters were found (noise is not one)."""
        return int(self.labels.max(initial=NOISE)) + 1

    @property
    def noise_share(self) -> float:
        """The fraction of rows labelled noise."""
        return float(np.mean(self.labels == NOISE)) if len(self.labels) else 0.0


def default_min_cluster_size(rows: int) -> int:
    """1 % of the rows, at least 5: a group the eye notices on the map, at any dataset size.

    The number of clusters then stays near 30 as the data grows: on demo maps of 1,000, 2,000
    and 3,926 rows it gives 29, 37 and 30-34 clusters. A fixed size does not scale: 10 gives
    29 clusters at 1,000 rows but 124 at 3,926, crumbs no one can read (and thousands at 50,000).
    """
    return max(5, rows // 100)


def clusters(
    coords: FloatArray,
    *,
    min_cluster_size: int | None = None,
    min_samples: int | None = None,
    token: CancelToken | None = None,
    isolate_above: int | None = None,
) -> ClusterResult:
    """HDBSCAN clusters of the 2-D map ``coords`` [n, 2]; the same input gives the same labels.

    The map, not the model's vectors: density-based clustering needs distances that vary,
    and in 384 dimensions they all look alike. On the demo (3,926 docstrings, 14 module
    groups) HDBSCAN on the raw vectors (cosine) labels 77-81 % of rows noise at
    min_cluster_size 5-10 and finds nothing at 39, in 1.3-1.7 s, and its cosine metric needs an
    n×n distance matrix (20 GB at 50,000 rows); on the UMAP map it finds 30-34 clusters with
    23-28 % noise in 0.05 s, and they are the regions the user sees. The clusters are
    therefore only as good as the map (see :func:`faithfulness`).

    ``min_cluster_size`` defaults to :func:`default_min_cluster_size`. ``min_samples`` (how
    many neighbours make a point core) defaults to ``min(5, min_cluster_size)``, not to
    min_cluster_size as in scikit-learn: with core distances over 39 neighbours, all three
    UMAP maps of the demo fell into 3 clusters, one of them 96-97 % of the rows. No cluster
    may hold more than half the rows: HDBSCAN's excess-of-mass selection otherwise often
    takes the map's main continent for one cluster (75-96 % of the rows in 10 of 20 settings
    tried on demo maps: 5 maps, min_cluster_size 1 or 2 %, min_samples 5 or 10), which names
    nothing; capped, those settings give 11-30 clusters and the other 10 do not change. So a
    blob holding more than half the rows is split further. Too few rows for one cluster give
    all noise.

    Above ``isolate_above`` rows (default :data:`ISOLATE_ABOVE_ROWS`) the fit runs in a child
    process (:mod:`engine.maps.isolated_tasks`) with the same labels: scikit-learn holds the GIL for the
    whole fit, which froze the desktop for 155 s at 200,000 rows, and only a child can be
    stopped. ``token`` is checked every 0.1 s there (cancelling kills the child); an
    in-process fit cannot be interrupted, so it is checked only before it.
    """
    points = _matrix("coords", coords, columns=2)
    rows = len(points)
    size = default_min_cluster_size(rows) if min_cluster_size is None else min_cluster_size
    _check_int("min_cluster_size", size, least=2)
    samples = min(DEFAULT_MIN_SAMPLES, size) if min_samples is None else min_samples
    _check_int("min_samples", samples, least=1)
    size, samples, largest = int(size), int(samples), max(rows // 2, int(size))
    if rows < max(size, samples):
        return ClusterResult(
            np.full(rows, NOISE, np.int32), np.zeros(rows, np.float32), size, samples, largest
        )

    limit = ISOLATE_ABOVE_ROWS if isolate_above is None else isolate_above
    if token is not None:
        token.raise_if_cancelled()
    if rows > limit:
        params = {"min_cluster_size": size, "min_samples": samples, "max_cluster_size": largest}
        fitted = run_isolated(ISOLATED_TASKS, "hdbscan", {"points": points}, params, token=token)
        raw_labels, probabilities = fitted["labels"], fitted["probabilities"]
    else:
        raw_labels, probabilities = hdbscan_fit(
            points, min_cluster_size=size, min_samples=samples, max_cluster_size=largest
        )
    labels = _numbered_by_size(raw_labels)
    return ClusterResult(labels, np.asarray(probabilities, np.float32), size, samples, largest)


def _numbered_by_size(labels: npt.NDArray[Any]) -> npt.NDArray[np.int32]:
    """``labels`` renumbered so that 0 is the largest cluster (ties: the old order)."""
    clustered = labels >= 0
    sizes = np.bincount(labels[clustered])
    rank = np.empty(len(sizes), np.int32)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(len(sizes), dtype=np.int32)
    renumbered = np.full(len(labels), NOISE, np.int32)
    renumbered[clustered] = rank[labels[clustered]]
    return renumbered


def cluster_keywords(texts: Sequence[str], labels: npt.NDArray[Any], top: int = 4) -> dict[int, list[str]]:
    """The ``top`` words that set each cluster apart, best first, by class-based TF-IDF.

    As in BERTopic: each cluster's texts make one document; a word's weight in a cluster is
    its count there over the cluster's word count, times ``log(1 + A / f)`` where ``A`` is the
    mean word count per class and ``f`` the word's count across all classes. Noise rows count
    as one more class (so that words common everywhere weigh little) but get no keywords.
    English stop words and bare numbers are skipped; identifiers are kept whole (see
    :data:`WORD_PATTERN`) and lower-cased. Ties go alphabetically. A cluster with no usable
    word gets an empty list.
    """
    groups = _labels(labels, len(texts))
    _check_int("top", top, least=1)
    classes = np.unique(groups)
    named = [int(label) for label in classes if label != NOISE]
    if not named:
        return {}
    documents = ["\n".join(texts[int(i)] for i in np.flatnonzero(groups == label)) for label in classes]

    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(stop_words="english", token_pattern=WORD_PATTERN)
    try:
        counts = vectorizer.fit_transform(documents).tocsr().astype(np.float64)
    except ValueError:  # an empty vocabulary: nothing but stop words and numbers
        return {label: [] for label in named}
    vocabulary = vectorizer.get_feature_names_out()  # sorted, so index order is alphabetical
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    word_totals = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log(1.0 + words_per_class.mean() / word_totals)

    keywords: dict[int, list[str]] = {}
    for position, label in enumerate(classes):
        if label == NOISE:
            continue
        start, end = counts.indptr[position], counts.indptr[position + 1]
        terms = counts.indices[start:end]
        weights = counts.data[start:end] / max(words_per_class[position], 1.0) * idf[terms]
        best = np.lexsort((terms, -weights))[:top]
        keywords[int(label)] = [str(vocabulary[term]) for term in terms[best]]
    return keywords


def cluster_names(
    texts: Sequence[str], labels: npt.NDArray[Any], top: int = 3, separator: str = " · "
) -> dict[int, str]:
    """A short name per cluster, its :func:`cluster_keywords` joined ("path · file · directory");
    ``"cluster N"`` where no word is left. Noise has no name."""
    return {
        label: separator.join(words) or f"cluster {label}"
        for label, words in cluster_keywords(texts, labels, top).items()
    }


def nearest_neighbours(vectors: FloatArray, row: int, k: int = 10) -> tuple[Indices, FloatArray]:
    """The ``k`` rows nearest to ``row`` in model space and their cosine distances, nearest first.

    The row itself is left out (an identical row is not); fewer than ``k`` come back when the
    data has no more rows. A zero vector is at distance 1 from everything, as in scikit-learn.
    """
    matrix = _matrix("vectors", vectors, least_rows=2)
    _check_int("row", row, least=0)
    if row >= len(matrix):
        raise BadInputError(f"row must be below the number of rows ({len(matrix)}), not {row}.")
    _check_int("k", k, least=1)
    # One matrix-vector product, without a normalised copy of the matrix: this runs per click.
    norms = _safe_norms(matrix)
    similarity = (matrix @ matrix[row]) / (norms * norms[row])
    similarity[row] = -np.inf
    indices, best = _most_similar(similarity[None, :], min(k, len(matrix) - 1))
    return indices[0], np.clip(1.0 - best[0], 0.0, 2.0).astype(np.float32)


def knn_indices(
    vectors: FloatArray, k: int, *, token: CancelToken | None = None, report: Report = silent_report
) -> Indices:
    """Each row's ``k`` nearest other rows by cosine distance, nearest first: ``[n, min(k, n - 1)]``.

    Exact (brute force) in blocks of rows, so what it holds beyond a normalised copy of the
    vectors is about 100 MB whatever n is, not an n×n matrix (10 GB at 50,000 rows): 207 MiB
    in all at 50,000 × 384, in 43 s on two cores (tests/bench/analysis_at_scale.py). The token
    is checked and progress reported once per block.
    """
    unit = _unit_rows(_matrix("vectors", vectors, least_rows=2))
    _check_int("k", k, least=1)
    rows = len(unit)
    k = min(k, rows - 1)
    block = max(1, _BLOCK_BYTES // (4 * rows))
    result = np.empty((rows, k), np.intp)
    for start in range(0, rows, block):
        if token is not None:
            token.raise_if_cancelled()
        report(start, rows, "Finding neighbours")
        stop = min(start + block, rows)
        similarity = unit[start:stop] @ unit.T
        similarity[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        result[start:stop] = _most_similar(similarity, k)[0]
    report(rows, rows, "Finding neighbours")
    return result


def _most_similar(similarity: FloatArray, k: int) -> tuple[Indices, FloatArray]:
    """Per row of ``similarity``, the columns of the ``k`` largest values, largest first
    (ties by column), and those values."""
    columns = similarity.shape[1]
    chosen = np.argpartition(similarity, columns - k, axis=1)[:, columns - k :]
    values = np.take_along_axis(similarity, chosen, axis=1)
    order = np.lexsort((chosen, -values), axis=1)
    return np.take_along_axis(chosen, order, axis=1), np.take_along_axis(values, order, axis=1)


def faithfulness(
    vectors: FloatArray,
    coords: FloatArray,
    k: int = 10,
    *,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> FloatArray:
    """Per row, the share of its ``k`` nearest rows in model space (cosine) that are also among
    its ``k`` nearest on the map (Euclidean): 1 where the map keeps the row's neighbourhood,
    near k / n where it does not. ``[n]`` float32; ``k`` is capped at n - 1."""
    points = _matrix("coords", coords, columns=2)
    model_neighbours = knn_indices(_same_rows(vectors, points), k, token=token, report=report)
    k = model_neighbours.shape[1]

    from sklearn.neighbors import NearestNeighbors

    # kneighbors() without X leaves each point out of its own neighbours, duplicates aside.
    map_neighbours = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(return_distance=False)
    shared = (model_neighbours[:, :, None] == map_neighbours[:, None, :]).any(axis=2).sum(axis=1)
    return np.asarray(shared / k, dtype=np.float32)


def trust_neighbours(rows: int, wanted: int = 10) -> int:
    """``wanted`` neighbours for :func:`trustworthiness`, fewer for a map too small to allow them."""
    return max(1, min(wanted, (rows - 1) // 2))


def trustworthiness(
    vectors: FloatArray, coords: FloatArray, k: int = 10, *, max_rows: int = 2000, seed: int = 0
) -> float:
    """scikit-learn's trustworthiness of the map (1 = no false neighbours on the map, about 0.5
    for a random one), with cosine distance in model space, on at most ``max_rows`` rows.

    scikit-learn computes the full n×n distance matrix and its argsort (16 n² bytes: 64 MB at
    2,000 rows, 40 GB at 50,000), so larger data is scored on a random subsample of rows
    (``seed`` picks it, so a score can be repeated). A subsample's neighbours are further
    apart than the full data's, so compare scores at equal ``max_rows``.
    """
    points = _matrix("coords", coords, columns=2)
    model = _same_rows(vectors, points)
    _check_int("k", k, least=1)
    _check_int("max_rows", max_rows, least=3)
    used = min(len(points), max_rows)
    if k >= used / 2:
        raise BadInputError(f"k must be less than half the rows compared ({used}), not {k}.")
    if used < len(points):
        chosen = np.sort(np.random.default_rng(seed).choice(len(points), used, replace=False))
        model, points = model[chosen], points[chosen]

    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    return float(sklearn_trustworthiness(model, points, n_neighbors=k, metric="cosine"))


def _matrix(
    name: str, array: npt.ArrayLike, *, columns: int | None = None, least_rows: int = 1
) -> FloatArray:
    """``array`` as a float32 matrix, or a BadInputError naming what is wrong with it."""
    matrix = np.asarray(array)
    if matrix.ndim != 2 or (columns is not None and matrix.shape[1] != columns):
        shape = f"[n, {columns}]" if columns is not None else "[n, d]"
        raise BadInputError(f"{name} must be a {shape} matrix, not shape {matrix.shape}.")
    if not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise BadInputError(f"{name} must hold real numbers, not {matrix.dtype}.")
    if len(matrix) < least_rows:
        raise BadInputError(f"{name} must have at least {least_rows} rows, not {len(matrix)}.")
    matrix = matrix.astype(np.float32, copy=False)
    if not np.isfinite(matrix).all():
        raise BadInputError(f"{name} must not contain NaN or infinite values.")
    return matrix


def _same_rows(vectors: FloatArray, points: FloatArray) -> FloatArray:
    model = _matrix("vectors", vectors, least_rows=2)
    if len(model) != len(points):
        raise BadInputError(
            f"vectors and coords must have the same rows, not {len(model)} and {len(points)}."
        )
    return model


def _labels(labels: npt.NDArray[Any], rows: int) -> npt.NDArray[np.int64]:
    groups = np.asarray(labels)
    if groups.ndim != 1 or len(groups) != rows:
        raise BadInputError(f"labels must have one entry per text ({rows}), not shape {groups.shape}.")
    if len(groups) and not np.issubdtype(groups.dtype, np.integer):
        raise BadInputError(f"labels must be whole numbers (-1 for noise), not {groups.dtype}.")
    return groups.astype(np.int64, copy=False)


def _safe_norms(matrix: FloatArray) -> FloatArray:
    """Row lengths, with 1 for zero rows (so they stay zero: cosine distance 1 to everything)."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))  # no squared copy of the matrix
    return np.where(norms == 0, np.float32(1), norms).astype(np.float32, copy=False)


def _unit_rows(matrix: FloatArray) -> FloatArray:
    """Rows scaled to length 1; zero rows stay zero."""
    return matrix / _safe_norms(matrix)[:, None]


def _check_int(name: str, value: object, *, least: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise BadInputError(f"{name} must be a whole number, not {value!r}.")
    if value < least:
        raise BadInputError(f"{name} must be at least {least}, not {value}.")
