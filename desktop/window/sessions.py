"""Saving what the window shows as a session file, and reopening one.

:func:`session_from_window` reads the window into an :class:`engine.user.session.Session`;
:func:`open_session` configures the engine, opens the data and, once the real map (not the
PCA preview) is on screen, puts back the view, colouring, selection, search, filter and
bookmarks. Nothing is recomputed that the cache holds: the session names exactly the inputs
the cache keys are made of. A dataset that changed since is a warning in the status bar, and
the session still opens. GUI thread only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QComboBox, QFileDialog

from desktop.panels.bookmarks_view import BookmarksView
from engine.errors import BadInputError, LoupeError
from engine.maps.projection import ProjectionParams
from engine.user.session import (
    SUFFIX,
    Bookmark,
    DatasetRef,
    Session,
    ViewState,
    check_dataset,
    dataset_location,
    load_session,
    save_session,
)
from engine.user.settings import without_defaults

if TYPE_CHECKING:
    from desktop.window.main_window import MainWindow

log = logging.getLogger(__name__)
WARNING_MS = 20_000  # how long a changed-data warning stays in the status bar
RESTORED_MS = 5_000


def session_from_window(window: MainWindow) -> Session:
    """What ``window`` shows, as a session; :class:`LoupeError` when no dataset is open."""
    dataset = window.dataset
    fingerprint = dataset.fingerprint if dataset is not None else None
    if window.dataset_path is not None:
        text_column, label_column = window.dataset_columns  # as asked for; None: guessed
        ref = DatasetRef(
            path=str(Path(window.dataset_path).resolve()),
            fingerprint=fingerprint,
            text_column=text_column,
            label_column=label_column,
        )
    elif window.demo_rows is not None:
        ref = DatasetRef(demo_rows=window.demo_rows, fingerprint=fingerprint)
    else:
        raise LoupeError("There is nothing to save yet: open a dataset first.")
    controls = window.map_controls
    x_range = y_range = None
    if window.coords is not None:
        x0, x1, y0, y1 = window.map_view.view_range()
        x_range, y_range = (x0, x1), (y0, y1)
    filter_text = window.filter_bar.description
    view = ViewState(
        x_range=x_range,
        y_range=y_range,
        colouring=str(controls.colouring.currentData() or "label"),
        size_by=str(controls.size_by.currentData() or "") or None,
        density=controls.density.isChecked(),
        layer_slider=controls.layer.value() if controls.layer.isEnabled() else None,
        search=window.table_view.search.text(),
        filter=filter_text,
    )
    bookmarks = _bookmarks_view(window)
    return Session(
        dataset=ref,
        model=window.engine.model_name,
        pooling=window.pooling or None,
        layer=window.layer,
        projection=without_defaults(_shown_params(window)),
        view=view,
        selection=tuple(window.map_view.selected_rows),
        bookmarks=tuple(Bookmark(row, note) for row, note in bookmarks.bookmarks()) if bookmarks else (),
    )


def _shown_params(window: MainWindow) -> ProjectionParams:
    """The parameters of the map on screen (what reopening must find in the cache); without a
    real map yet, those in the form."""
    if window.shown_params is not None:
        return window.shown_params
    try:
        return window.map_controls.params()
    except BadInputError:
        return ProjectionParams()


def save_session_as(window: MainWindow, path: Path) -> Path:
    """Save the window's session to ``path`` (``.loupe.json`` added if missing); returns the file.

    Raises :class:`LoupeError` (one sentence) when there is nothing to save or it cannot be written.
    """
    if not path.name.endswith(SUFFIX):
        path = path.with_name(path.name + SUFFIX)
    save_session(path, session_from_window(window))
    window.status_label.setText(f"Session saved to {path}.")
    return path


def open_session(window: MainWindow, path: Path) -> Session | None:
    """Reopen the session in ``path`` in ``window``; None (and the reason in the status bar) when
    it cannot be opened. The view, selection and bookmarks follow when the real map is shown."""
    try:
        session = load_session(path)
    except LoupeError as exc:
        window.status_label.setText(f"Cannot open the session: {exc}")
        return None
    location = dataset_location(session, path)
    if location is not None and not location.exists():
        window.status_label.setText(f"Cannot open the session: its data {location} is not there any more.")
        return None
    try:
        window.configure_engine(session.model, window.engine.device, session.pooling, session.layer)
    except LoupeError as exc:
        window.status_label.setText(f"Cannot open the session: {exc}")
        return None
    window.map_controls.set_params(session.projection)
    if location is not None:
        ref = session.dataset  # the columns the user chose, else guessed again as before
        window.open_path(location, text_column=ref.text_column, label_column=ref.label_column)
    else:
        assert session.dataset.demo_rows is not None
        window.start_demo(rows=session.dataset.demo_rows)
    opened = (window.dataset_path, window.demo_rows)

    def on_map(_method: str) -> None:
        if (window.dataset_path, window.demo_rows) != opened:
            window.map_ready.disconnect(on_map)  # another dataset was opened meanwhile: not ours
            return
        if window.shown_method == "pca-preview":
            return  # the real map is on its way
        window.map_ready.disconnect(on_map)
        restore_view(window, session, path.name)

    window.map_ready.connect(on_map)
    return session


def restore_view(window: MainWindow, session: Session, name: str = "the session") -> None:
    """Put the session's view, colouring, sizes, filter, search, selection and bookmarks on the
    window's map (already showing the session's data)."""
    dataset = window.dataset
    assert dataset is not None
    view, controls = session.view, window.map_controls
    if view.x_range is not None and view.y_range is not None:
        window.map_view.set_view_range(*view.x_range, *view.y_range)
    _choose(controls.colouring, view.colouring)
    _choose(controls.size_by, view.size_by or "")
    controls.density.setChecked(view.density)
    if view.filter:
        column, _, condition = view.filter.partition(": ")
        window.filter_bar.set_filter(column, condition)
    window.table_view.search.setText(view.search)
    rows = len(dataset)
    window.select_rows([row for row in session.selection if row < rows])
    bookmarks = _bookmarks_view(window)
    if bookmarks is not None:
        marks = [(mark.row, mark.note) for mark in session.bookmarks if mark.row < rows]
        bookmarks.set_bookmarks(marks, {row: dataset.texts[row] for row, _ in marks})
    # Shown over the status label, which the jobs still finishing (scores) keep rewriting.
    warning = check_dataset(session, dataset)
    if warning is not None:
        window.statusBar().showMessage(warning, WARNING_MS)
    else:
        window.statusBar().showMessage(f"Session {name} restored.", RESTORED_MS)


def _choose(combo: QComboBox, data: str) -> None:
    index = combo.findData(data)
    if index >= 0:
        combo.setCurrentIndex(index)
    else:
        log.info("session: %r is not offered here any more; left as it is", data)


def _bookmarks_view(window: MainWindow) -> BookmarksView | None:
    view = getattr(window, "bookmarks_view", None)
    return view if isinstance(view, BookmarksView) else None


# -- File menu helpers (the window wires them to actions) -----------------------------------


def choose_save_session(window: MainWindow) -> Path | None:
    """File ▸ Save session… : a file dialog, then :func:`save_session_as`; errors in the status bar."""
    chosen, _ = QFileDialog.getSaveFileName(
        window, "Save the session", f"session{SUFFIX}", f"Loupe sessions (*{SUFFIX})"
    )
    if not chosen:
        return None
    try:
        return save_session_as(window, Path(chosen))
    except LoupeError as exc:
        window.status_label.setText(f"The session was not saved: {exc}")
        return None


def choose_open_session(window: MainWindow) -> Session | None:
    """File ▸ Open session… : a file dialog, then :func:`open_session`."""
    chosen, _ = QFileDialog.getOpenFileName(window, "Open a session", "", f"Loupe sessions (*{SUFFIX})")
    return open_session(window, Path(chosen)) if chosen else None
