"""Saving what the application model shows as a session file, and putting a session back into it.

:func:`session_from_model` reads an :class:`~desktop.model.document.AppModel` into an
:class:`engine.user.session.Session`; no widget is asked. Reopening is two steps, because the
data and its map come from the engine in between: :func:`read_session` (the file, and where its
data is now), then, once the session's real map (not the PCA preview) is shown,
:func:`apply_session_view` puts the view, colouring, filter, search, selection and bookmarks into
the model, computing the filter's and the search's rows as the filter bar and the table do.
Nothing is recomputed that the cache holds: the session names exactly the inputs the cache keys
are made of. A dataset that changed since is a warning (returned), and the session still opens.

GUI thread (the model is changed there), but nothing here needs a window.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from desktop.model.comparison import CompareChoice, choice_of
from desktop.model.document import AppModel, RowFilter, Search, Source
from desktop.panels.table_view import has_labels
from engine.data.column_codes import rows_containing
from engine.data.datasets import Dataset
from engine.data.row_filter import is_numeric_column, matching_rows, parse_condition
from engine.errors import BadInputError, LoupeError
from engine.maps.projection import ProjectionParams
from engine.user.session import (
    SUFFIX,
    Bookmark,
    DatasetRef,
    SavedComparison,
    SavedFilter,
    Session,
    ViewState,
    check_dataset,
    dataset_location,
    load_session,
    save_session,
)
from engine.user.settings import without_defaults

log = logging.getLogger(__name__)
WARNING_MS = 20_000  # how long a changed-data warning stays in the status bar
RESTORED_MS = 5_000


def session_from_model(model: AppModel) -> Session:
    """What ``model`` shows, as a session; :class:`LoupeError` when no dataset is open."""
    source = model.source
    if source is None or (source.path is None and source.demo_rows is None):
        raise LoupeError("There is nothing to save yet: open a dataset first.")
    dataset = model.dataset
    fingerprint = dataset.fingerprint if dataset is not None else None
    if source.path is not None:
        ref = DatasetRef(
            path=str(source.path.resolve()),
            fingerprint=fingerprint,
            text_column=source.text_column,  # as asked for; None: guessed
            label_column=source.label_column,
        )
    else:
        ref = DatasetRef(demo_rows=source.demo_rows, fingerprint=fingerprint)
    shown, view = model.shown, model.view
    row_filter = model.filter
    state = ViewState(
        x_range=view.x_range if shown is not None else None,
        y_range=view.y_range if shown is not None else None,
        colouring=view.colouring,
        size_by=view.size_by or None,
        density=view.density,
        layer_slider=view.layer_slider,
        search=model.search.query,
        filter=SavedFilter(row_filter.column, row_filter.condition) if row_filter is not None else None,
    )
    engine = model.engine
    compared = None
    if model.comparison is not None:
        choice = choice_of(model.comparison)
        compared = SavedComparison(choice.model, choice.layer, choice.pooling, choice.k)
    return Session(
        dataset=ref,
        model=engine.model,
        pooling=engine.pooling or None,
        layer=engine.layer,
        projection=without_defaults(_shown_params(model)),
        view=state,
        selection=tuple(int(row) for row in model.selection),
        bookmarks=tuple(Bookmark(row, note) for row, note in model.bookmarks.items()),
        comparison=compared,
    )


def comparison_choice(session: Session) -> CompareChoice | None:
    """The comparison the session showed (reopening recomputes it, or reads it from the cache)."""
    saved = session.comparison
    if saved is None:
        return None
    return CompareChoice(saved.model, saved.layer, saved.pooling, saved.k)


def _shown_params(model: AppModel) -> ProjectionParams:
    """The parameters of the map on show (what reopening must find in the cache); without a real
    map yet, those asked for (the form's)."""
    if model.shown is not None and not model.shown.preview:
        return model.shown.map.params
    return model.params


def save_session_as(model: AppModel, path: Path) -> Path:
    """Save the model's session to ``path`` (``.loupe.json`` added if missing); returns the file.

    Raises :class:`LoupeError` (one sentence) when there is nothing to save or it cannot be written.
    """
    if not path.name.endswith(SUFFIX):
        path = path.with_name(path.name + SUFFIX)
    save_session(path, session_from_model(model))
    return path


def read_session(path: Path) -> Session:
    """The session in ``path``, its dataset's path changed to where the data is now (a folder
    moved whole: beside the session file). :class:`LoupeError` (one sentence) when the file cannot
    be used or its data is not there any more."""
    session = load_session(path)
    location = dataset_location(session, path)
    if location is None:
        return session
    if not location.exists():
        raise LoupeError(f"Its data {location} is not there any more.")
    return replace(session, dataset=replace(session.dataset, path=str(location)))


def source_of(session: Session) -> Source:
    """What to open for ``session``: its file with the columns it chose, or the demo."""
    ref = session.dataset
    if ref.path is not None:
        path = Path(ref.path)
        return Source(path.name, path, text_column=ref.text_column, label_column=ref.label_column)
    return Source("the demo dataset", demo_rows=ref.demo_rows)


def apply_session_view(model: AppModel, session: Session) -> str | None:
    """Put the session's view, colouring, sizes, filter, search, selection and bookmarks into
    ``model``, which shows the session's data and map; returns the changed-data warning
    (:func:`engine.user.session.check_dataset`) or None. Rows past the end of the data are
    dropped; a column the data no longer has is left as it is (logged)."""
    dataset = model.dataset
    if dataset is None:
        raise LoupeError("The session's data is not open yet.")
    saved = session.view
    columns = set(dataset.columns)
    view = replace(model.view, density=saved.density)
    if saved.x_range is not None and saved.y_range is not None:
        view = replace(view, x_range=saved.x_range, y_range=saved.y_range)
    colour_column = saved.colouring.removeprefix("column:")
    if saved.colouring.startswith("column:") and colour_column not in columns:
        log.info("session: there is no column %r to colour by any more; left as it is", colour_column)
    else:
        view = replace(view, colouring=saved.colouring)
    if saved.size_by is None or saved.size_by in columns:
        view = replace(view, size_by=saved.size_by)
    else:
        log.info("session: there is no column %r to size by any more; left as it is", saved.size_by)
    model.set_view(view)
    if saved.filter is not None:
        model.set_filter(_restored_filter(dataset, saved.filter))
    model.set_search(search_rows(dataset, saved.search))
    rows = len(dataset)
    model.select([row for row in session.selection if row < rows])
    model.set_bookmarks({mark.row: mark.note for mark in session.bookmarks if mark.row < rows})
    return check_dataset(session, dataset)


def filter_columns(dataset: Dataset) -> dict[str, Sequence[object]]:
    """The columns a filter can be on, by the name the filter bar shows: the label (when the rows
    have one) and every column but the text."""
    found: dict[str, Sequence[object]] = {"label": dataset.labels} if has_labels(dataset.labels) else {}
    found.update({name: values for name, values in dataset.columns.items() if name != "text"})
    return found


def filter_rows(dataset: Dataset, column: str, condition: str) -> RowFilter:
    """The filter ``condition`` on ``column`` and the rows it keeps, as the filter bar computes
    them; :class:`BadInputError` (one sentence) for a column the data lacks or a bad condition."""
    values = filter_columns(dataset).get(column)
    if values is None:
        raise BadInputError(f"There is no column {column!r} in this dataset.")
    parsed = parse_condition(condition, numeric=is_numeric_column(values))
    return RowFilter(column, condition.strip(), matching_rows(values, parsed))


def search_rows(dataset: Dataset, query: str) -> Search:
    """The table's plain search (case-insensitive, not a regular expression) and its matches."""
    if not query:
        return Search()
    return Search(query, rows_containing(dataset.texts, query))


def _restored_filter(dataset: Dataset, saved: SavedFilter) -> RowFilter | None:
    found = saved.for_columns(filter_columns(dataset))
    if found is None:
        log.info("session: there is no column %r to filter on any more; no filter", saved.column)
        return None
    try:
        return filter_rows(dataset, found.column, found.condition)
    except BadInputError as exc:
        log.info("session: the filter does not apply to this data (%s); no filter", exc)
        return None


def ask_session_path(parent: QWidget | None, *, save: bool) -> Path | None:
    """File ▸ Save session… / Open session…: the file dialog; None when cancelled."""
    if save:
        chosen, _ = QFileDialog.getSaveFileName(
            parent, "Save the session", f"session{SUFFIX}", f"Loupe sessions (*{SUFFIX})"
        )
    else:
        chosen, _ = QFileDialog.getOpenFileName(parent, "Open a session", "", f"Loupe sessions (*{SUFFIX})")
    return Path(chosen) if chosen else None
