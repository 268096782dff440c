"""Requests to the engine and what it answers: plain, frozen dataclasses.

The engine owns the heavy data: an opened dataset and an embedding run live where the engine
runs (its child process in the app) and are named by ids, so requests carry ids, rows and
parameters, never vectors or texts. What comes back is what a view shows: a dataset's table
(once, when it opens), a map's coordinates (rows x 2), scores, attention maps.

Every field's type is one the wire can carry (see :mod:`engine.process.wire`); the wire's list
of dataclasses it may rebuild is derived from the types named here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.data.datasets import Dataset
from engine.maps.projection import ProjectionParams
from engine.maps.sweep import SweepResult
from engine.model.attention_stats import AttentionStatistics
from engine.model.inference import AttentionMaps

# -- identity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Identify:
    """Which model the engine computes with (for provenance, titles and the settings)."""


@dataclass(frozen=True)
class EngineIdentity:
    model_name: str  # as configured ("minilm", a folder)
    model_identity: str  # the model's content identity, as in cache keys
    display_name: str  # what a title shows: "all-MiniLM-L6-v2", or a model folder's name
    pooling: str
    device: str  # as configured ("auto", "cpu", "cuda:0")
    max_length: int
    layers: int | None  # hidden layers, None when the config does not say


@dataclass(frozen=True)
class Preload:
    """Load the model now, not at the first call that needs it."""


@dataclass(frozen=True)
class ModelReady:
    precision: str  # the dtype embeddings are computed in


# -- datasets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenDataset:
    """A file or folder (columns guessed unless named), or the demo dataset when ``demo_rows`` is set."""

    path: Path | None = None
    text_column: str | None = None
    label_column: str | None = None
    demo_rows: int | None = None


@dataclass(frozen=True)
class OpenedDataset:
    """The dataset the engine now holds as ``dataset_id``, and its table for the views."""

    dataset_id: str
    dataset: Dataset  # without its vectors: they stay with the engine (see own_vectors)
    own_vectors: bool = False  # it came with its own vectors (a .npy): its maps need no model


@dataclass(frozen=True)
class CloseDataset:
    """Forget a dataset and the runs and maps made from it (a new one has taken its place)."""

    dataset_id: str


@dataclass(frozen=True)
class Closed:
    dataset_id: str


# -- embeddings and maps ----------------------------------------------------------------


@dataclass(frozen=True)
class Embed:
    """The dataset's embeddings at ``layer`` (its own vectors when it came with a ``.npy``)."""

    dataset_id: str
    layer: int = -1


@dataclass(frozen=True)
class EmbeddedRun:
    """An embedding run the engine holds as ``run_id``; the vectors stay with the engine."""

    run_id: str
    dataset_id: str
    layer: int
    rows: int
    width: int
    computed: int
    from_cache: int
    truncated: int
    input_id: str  # names exactly these rows under this model and layer (the cache's name)


@dataclass(frozen=True)
class FindCachedMap:
    """The map of a dataset if the cache has it, found from its texts alone (no model, no vectors)."""

    dataset_id: str
    params: ProjectionParams
    layer: int = -1


@dataclass(frozen=True)
class Project:
    """A 2-D map of a run (cached or computed)."""

    run_id: str
    params: ProjectionParams


@dataclass(frozen=True)
class ProjectedMap:
    """A map the engine holds as ``map_id``: ``coords[row]`` in dataset order."""

    map_id: str
    run_id: str
    params: ProjectionParams
    coords: npt.NDArray[np.float32]


@dataclass(frozen=True)
class MaybeMap:
    """What :class:`FindCachedMap` found: a map, or None on a miss."""

    map: ProjectedMap | None


# -- a large dataset's map while it is embedded ---------------------------------------------


@dataclass(frozen=True)
class MapSample:
    """Start a progressive map: embed a spread sample of the dataset's rows and map it with
    ``params``, so a large dataset shows a map long before every row is embedded. None (the
    usual flow instead) at or below the engine's row threshold, when the map is cached, or
    when the dataset brought its own vectors."""

    dataset_id: str
    params: ProjectionParams
    layer: int = -1


@dataclass(frozen=True)
class PlaceRows:
    """Embed the next rows of a progressive map and place them on the sample's map."""

    progressive_id: str


@dataclass(frozen=True)
class ProgressiveMap:
    """A map of the rows embedded so far: ``coords[row]`` in dataset order, NaN for a row not
    placed yet. ``run``: once every row is embedded, the run the real map is made from."""

    progressive_id: str
    dataset_id: str
    params: ProjectionParams
    coords: npt.NDArray[np.float32]
    placed: int
    total: int
    run: EmbeddedRun | None = None


@dataclass(frozen=True)
class MaybeProgressive:
    """What :class:`MapSample` started: a progressive map, or None (not worth it here)."""

    progressive: ProgressiveMap | None


@dataclass(frozen=True)
class ScoreMap:
    """A map's clusters (HDBSCAN on the map, named by keywords) and trustworthiness."""

    map_id: str


@dataclass(frozen=True)
class MapScores:
    map_id: str
    labels: npt.NDArray[np.int32]  # cluster per row, -1 noise
    names: dict[int, str]  # cluster number -> name
    trustworthiness: float  # None-free: computed on the run's vectors and the map
    centres: tuple[tuple[float, float, str], ...]  # where each cluster's name goes on this map


@dataclass(frozen=True)
class ScoreRows:
    """Per row, the share of its ``k`` model-space neighbours that are also its map neighbours."""

    map_id: str
    k: int = 10


@dataclass(frozen=True)
class Faithfulness:
    map_id: str
    values: npt.NDArray[np.float32]


@dataclass(frozen=True)
class FindNeighbours:
    """The ``k`` rows nearest to ``row`` in model space."""

    run_id: str
    row: int
    k: int = 10


@dataclass(frozen=True)
class Neighbours:
    row: int
    indices: npt.NDArray[np.intp]
    distances: npt.NDArray[np.float32]


@dataclass(frozen=True)
class MapLayers:
    """A map of every layer of the dataset, aligned so a slider can move between them."""

    dataset_id: str
    params: ProjectionParams


@dataclass(frozen=True)
class LayerMaps:
    maps: tuple[npt.NDArray[np.float32], ...]


@dataclass(frozen=True)
class Sweep:
    """A grid of maps of a run over two parameters (each cell a cached projection)."""

    run_id: str
    base: ProjectionParams
    x_name: str
    x_values: tuple[str, ...]
    y_name: str
    y_values: tuple[str, ...]


# SweepResult (engine.maps.sweep) is the answer to Sweep.

# -- attention ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AttendRow:
    """Attention maps of one row of a dataset (under ``model`` when set: a compared side's model)."""

    dataset_id: str
    row: int
    model: str | None = None  # None: the engine's own model


@dataclass(frozen=True)
class RowAttention:
    row: int
    maps: AttentionMaps


@dataclass(frozen=True)
class AttendRows:
    """Attention statistics per layer and head of a group of rows."""

    dataset_id: str
    rows: tuple[int, ...]


@dataclass(frozen=True)
class GroupAttention:
    rows: tuple[int, ...]
    statistics: AttentionStatistics


# -- comparing two embeddings of the same rows ---------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a model (None: the engine's own), its layer, its pooling.
    Two sides may differ in any of the three. Pooling None means the engine's pooling for the
    engine's own model (what the settings chose), and what the model says for any other."""

    model: str | None = None
    layer: int = -1
    pooling: str | None = None


@dataclass(frozen=True)
class Compare:
    """Embed and map the dataset's rows under two sides and say, per row and overall, what changed."""

    dataset_id: str
    base: Side
    against: Side
    params: ProjectionParams
    k: int = 10  # neighbours per row for the overlap


@dataclass(frozen=True)
class ComparedSide:
    """One side as computed: its model's identity (for titles and provenance), its run and map.

    The run and the map are held by the engine like any other (their ids work with
    FindNeighbours, ScoreMap, ...). The against side's map is aligned onto the base's map.
    """

    side: Side
    identity: EngineIdentity
    run: EmbeddedRun
    map: ProjectedMap


@dataclass(frozen=True)
class Comparison:
    """What changed between two embeddings of the same rows, per row and for the whole space."""

    dataset_id: str
    base: ComparedSide
    against: ComparedSide
    params: ProjectionParams
    k: int
    # Per row, in dataset order: how far the row's two aligned positions are apart, in units of
    # the base map's spread (root-mean-square distance of its points from their centre).
    displacement: npt.NDArray[np.float32]
    # Per row: Jaccard overlap of its k nearest neighbours (cosine) in the two embedding spaces.
    overlap: npt.NDArray[np.float32]
    mean_overlap: float
    cka: float  # linear CKA of the two embedding matrices (Kornblith et al., 2019)
    overlap_by_label: dict[str, float]  # mean overlap per label; empty without labels
    exact_neighbours: bool  # False above the exact-neighbour limit (an approximate index)
    from_cache: bool  # the comparison's own results came from the cache


__all__ = [
    "AttendRow",
    "AttendRows",
    "AttentionMaps",
    "AttentionStatistics",
    "CloseDataset",
    "Closed",
    "Compare",
    "ComparedSide",
    "Comparison",
    "Embed",
    "EmbeddedRun",
    "EngineIdentity",
    "Faithfulness",
    "FindCachedMap",
    "FindNeighbours",
    "GroupAttention",
    "Identify",
    "LayerMaps",
    "MapLayers",
    "MapScores",
    "MaybeMap",
    "ModelReady",
    "Neighbours",
    "OpenDataset",
    "OpenedDataset",
    "Preload",
    "Project",
    "ProjectedMap",
    "RowAttention",
    "ScoreMap",
    "ScoreRows",
    "Side",
    "Sweep",
    "SweepResult",
]
