"""The map view and its controls, following the application model.

:class:`MapPresenter` subscribes to the model (a new map, its scores and faithfulness, the
selection, the filter, the search, the colouring, sizes, density, the layer slider and the
visible range) and draws them on :class:`~desktop.map.view.MapView`; what the user changes on
the map or in :class:`~desktop.map.controls.MapControls` (colouring, size, density, layer, a
box or lasso, panning) it writes back into the model, never to another view. GUI thread only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from desktop.map.colours import CodedCategories
from desktop.map.controls import NO_COLOURING, MapControls
from desktop.map.view import MapView
from desktop.model.comparison import COMPARE_COLOURINGS, compare_values
from desktop.model.document import AppModel, ShownMap, ViewOptions
from engine.api.types import MapScores, OpenedDataset, ProgressiveMap
from engine.core.runs import Clustering
from engine.data.column_codes import as_numbers, is_numeric, text_codes, value_codes
from engine.data.row_filter import is_numeric_column
from engine.maps.projection import PARAMETERS, ProjectionParams

_RANGE_SETTLE_MS = 250  # the visible range goes into the model once the view stops moving
_PREVIEW_TITLE = "PCA preview (the map is on its way)"


class MapPresenter(QObject):
    """``map_shown(method)`` after each map is drawn ("pca" for the preview);
    ``faithfulness_wanted`` when the colouring needs faithfulness the model does not have."""

    map_shown = Signal(str)
    faithfulness_wanted = Signal()

    def __init__(self, model: AppModel, view: MapView, controls: MapControls) -> None:
        super().__init__(view)
        self.model, self.view, self.controls = model, view, controls
        self._labels: CodedCategories | None = None  # the dataset's labels, numbered once
        self._view = model.view  # the options last drawn
        self._progressive_id: str | None = None  # the progressive map drawn (its rows move, no refit)
        # Other maps of the same rows drawn in the same colours, sizes and density (a comparison's).
        self.followers: list[MapView] = []
        self._range_timer = QTimer(self, singleShot=True, interval=_RANGE_SETTLE_MS)
        self._range_timer.timeout.connect(self._keep_range)
        model.dataset_changed.connect(self._on_dataset)
        model.map_changed.connect(self._on_map)
        model.scores_changed.connect(self._on_scores)
        model.faithfulness_changed.connect(lambda _: self._recolour())
        model.selection_changed.connect(view.set_selection)
        model.progressive_changed.connect(self._on_progressive)
        model.filter_changed.connect(lambda row_filter: view.set_visible_rows(self._visible_rows()))
        model.search_changed.connect(lambda search: view.set_matches(search.matches))
        model.view_changed.connect(self._on_view)
        model.layer_maps_changed.connect(self._on_layer_maps)
        model.params_changed.connect(controls.set_params)
        controls.colouring_changed.connect(lambda colouring: self._change(colouring=colouring))
        controls.size_changed.connect(lambda column: self._change(size_by=column or None))
        controls.density_toggled.connect(lambda on: self._change(density=on))
        controls.layer_changed.connect(lambda layer: self._change(layer_slider=layer))
        controls.tool_changed.connect(view.set_tool)
        view.rows_selected.connect(model.select)
        view.plot.getViewBox().sigRangeChanged.connect(lambda *_: self._range_timer.start())

    @property
    def title(self) -> str:
        return str(self.view.plot.titleLabel.text)

    def _change(self, **changes: object) -> None:
        self.model.set_view(replace(self.model.view, **changes))  # type: ignore[arg-type]

    # -- the model's changes --------------------------------------------------------------

    def _on_dataset(self, opened: OpenedDataset | None) -> None:
        self._labels = None
        self.controls.layer.setEnabled(False)
        self.controls.set_score("")
        if opened is None:
            return
        dataset = opened.dataset
        columns = dataset.columns
        numeric = [name for name, values in columns.items() if is_numeric_column(values)]
        self.controls.set_columns(list(columns), numeric, labels=dataset.has_labels)
        # The model's colouring where this dataset offers it, else the one the controls fell back on.
        index = self.controls.colouring.findData(self.model.view.colouring)
        if index >= 0:
            self.controls.colouring.blockSignals(True)
            self.controls.colouring.setCurrentIndex(index)
            self.controls.colouring.blockSignals(False)
        self._change(colouring=str(self.controls.colouring.currentData()), size_by=None)

    def _on_map(self, shown: ShownMap | None) -> None:
        dataset = self.model.dataset
        if shown is None or dataset is None:
            return
        title = _PREVIEW_TITLE if shown.preview else describe(shown.map.params)
        self.view.set_points(shown.coords, self.labels(), dataset.texts, title)
        self._progressive_id = None
        self.view.set_visible_rows(self._visible_rows())
        self.view.set_selection(self.model.selection)
        self.view.set_matches(self.model.search.matches)
        self._apply_points()
        self._recolour()
        self.map_shown.emit("pca" if shown.preview else shown.map.params.method)

    def _on_progressive(self, progressive: ProgressiveMap | None) -> None:
        """A large dataset's map while it is embedded: only the rows placed so far are drawn.

        The first one is drawn like a new map (fitted); each later step of the same one moves
        the rows in place, keeping the user's view: placed rows land among the sample's, so
        the fitted range still holds them.
        """
        dataset = self.model.dataset
        if progressive is None or dataset is None or self.model.shown is not None:
            self._progressive_id = None
            return
        coords = progressive.coords
        unplaced = ~np.isfinite(coords[:, 0])
        if unplaced.any():  # hidden, but never at (0, 0): at a placed row, inside the fitted range
            coords = coords.copy()
            coords[unplaced] = coords[int(np.argmin(unplaced))]
        title = f"Placing rows: {progressive.placed:,} of {progressive.total:,} (the map is on its way)"
        if progressive.progressive_id != self._progressive_id:
            self._progressive_id = progressive.progressive_id
            self.view.set_points(coords, self.labels(), dataset.texts, title)
            self.view.set_selection(self.model.selection)
            self.view.set_matches(self.model.search.matches)
            self.view.set_visible_rows(self._visible_rows())
            return
        self.view.plot.setTitle(title)
        self.view.set_visible_rows(self._visible_rows())  # before the move: one refresh draws both
        self.view.move_to(coords, animate=False)

    def _visible_rows(self) -> np.ndarray | None:
        """The rows the filter keeps (None: every row), and on a progressive map only those placed."""
        kept, progressive = self.model.kept_rows_or_none(), self.model.progressive
        if self.model.shown is not None or progressive is None:
            return kept
        placed = np.flatnonzero(np.isfinite(progressive.coords[:, 0]))
        return placed if kept is None else np.intersect1d(kept, placed, assume_unique=True)

    def _on_scores(self, scores: MapScores | None) -> None:
        if scores is None:
            self.controls.set_score("")
            return
        count = len(scores.names)
        self.controls.set_score(f"trustworthiness {scores.trustworthiness:.3f} · {count} clusters")
        if self.model.view.colouring == "cluster":
            self._recolour()

    def _on_view(self, options: ViewOptions) -> None:
        """The colouring, sizes, density, layer and range, from the controls or a session."""
        controls = self.controls
        for combo, data in (
            (controls.colouring, options.colouring),
            (controls.size_by, options.size_by or ""),
        ):
            index = combo.findData(data)
            if index >= 0 and index != combo.currentIndex():
                combo.blockSignals(True)
                combo.setCurrentIndex(index)
                combo.blockSignals(False)
        if controls.density.isChecked() != options.density:
            controls.density.blockSignals(True)
            controls.density.setChecked(options.density)
            controls.density.blockSignals(False)
        # Only what changed is drawn again: a pan changes the range alone, many times a minute,
        # and recolouring 200,000 points costs the GUI thread tens of ms.
        before, self._view = self._view, options
        if (options.size_by, options.density) != (before.size_by, before.density):
            self._apply_points()
        if options.colouring != before.colouring:
            self._recolour()
        if options.layer_slider != before.layer_slider:
            self._show_layer(options.layer_slider)
        if options.x_range is not None and options.y_range is not None:
            wanted = (*options.x_range, *options.y_range)
            if not np.allclose(wanted, self.view.view_range(), rtol=1e-6, atol=1e-9):
                self.view.set_view_range(*wanted)

    def _on_layer_maps(self, maps: tuple[object, ...]) -> None:
        if maps:
            self.controls.set_layer_count(len(maps) - 1)
        else:
            self.controls.layer.setEnabled(False)

    def _keep_range(self) -> None:
        if self.model.shown is None:
            return
        x0, x1, y0, y1 = self.view.view_range()
        self._change(x_range=(x0, x1), y_range=(y0, y1))

    # -- drawing -----------------------------------------------------------------------------

    def labels(self) -> CodedCategories:
        """The dataset's labels, numbered once per dataset: on the opening job's thread when
        they came from there, else now."""
        dataset, coded = self.model.dataset, self.model.label_codes
        assert dataset is not None
        if self._labels is None:
            self._labels = (
                CodedCategories(coded.names, coded.codes)
                if coded is not None
                else CodedCategories(*value_codes(dataset.labels))
            )
        return self._labels

    def _apply_points(self) -> None:
        """Sizes and the density view as the model asks (after every new map too)."""
        dataset, options = self.model.dataset, self.model.view
        if dataset is None or self.model.shown is None:
            return
        values = dataset.columns.get(options.size_by) if options.size_by else None
        for view in (self.view, *self.followers):
            view.set_sizes(None if values is None else as_numbers(values), options.size_by or "")
            view.set_density(options.density)

    def follow(self, view: MapView) -> None:
        """Draw ``view`` (another map of the same rows) in this map's colours, sizes and density."""
        if view not in self.followers:
            self.followers.append(view)
        self._apply_points()
        self._recolour()

    def unfollow(self, view: MapView) -> None:
        if view in self.followers:
            self.followers.remove(view)

    def _show_layer(self, layer: int | None) -> None:
        """Glide to layer ``layer``'s map (the colours stay; scores are for the main map)."""
        maps = self.model.layer_maps
        if layer is not None and 0 <= layer < len(maps):
            self.view.move_to(maps[layer])
            self.view.plot.setTitle(f"Layer {layer} of {len(maps) - 1} (aligned)")

    def _recolour(self) -> None:
        """Colour the shown map (and its followers) by label, nothing, cluster, faithfulness
        (asking for it when needed), a comparison's overlap or displacement, or a column."""
        for view in (self.view, *self.followers):
            self._colour(view)

    def _colour(self, view: MapView) -> None:
        dataset, shown = self.model.dataset, self.model.shown
        if dataset is None or shown is None:
            return
        colouring = self.model.view.colouring
        if colouring == "label":
            view.set_categories(self.labels())
        elif colouring == NO_COLOURING:
            view.set_categories(CodedCategories([""], np.zeros(len(dataset), np.intp)), legend=False)
        elif colouring == "cluster":
            scores = self.model.scores
            if scores is None:
                return  # the scores are on their way and recolour when they land
            # The cluster numbers are the categories already (-1, noise, first): no text to number.
            highest = int(scores.labels.max(initial=-1))
            names = [scores.names.get(c, "noise") for c in range(-1, highest + 1)]
            view.set_categories(CodedCategories(names, scores.labels + 1), muted="noise", legend=False)
            on_show = view.coords  # a layer map may be on show instead of the scored one
            if view is not self.view:
                view.set_annotations([])  # another side's map: the first map's names would pile up
            elif on_show is shown.coords or np.array_equal(on_show, shown.coords):
                view.set_annotations(list(scores.centres))
            else:
                view.set_annotations(Clustering(scores.labels, scores.names).centres(on_show))
            return
        elif colouring == "faithfulness":
            faithfulness = self.model.faithfulness
            if faithfulness is None:
                if not shown.preview:
                    self.faithfulness_wanted.emit()
                return
            view.set_values(faithfulness.values, "faithfulness")
        elif colouring in COMPARE_COLOURINGS:
            comparison = self.model.comparison
            values = None if comparison is None else compare_values(comparison, colouring)
            if values is None:
                return  # the comparison closed: the controls choose another colouring
            view.set_values(values, COMPARE_COLOURINGS[colouring])
        elif colouring.startswith("column:"):
            self._colour_by_column(view, colouring.removeprefix("column:"))
        view.set_annotations([])

    def _colour_by_column(self, view: MapView, name: str) -> None:
        """Numbers as a colour scale; anything else as categories (the 16 most common named)."""
        dataset = self.model.dataset
        assert dataset is not None
        values = dataset.columns.get(name)
        if values is None:
            return
        # Whole-column questions in Arrow or numpy: a loop per row took 45 ms at 200,000 rows.
        if is_numeric(values):
            view.set_values(as_numbers(values), name)
        else:
            # As text (a missing value is "", "(no label)"), numbered once: not again by the map.
            view.set_categories(CodedCategories(*text_codes(values)))


def describe(params: ProjectionParams) -> str:
    """A map's title: the method and the parameters that differ from their defaults."""
    names = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
    changed = [
        f"{name}={value}"
        for name, value in params.settings().items()
        if value != PARAMETERS[params.method][name].default
    ]
    return " ".join([names.get(params.method, params.method), *changed, f"(seed {params.seed})"])
