"""The application model: one object the views subscribe to and sessions and exports read.

Results arrive from the engine in any order (a cached map can beat its PCA preview; scores for
a map that has since been replaced can land late), so the rules that decide what is shown live
here, where a test can check them without a window:

* a preview never replaces a real map;
* a progressive map (a large dataset's sample, the other rows placed as they are embedded) is
  shown only until a map of the run is, and only for the open dataset;
* scores and faithfulness are kept only for the map on show (matched by ``map_id``);
* a new dataset clears everything made from the previous one;
* the selection, filter and bookmarks only ever hold rows of the open dataset;
* a comparison is kept only for the open dataset, and while the map on show is one of its
  parameters (a map made with other parameters no longer lines up with its second map).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from desktop.model.events import Event
from engine.api.types import (
    Comparison,
    EmbeddedRun,
    Faithfulness,
    LayerMaps,
    MapScores,
    OpenedDataset,
    ProgressiveMap,
    ProjectedMap,
)
from engine.data.datasets import Dataset
from engine.maps.projection import ProjectionParams

Rows = npt.NDArray[np.intp]
NO_ROWS: Rows = np.zeros(0, dtype=np.intp)


@dataclass(frozen=True)
class Source:
    """Where the open dataset came from: a file or folder (with the columns asked for; None =
    guessed), or the demo with its size."""

    name: str
    path: Path | None = None
    demo_rows: int | None = None
    text_column: str | None = None
    label_column: str | None = None


@dataclass(frozen=True)
class ShownMap:
    """The map on show: the PCA preview (``preview``) or the asked-for map."""

    map: ProjectedMap
    preview: bool = False

    @property
    def coords(self) -> npt.NDArray[np.float32]:
        return self.map.coords


@dataclass(frozen=True)
class LabelCodes:
    """The open dataset's labels numbered (distinct ``names``, each row's index into them), on a
    job's thread: numbering 200,000 labels costs the GUI thread ~12 ms."""

    dataset_id: str
    names: list[str]
    codes: Rows


@dataclass(frozen=True)
class RowFilter:
    """A filter as the user typed it (``column``, ``condition``) and the rows it keeps."""

    column: str
    condition: str
    rows: Rows

    @property
    def description(self) -> str:
        return f"{self.column}: {self.condition}"


@dataclass(frozen=True)
class Search:
    """The table's search text and the rows it matches (None: no search)."""

    query: str = ""
    matches: Rows | None = None


@dataclass(frozen=True)
class ViewOptions:
    """How the map is drawn: what colours and sizes the points, density, the layer slider and the
    visible ranges (None: fit the map)."""

    colouring: str = "label"
    size_by: str | None = None
    density: bool = False
    layer_slider: int | None = None
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None


@dataclass(frozen=True)
class EngineChoice:
    """The model, device, pooling (None: the model's own), layer and precision (auto, fp32,
    bf16, fp16: engine.model.precision) the maps are made with."""

    model: str = "minilm"
    device: str = "auto"
    pooling: str | None = None
    layer: int = -1
    precision: str = "auto"


@dataclass
class AppModel:
    """What the window shows. Change it through its methods; each fires its event."""

    engine: EngineChoice = field(default_factory=EngineChoice)
    params: ProjectionParams = field(default_factory=ProjectionParams)  # asked for (Apply, settings)
    source: Source | None = None
    opened: OpenedDataset | None = None
    label_codes: LabelCodes | None = None  # no event: read when a map of the dataset is drawn
    run: EmbeddedRun | None = None
    shown: ShownMap | None = None
    progressive: ProgressiveMap | None = None  # drawn while no map of the run is on show
    scores: MapScores | None = None
    faithfulness: Faithfulness | None = None
    layer_maps: tuple[npt.NDArray[np.float32], ...] = ()
    selection: Rows = field(default_factory=lambda: NO_ROWS)
    filter: RowFilter | None = None
    search: Search = field(default_factory=Search)
    bookmarks: dict[int, str] = field(default_factory=dict)  # row -> note, in the order added
    view: ViewOptions = field(default_factory=ViewOptions)
    comparison: Comparison | None = None  # a second embedding of the rows, shown beside the map

    def __post_init__(self) -> None:
        self.engine_changed: Event[EngineChoice] = Event("engine_changed")
        self.params_changed: Event[ProjectionParams] = Event("params_changed")
        self.dataset_changed: Event[OpenedDataset | None] = Event("dataset_changed")
        self.run_changed: Event[EmbeddedRun | None] = Event("run_changed")
        self.map_changed: Event[ShownMap | None] = Event("map_changed")
        self.progressive_changed: Event[ProgressiveMap | None] = Event("progressive_changed")
        self.scores_changed: Event[MapScores | None] = Event("scores_changed")
        self.faithfulness_changed: Event[Faithfulness | None] = Event("faithfulness_changed")
        self.layer_maps_changed: Event[tuple[npt.NDArray[np.float32], ...]] = Event("layer_maps_changed")
        self.selection_changed: Event[Rows] = Event("selection_changed")
        self.filter_changed: Event[RowFilter | None] = Event("filter_changed")
        self.search_changed: Event[Search] = Event("search_changed")
        self.bookmarks_changed: Event[dict[int, str]] = Event("bookmarks_changed")
        self.view_changed: Event[ViewOptions] = Event("view_changed")
        self.comparison_changed: Event[Comparison | None] = Event("comparison_changed")

    # -- what is open --------------------------------------------------------------------

    @property
    def dataset(self) -> Dataset | None:
        return self.opened.dataset if self.opened is not None else None

    @property
    def rows(self) -> int:
        return len(self.opened.dataset) if self.opened is not None else 0

    def choose_engine(self, choice: EngineChoice) -> bool:
        """Another model, device, pooling or layer; False when it is the same choice."""
        if choice == self.engine:
            return False
        self.engine = choice
        self.engine_changed.emit(choice)
        return True

    def open(self, source: Source) -> None:
        """A dataset is being opened: what was made from the previous one no longer applies."""
        self.source = source
        self._set_dataset(None)

    def set_dataset(self, opened: OpenedDataset) -> None:
        """The engine has opened the dataset: its table is ready, its map is on its way."""
        self._set_dataset(opened)

    def _set_dataset(self, opened: OpenedDataset | None) -> None:
        # What held something before: only those fire (once per change, never "nothing to nothing").
        cleared_scores, cleared_faith = self.scores is not None, self.faithfulness is not None
        cleared_maps, cleared_filter = bool(self.layer_maps), self.filter is not None
        cleared_search = self.search.query != "" or self.search.matches is not None
        view = replace(self.view, x_range=None, y_range=None, layer_slider=None)
        cleared_view = view != self.view
        cleared_comparison = self.comparison is not None
        cleared_progressive = self.progressive is not None
        self.opened = opened
        self.progressive = None
        self.comparison = None
        self.label_codes = None
        self.run = None
        self.shown = None
        self.scores = None
        self.faithfulness = None
        self.layer_maps = ()
        self.selection = NO_ROWS
        self.filter = None
        self.search = Search()
        self.bookmarks = {}
        self.view = view
        # A view may answer one of these by changing the model again (the table runs its search
        # box's text on the new rows): each event then carries the model's value as it is now.
        self.dataset_changed.emit(opened)
        self.run_changed.emit(self.run)
        self.map_changed.emit(self.shown)
        if cleared_progressive:
            self.progressive_changed.emit(None)
        if cleared_scores:
            self.scores_changed.emit(self.scores)
        if cleared_faith:
            self.faithfulness_changed.emit(self.faithfulness)
        if cleared_maps:
            self.layer_maps_changed.emit(self.layer_maps)
        self.selection_changed.emit(self.selection)
        if cleared_filter:
            self.filter_changed.emit(self.filter)
        if cleared_search:
            self.search_changed.emit(self.search)
        self.bookmarks_changed.emit(self.bookmarks)
        if cleared_view:
            self.view_changed.emit(self.view)
        if cleared_comparison:
            self.comparison_changed.emit(None)

    def set_label_codes(self, codes: LabelCodes) -> bool:
        """The open dataset's labels, numbered; False (ignored) for another dataset's."""
        if self.opened is None or codes.dataset_id != self.opened.dataset_id:
            return False
        self.label_codes = codes
        return True

    def set_run(self, run: EmbeddedRun) -> bool:
        """Embeddings of the open dataset; False (ignored) for another dataset's."""
        if self.opened is None or run.dataset_id != self.opened.dataset_id:
            return False
        had_maps = self.layer_maps
        self.run = run
        self.layer_maps = ()
        self.run_changed.emit(run)
        if had_maps:
            self.layer_maps_changed.emit(())
        return True

    def set_params(self, params: ProjectionParams) -> None:
        """The map parameters asked for (the form's Apply, a session, the settings' default)."""
        if params != self.params:
            self.params = params
            self.params_changed.emit(params)

    # -- the map and its scores ------------------------------------------------------------

    def show_map(self, projected: ProjectedMap, *, preview: bool = False) -> bool:
        """Show a map of the current run; False (ignored) for a stale one, or a preview when a
        real map is already on show (a cached map can arrive before its preview)."""
        if self.run is None or projected.run_id != self.run.run_id:
            return False
        if preview and self.shown is not None and not self.shown.preview:
            return False
        had_scores, had_faith = self.scores, self.faithfulness
        self.shown = ShownMap(projected, preview)
        self.scores = None
        self.faithfulness = None
        self.map_changed.emit(self.shown)
        if self.progressive is not None:  # the real map (or its preview) takes over
            self.progressive = None
            self.progressive_changed.emit(None)
        if had_scores is not None:
            self.scores_changed.emit(None)
        if had_faith is not None:
            self.faithfulness_changed.emit(None)
        # A new map is drawn fitted to its own points: the range kept for the last one (the
        # preview's, in other coordinates) must not be put back on it by the next view change.
        if self.view.x_range is not None or self.view.y_range is not None:
            self.set_view(replace(self.view, x_range=None, y_range=None))
        comparison = self.comparison
        if not preview and comparison is not None and comparison.params != projected.params:
            self.close_comparison()
        return True

    def show_progressive(self, progressive: ProgressiveMap) -> bool:
        """A large dataset's map while it is embedded (a row not placed yet is NaN); False
        (ignored) for another dataset's, or once a map of the run is on show."""
        if self.opened is None or progressive.dataset_id != self.opened.dataset_id or self.shown is not None:
            return False
        self.progressive = progressive
        self.progressive_changed.emit(progressive)
        return True

    def set_scores(self, scores: MapScores) -> bool:
        """Clusters and trustworthiness of the map on show; False (ignored) for any other map."""
        if self.shown is None or scores.map_id != self.shown.map.map_id:
            return False
        self.scores = scores
        self.scores_changed.emit(scores)
        return True

    def set_faithfulness(self, faithfulness: Faithfulness) -> bool:
        if self.shown is None or faithfulness.map_id != self.shown.map.map_id:
            return False
        self.faithfulness = faithfulness
        self.faithfulness_changed.emit(faithfulness)
        return True

    def set_layer_maps(self, maps: LayerMaps) -> bool:
        """Every layer's map of the open dataset, for the layer slider; False (ignored) when
        they are not maps of its rows (another dataset's, arriving late)."""
        if self.opened is None or any(len(coords) != self.rows for coords in maps.maps):
            return False
        self.layer_maps = maps.maps
        self.layer_maps_changed.emit(maps.maps)
        return True

    # -- a comparison -------------------------------------------------------------------------

    def set_comparison(self, comparison: Comparison) -> bool:
        """Show ``comparison`` beside the map; False (ignored) for another dataset's, or when
        no map is on show."""
        if self.opened is None or self.shown is None or comparison.dataset_id != self.opened.dataset_id:
            return False
        self.comparison = comparison
        self.comparison_changed.emit(comparison)
        return True

    def close_comparison(self) -> None:
        """Back to one map (Map ▸ Close comparison)."""
        if self.comparison is not None:
            self.comparison = None
            self.comparison_changed.emit(None)

    # -- the user's view of the rows ---------------------------------------------------------

    def select(self, rows: npt.ArrayLike) -> None:
        """Select rows (map, table, session); rows outside the dataset are dropped."""
        chosen = _valid_rows(rows, self.rows)
        if np.array_equal(chosen, self.selection):
            return
        self.selection = chosen
        self.selection_changed.emit(chosen)

    def set_filter(self, row_filter: RowFilter | None) -> None:
        """Keep only ``row_filter.rows`` (rows outside the dataset dropped); None: every row."""
        if row_filter is not None:
            row_filter = replace(row_filter, rows=_valid_rows(row_filter.rows, self.rows))
        if _same_filter(row_filter, self.filter):
            return
        self.filter = row_filter
        self.filter_changed.emit(row_filter)

    def set_search(self, search: Search) -> None:
        if search.matches is not None:
            search = replace(search, matches=_valid_rows(search.matches, self.rows))
        if search.query == self.search.query and _same_rows(search.matches, self.search.matches):
            return
        self.search = search
        self.search_changed.emit(search)

    def bookmark(self, row: int, note: str = "") -> None:
        """Bookmark ``row`` (or change its note); a row outside the dataset is ignored."""
        if not 0 <= row < self.rows or self.bookmarks.get(row) == note:
            return
        self.bookmarks = {**self.bookmarks, row: note}
        self.bookmarks_changed.emit(self.bookmarks)

    def remove_bookmark(self, row: int) -> None:
        if row in self.bookmarks:
            self.bookmarks = {r: n for r, n in self.bookmarks.items() if r != row}
            self.bookmarks_changed.emit(self.bookmarks)

    def set_bookmarks(self, marks: dict[int, str]) -> None:
        """Replace the bookmarks (a session); rows outside the dataset are dropped."""
        kept = {int(row): note for row, note in marks.items() if 0 <= row < self.rows}
        if kept == self.bookmarks and list(kept) == list(self.bookmarks):
            return
        self.bookmarks = kept
        self.bookmarks_changed.emit(kept)

    def set_view(self, view: ViewOptions) -> None:
        if view != self.view:
            self.view = view
            self.view_changed.emit(view)

    def kept_rows_or_none(self) -> Rows | None:
        """The rows the filter keeps; None without a filter (every row)."""
        return self.filter.rows if self.filter is not None else None

    def kept_rows(self) -> Rows:
        """The rows the filter keeps (every row without a filter)."""
        if self.filter is not None:
            return self.filter.rows
        return np.arange(self.rows, dtype=np.intp)


def _valid_rows(rows: npt.ArrayLike, count: int) -> Rows:
    array = np.asarray(rows, dtype=np.intp).reshape(-1)
    return array[(array >= 0) & (array < count)]


def _same_rows(a: Rows | None, b: Rows | None) -> bool:
    if a is None or b is None:
        return a is b
    return bool(np.array_equal(a, b))


def _same_filter(a: RowFilter | None, b: RowFilter | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.column, a.condition) == (b.column, b.condition) and _same_rows(a.rows, b.rows)
