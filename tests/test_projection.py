"""Projections (PCA, UMAP, t-SNE), their parameter schema, per-layer maps and the parameter sweep.

Inputs are small (tens of rows) so that the whole file runs in well under a minute on two
cores once numba's cache (kept under .pytest_cache) holds umap-learn's kernels.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from engine.errors import BadInputError, JobCancelled
from engine.maps.layer_maps import align_to, layer_maps
from engine.maps.projection import (
    METHODS,
    PARAMETERS,
    ProjectionParams,
    Value,
    project,
    warm_up_in_background,
)
from engine.maps.sweep import sweep
from engine.runtime.jobs import CancelToken


def clustered(rows: int = 60, width: int = 16, seed: int = 0) -> npt.NDArray[np.float32]:
    """Unit vectors around four centres: embedding-like, and enough structure for a map to keep."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, width))
    points = centres[np.arange(rows) % 4] + 0.6 * rng.normal(size=(rows, width))
    return np.asarray(points / np.linalg.norm(points, axis=1, keepdims=True), dtype=np.float32)


def rotation(angle: float) -> npt.NDArray[np.float64]:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


QUICK = {
    "umap": {},
    "pca": {},
    "tsne": {"perplexity": 10, "max_iter": 300},
}


# -- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("umap", {"n_neighbors": "-5"}, "n_neighbors must be at least 2, not -5."),
        ("umap", {"n_neighbors": "7.5"}, "n_neighbors must be a whole number, not '7.5'."),
        ("umap", {"min_dist": "2"}, "min_dist must be at most 1, not 2."),
        ("umap", {"min_dist": 0.8, "spread": 0.5}, "min_dist must not be larger than spread (0.5), not 0.8."),
        (
            "umap",
            {"metric": "hamming"},
            "metric must be one of cosine, euclidean, manhattan or correlation, not 'hamming'.",
        ),
        (
            "umap",
            {"perplexity": "30"},
            "umap has no parameter 'perplexity'; its parameters are n_neighbors, min_dist, spread "
            "and metric.",
        ),
        ("tsne", {"learning_rate": "fast"}, "learning_rate must be a number, or auto, not 'fast'."),
        ("tsne", {"max_iter": "100"}, "max_iter must be at least 250, not 100."),
        ("tsne", {"perplexity": "inf"}, "perplexity must be a finite number, not 'inf'."),
        ("pca", {"whiten": "maybe"}, "whiten must be true or false, not 'maybe'."),
        ("isomap", {}, "Unknown projection method 'isomap': use umap, pca or tsne."),
    ],
)
def test_bad_options_are_refused_with_one_sentence(
    method: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadInputError) as caught:
        ProjectionParams.from_options(method, options)
    assert str(caught.value) == message


def test_options_are_parsed_from_strings() -> None:
    params = ProjectionParams.from_options(
        "tsne", {"perplexity": "12.5", "learning_rate": " AUTO ", "max_iter": "300"}, seed=7
    )
    assert params.seed == 7
    assert params.settings() == {
        "perplexity": 12.5,
        "learning_rate": "auto",
        "early_exaggeration": 12.0,
        "max_iter": 300,
        "metric": "cosine",
    }
    assert ProjectionParams.from_options("pca", {"whiten": "yes"}).value("whiten") is True
    assert ProjectionParams.from_options("tsne", {"learning_rate": "200"}).value("learning_rate") == 200.0


def test_every_default_is_valid_and_matches_its_own_schema() -> None:
    for method, specs in PARAMETERS.items():
        for name, spec in specs.items():
            assert spec.parse(name, spec.default) == spec.default, (method, name)
            assert spec.help.endswith("."), (method, name)
        ProjectionParams(method=method).validate()


def test_perplexity_must_be_less_than_the_rows() -> None:
    params = ProjectionParams.from_options("tsne", {"perplexity": 30})
    with pytest.raises(
        BadInputError, match=r"^perplexity must be less than the number of rows \(20\), not 30\.$"
    ):
        project(clustered(rows=20), params)


def test_a_map_needs_three_rows_and_a_matrix() -> None:
    with pytest.raises(BadInputError, match="at least 3 rows, not 2"):
        project(clustered(rows=2), ProjectionParams(method="pca"))
    with pytest.raises(BadInputError, match=r"\[rows, width\]"):
        project(clustered()[None], ProjectionParams(method="pca"))


def other_value(spec_name: str, method: str) -> Value:
    """A valid value different from the default, for each parameter."""
    spec = PARAMETERS[method][spec_name]  # type: ignore[index]
    if spec.kind == "bool":
        return not spec.default
    if spec.kind == "choice":
        return next(choice for choice in spec.choices if choice != spec.default)
    if spec.words and spec.default in spec.words:
        return 100.0
    if spec.kind == "int":
        return int(spec.default) + 1
    return float(spec.default) * 0.5


def test_cache_parts_hold_every_parameter_seed_and_versions() -> None:
    parts = ProjectionParams(method="umap", seed=3).cache_parts()
    assert parts["method"] == "umap" and parts["seed"] == 3
    assert parts["params"] == {"n_neighbors": 15, "min_dist": 0.1, "spread": 1.0, "metric": "cosine"}
    assert {"numpy", "scikit-learn", "umap-learn", "numba", "pynndescent"} <= set(parts["versions"])
    # Setting a parameter to its default names the same map.
    assert ProjectionParams.from_options("umap", {"n_neighbors": "15"}, seed=3).cache_parts() == parts


@pytest.mark.parametrize("method", METHODS)
def test_cache_parts_differ_when_any_parameter_differs(method: str) -> None:
    base = ProjectionParams(method=method)  # type: ignore[arg-type]
    seen = [base.cache_parts(), ProjectionParams(method=method, seed=43).cache_parts()]  # type: ignore[arg-type]
    for name in PARAMETERS[method]:  # type: ignore[index]
        changed = base.with_options(**{name: other_value(name, method)})
        changed.validate()
        seen.append(changed.cache_parts())
    assert all(a != b for i, a in enumerate(seen) for b in seen[i + 1 :])


# -- maps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_the_same_seed_gives_the_same_map(method: str) -> None:
    vectors = clustered()
    params = ProjectionParams.from_options(method, QUICK[method], seed=5)
    first, second = project(vectors, params), project(vectors.copy(), params)
    assert first.shape == (60, 2) and first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-6)


def test_another_seed_gives_another_umap_map() -> None:
    # (PCA, and t-SNE started from PCA, barely depend on the seed: it only drives a randomised SVD.)
    vectors = clustered()
    one = project(vectors, ProjectionParams(method="umap", seed=1))
    two = project(vectors, ProjectionParams(method="umap", seed=2))
    assert not np.allclose(one, two, atol=1e-3)


def test_pca_whitening_gives_unit_variance_axes() -> None:
    coords = project(clustered(), ProjectionParams.from_options("pca", {"whiten": "true"}))
    np.testing.assert_allclose(coords.var(axis=0, ddof=1), [1.0, 1.0], rtol=1e-4)


def test_warm_up_runs_on_a_named_thread_that_finishes() -> None:
    # Small data skips the approximate-neighbour half (about 25 s of compiling every process).
    thread = warm_up_in_background(rows=100)
    assert thread.name == "loupe-warmup"
    thread.join(timeout=240)
    assert not thread.is_alive()


# -- layer maps -------------------------------------------------------------------------------


def test_align_to_undoes_rotation_reflection_scale_and_shift() -> None:
    reference = np.random.default_rng(1).normal(size=(50, 2))
    moved = 3.0 * (reference @ rotation(2.0)) * [-1.0, 1.0] + [10.0, -4.0]
    np.testing.assert_allclose(align_to(moved, reference), reference, atol=1e-5)


def test_layer_maps_bring_every_layer_into_the_last_layers_frame() -> None:
    vectors = clustered(rows=40)
    layers = np.stack([vectors] * 4, axis=1)  # [rows, 4 layers, width]
    truth = project(vectors, ProjectionParams(method="pca"))

    def posed(layer_vectors: npt.NDArray[np.float32], params: ProjectionParams) -> npt.NDArray[np.float32]:
        # Each layer's "map" is the same picture in another pose, plus a little noise.
        index = calls.__len__()
        calls.append(index)
        rng = np.random.default_rng(index)
        moved = (1 + index) * (truth @ rotation(0.9 * index)) + rng.normal(size=2) * 5
        return (moved + rng.normal(scale=0.01, size=truth.shape)).astype(np.float32)

    calls: list[int] = []
    reports: list[tuple[int, int, str]] = []
    maps = layer_maps(
        layers, ProjectionParams(method="pca"), project_layer=posed, report=lambda *a: reports.append(a)
    )
    assert len(maps) == 4 and all(m.shape == (40, 2) and m.dtype == np.float32 for m in maps)
    scale = np.abs(truth).max()
    # Unaligned they differ by far more than the noise; aligned, they agree up to it.
    assert np.abs(posed(vectors, ProjectionParams()) - truth).max() > scale
    for aligned in maps:
        assert np.abs(aligned - maps[-1]).max() < 0.1 * scale
    assert [r[:2] for r in reports] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert reports[1][2] == "Mapping layer 3"


def test_layer_maps_end_with_the_last_layers_own_map() -> None:
    rng = np.random.default_rng(3)
    base = clustered(rows=40)
    layers = np.stack([base + 0.05 * k * rng.normal(size=base.shape) for k in range(3)], axis=1)
    params = ProjectionParams.from_options("tsne", QUICK["tsne"])
    maps = layer_maps(layers.astype(np.float32), params)
    np.testing.assert_array_equal(maps[-1], project(np.ascontiguousarray(layers[:, -1]), params))


def test_layer_maps_stop_between_layers_when_cancelled() -> None:
    token = CancelToken()
    calls: list[int] = []

    def project_layer(vectors: npt.NDArray[np.float32], params: ProjectionParams) -> npt.NDArray[np.float32]:
        calls.append(1)
        token.cancel()
        return project(vectors, params)

    layers = np.stack([clustered(rows=30)] * 5, axis=1)
    with pytest.raises(JobCancelled):
        layer_maps(layers, ProjectionParams(method="pca"), token=token, project_layer=project_layer)
    assert len(calls) == 1


# -- sweep --------------------------------------------------------------------------------------


def test_sweep_maps_every_cell_once_and_scores_it() -> None:
    vectors = clustered()
    calls: list[ProjectionParams] = []
    lock = threading.Lock()

    def project_cell(params: ProjectionParams) -> npt.NDArray[np.float32]:
        with lock:
            calls.append(params)
        return project(vectors, params)

    reports: list[tuple[int, int, str]] = []
    result = sweep(
        vectors,
        ProjectionParams(method="umap", seed=9),
        ("n_neighbors", ["5", 15]),
        ("min_dist", [0.0, 0.5, "0.9"]),
        workers=2,
        project_cell=project_cell,
        report=lambda *a: reports.append(a),
    )
    assert (result.x_name, result.x_values) == ("n_neighbors", (5, 15))
    assert (result.y_name, result.y_values) == ("min_dist", (0.0, 0.5, 0.9))
    assert len(result.cells) == 3 and all(len(row) == 2 for row in result.cells)
    assert len(calls) == 6 and len(set(calls)) == 6
    for j, row in enumerate(result.cells):
        for i, cell in enumerate(row):
            assert (cell.x, cell.y) == (result.x_values[i], result.y_values[j])
            assert cell.params.value("n_neighbors") == cell.x and cell.params.value("min_dist") == cell.y
            assert cell.params.seed == 9
            assert cell.coords.shape == (60, 2)
            assert 0.0 <= cell.trustworthiness <= 1.0
    assert result.trust_rows == 60
    # Clustered vectors keep most of their neighbours on any sensible map.
    assert result.best().trustworthiness > 0.8
    assert [r[:2] for r in reports][-1] == (6, 6)


def test_sweep_scores_a_faithful_map_above_a_shuffled_one() -> None:
    vectors = clustered()
    good = project(vectors, ProjectionParams(method="pca"))
    shuffled = good[np.random.default_rng(0).permutation(len(good))]

    def project_cell(params: ProjectionParams) -> npt.NDArray[np.float32]:
        return shuffled if params.value("n_neighbors") == 2 else good

    result = sweep(
        vectors, ProjectionParams(), ("n_neighbors", [2, 3]), ("min_dist", [0.1]), project_cell=project_cell
    )
    bad_cell, good_cell = result.cells[0]
    assert good_cell.trustworthiness > bad_cell.trustworthiness + 0.2
    assert result.best() is good_cell


def test_sweep_checks_its_grid_before_any_work() -> None:
    def never(params: ProjectionParams) -> npt.NDArray[np.float32]:
        raise AssertionError("no cell should run")

    vectors, base = clustered(), ProjectionParams()
    with pytest.raises(BadInputError, match=r"n_neighbors must be at least 2, not 1\."):
        sweep(vectors, base, ("n_neighbors", [5, 1]), ("min_dist", [0.1]), project_cell=never)
    with pytest.raises(BadInputError, match="umap has no parameter 'perplexity'"):
        sweep(vectors, base, ("perplexity", [5]), ("min_dist", [0.1]), project_cell=never)
    with pytest.raises(BadInputError, match="different parameters"):
        sweep(vectors, base, ("min_dist", [0.1]), ("min_dist", [0.2]), project_cell=never)
    tsne = ProjectionParams(method="tsne")
    with pytest.raises(BadInputError, match="less than the number of rows"):
        sweep(vectors, tsne, ("perplexity", [5, 80]), ("max_iter", [250]), project_cell=never)


def test_a_cancelled_sweep_starts_no_more_cells() -> None:
    vectors, token = clustered(), CancelToken()
    calls: list[ProjectionParams] = []

    def project_cell(params: ProjectionParams) -> npt.NDArray[np.float32]:
        calls.append(params)
        token.cancel()
        return project(vectors, ProjectionParams(method="pca"))

    with pytest.raises(JobCancelled):
        sweep(
            vectors,
            ProjectionParams(),
            ("n_neighbors", [5, 10, 15]),
            ("min_dist", [0.1, 0.2]),
            workers=1,
            token=token,
            project_cell=project_cell,
        )
    assert len(calls) == 1


def test_a_failing_cell_fails_the_sweep() -> None:
    def project_cell(params: ProjectionParams) -> npt.NDArray[np.float32]:
        raise BadInputError("This cell cannot be mapped.")

    with pytest.raises(BadInputError, match=r"^This cell cannot be mapped\.$"):
        sweep(
            clustered(),
            ProjectionParams(),
            ("n_neighbors", [5, 10]),
            ("min_dist", [0.1]),
            project_cell=project_cell,
        )


def test_sweep_scores_on_at_most_two_thousand_rows() -> None:
    vectors = clustered(rows=2500, width=8)
    coords = project(vectors, ProjectionParams(method="pca"))
    result = sweep(
        vectors, ProjectionParams(), ("n_neighbors", [5]), ("min_dist", [0.1]), project_cell=lambda p: coords
    )
    assert result.trust_rows == 2000
    assert result.cells[0][0].coords.shape == (2500, 2)


def test_sweep_refuses_a_cell_of_the_wrong_shape() -> None:
    vectors = clustered()
    with pytest.raises(ValueError, match=r"returned shape \(59, 2\) for 60 rows"):
        sweep(
            vectors,
            ProjectionParams(),
            ("n_neighbors", [5]),
            ("min_dist", [0.1]),
            project_cell=lambda p: np.zeros((59, 2), np.float32),
        )
