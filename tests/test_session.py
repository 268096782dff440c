"""Sessions: a versioned JSON file that round-trips, refuses bad input in one sentence, and
reopens a window's map from the cache with the same view and selection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from desktop.app import create_window
from desktop.window.main_window import MainWindow
from desktop.window.sessions import save_session_as
from engine.data.datasets import Dataset
from engine.errors import BadInputError
from engine.maps.projection import ProjectionParams
from engine.user.session import (
    Bookmark,
    DatasetRef,
    SavedFilter,
    Session,
    ViewState,
    check_dataset,
    dataset_location,
    load_session,
    save_session,
    session_to_json,
)
from tests.conftest import window_args


def _session(**changes: Any) -> Session:
    values: dict[str, Any] = {
        "dataset": DatasetRef(path="/data/reviews.csv", fingerprint="abc123"),
        "model": "minilm",
        "pooling": "mean",
        "layer": 4,
        "projection": ProjectionParams.from_options("umap", {"n_neighbors": "30", "metric": "euclidean"}, 7),
        "view": ViewState(
            x_range=(-1.5, 2.25), y_range=(0.0, 3.0), colouring="column:stars", size_by="length",
            density=True, layer_slider=3, search="refund", filter=SavedFilter("stars", "> 3"),
        ),
        "selection": (3, 1, 4),
        "bookmarks": (Bookmark(5, "odd one"), Bookmark(9)),
    }  # fmt: skip
    values.update(changes)
    return Session(**values)


def test_a_session_round_trips_through_its_file(tmp_path: Path) -> None:
    session = _session()
    path = save_session(tmp_path / "s.loupe.json", session)
    assert load_session(path) == session
    data = json.loads(path.read_text())
    assert (data["format"], data["version"]) == ("loupe-session", 2)
    assert data["view"]["filter"] == {"column": "stars", "condition": "> 3"}
    assert data["projection"] == {
        "method": "umap",
        "params": {"n_neighbors": 30, "min_dist": 0.1, "spread": 1.0, "metric": "euclidean"},
        "seed": 7,
    }
    assert data["view"]["x_range"] == [-1.5, 2.25]
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left nothing behind


def test_the_demo_and_an_empty_view_round_trip(tmp_path: Path) -> None:
    session = _session(dataset=DatasetRef(demo_rows=300), view=ViewState(), selection=(), bookmarks=())
    assert load_session(save_session(tmp_path / "d.loupe.json", session)) == session
    assert dataset_location(session, tmp_path / "d.loupe.json") is None


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "bad.loupe.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _changed(path: str, value: object) -> dict[str, Any]:
    """The good session's JSON with one field (``a.b``) set, or removed when ``value`` is ...``."""
    data = session_to_json(_session())
    *parents, key = path.split(".")
    target = data
    for parent in parents:
        target = target[parent]
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "bad.loupe.json is not a Loupe session: it is not JSON."),
        ([1, 2], "bad.loupe.json is not a Loupe session file."),
        ({"format": "something-else", "version": 1}, "bad.loupe.json is not a Loupe session file."),
        (_changed("version", "1"), "bad.loupe.json has no valid session version."),
        (_changed("model", ...), "bad.loupe.json is not a usable session: it has no model."),
        (
            _changed("layer", 2.5),
            "bad.loupe.json is not a usable session: layer should be a whole number, not 2.5.",
        ),
        (_changed("layer", True), "layer should be a whole number, not true."),
        (_changed("dataset", {"path": "relative.csv"}), "dataset.path should be an absolute path."),
        (_changed("dataset", {"rows": 3}), "its dataset has neither a path nor demo_rows."),
        (_changed("dataset", {"demo_rows": 0}), "dataset.demo_rows should be at least 1."),
        (_changed("view.density", "yes"), 'view.density should be true or false, not "yes".'),
        (_changed("view.x_range", [1, "2"]), "view.x_range should be two numbers, low to high."),
        (_changed("view.y_range", [3.0, 1.0]), "view.y_range should be two numbers, low to high."),
        (_changed("view.search", ...), "it has no view.search."),
        (_changed("view.filter", "stars: > 3"), 'view.filter should be an object, not "stars: > 3".'),
        (_changed("view.filter", {"column": "stars"}), "it has no view.filter.condition."),
        (
            _changed("view.filter", {"column": 3, "condition": "> 3"}),
            "view.filter.column should be text, not 3.",
        ),
        (_changed("selection", [1, -2]), "selection should hold row numbers, not -2."),
        (_changed("selection", "1,2"), "selection should be a list"),
        (_changed("bookmarks", [{"row": 1}]), "it has no bookmarks.note."),
        (_changed("bookmarks", [7]), "each bookmark should be an object."),
        (
            _changed("projection.method", "mds"),
            "has a projection this Loupe cannot use: Unknown projection method",
        ),
        (_changed("projection.params", {"n_neighbors": 1}), "n_neighbors must be at least 2, not 1."),
        (
            _changed("projection.params", {"n_neighbors": [15]}),
            "projection parameter n_neighbors is not a value.",
        ),
        (_changed("projection.seed", -1), "The seed must be a whole number"),
    ],
)
def test_bad_input_is_refused_in_one_sentence(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(BadInputError) as raised:
        load_session(_write(tmp_path, data))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value) and "Traceback" not in str(raised.value)


def test_a_session_from_a_newer_loupe_is_refused_in_plain_words(tmp_path: Path) -> None:
    path = _write(tmp_path, _changed("version", 3))
    with pytest.raises(
        BadInputError, match=r"saved by a newer Loupe \(session version 3\); this Loupe reads version 2"
    ):
        load_session(path)


def test_a_missing_file_is_a_plain_error(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"Cannot read the session .*gone\.loupe\.json"):
        load_session(tmp_path / "gone.loupe.json")


def test_a_changed_dataset_is_a_warning_in_one_sentence() -> None:
    data = Dataset("d", ["one", "two", "three"], ["a", "b", "a"])
    same = _session(dataset=DatasetRef(path="/d.csv", fingerprint=data.fingerprint))
    assert check_dataset(same, data) is None
    assert check_dataset(_session(dataset=DatasetRef(path="/d.csv")), data) is None  # nothing to compare
    warning = check_dataset(_session(), data)
    assert warning is not None and warning.startswith("The file changed since the session was saved")
    assert warning.count(".") == 1 and warning.endswith("(3 rows now).")


def test_the_data_is_found_beside_a_moved_session(tmp_path: Path) -> None:
    (tmp_path / "reviews.csv").write_text("text\nhi\n")
    session = _session()  # saved as /data/reviews.csv, which is not here
    assert dataset_location(session, tmp_path / "s.loupe.json") == tmp_path / "reviews.csv"
    assert dataset_location(session, tmp_path / "elsewhere" / "s.loupe.json") == Path("/data/reviews.csv")


# -- the window: save, then reopen in a new window from the cache -----------------------------

WAIT_MS = 240_000
TOPICS = {
    "food": ["The soup was {} and the bread was fresh.", "A {} curry with rice and lentils."],
    "sport": ["The team won the {} match in extra time.", "She ran a {} marathon this spring."],
    "tech": ["The laptop's {} battery lasts all day.", "A {} update broke the phone's camera."],
}
WORDS = ["great", "terrible", "quick", "slow", "surprising", "boring", "famous", "quiet", "new", "old"]


def _csv(path: Path) -> Path:
    lines = ["text,label"]
    for label, patterns in TOPICS.items():
        for pattern in patterns:
            lines += [f'"{pattern.format(word)}",{label}' for word in WORDS]
    path.write_text("\n".join(lines) + "\n")
    return path  # 60 rows


def _wait_for_real_map(qtbot: QtBot, shown: MainWindow) -> None:
    failures: list[str] = []
    shown.job_failed.connect(failures.append)
    qtbot.waitUntil(lambda: _shown_method(shown) == "pca" or bool(failures), timeout=WAIT_MS)
    assert not failures, failures


def _shown_method(window: MainWindow) -> str | None:
    """The method of the real map on show (None: none yet, or only the PCA preview)."""
    shown = window.model.shown
    return None if shown is None or shown.preview else shown.map.params.method


def test_a_saved_session_reopens_the_same_map_from_the_cache(
    qtbot: QtBot,
    window: MainWindow,
    minilm: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _csv(tmp_path / "reviews.csv")
    window.model.set_params(ProjectionParams(method="pca"))  # fast; a real map all the same
    window.open_path(data)
    _wait_for_real_map(qtbot, window)
    coords = window.map_view.coords.copy()
    assert coords.shape == (60, 2)
    window.select_rows([2, 7, 41])
    (x0, x1), (y0, y1) = window.map_view.plot.viewRange()
    zoomed = {
        "xRange": (x0 + 0.2 * (x1 - x0), x0 + 0.7 * (x1 - x0)),
        "yRange": (y0 + 0.1 * (y1 - y0), y0 + 0.6 * (y1 - y0)),
    }
    window.map_view.plot.setRange(**zoomed, padding=0)
    # The range reaches the model once the view stops moving (a late layout pass of the window
    # can still adjust it to the map's aspect ratio); the search once it has run.
    qtbot.waitUntil(
        lambda: (
            window.model.view.x_range is not None
            and np.allclose(
                (*window.model.view.x_range, *window.model.view.y_range),
                np.array(window.map_view.plot.viewRange()).reshape(-1),
            )
        ),
        timeout=WAIT_MS,
    )
    on_screen = np.array(window.map_view.plot.viewRange())
    assert np.allclose(on_screen.mean(axis=1), [np.mean(zoomed["xRange"]), np.mean(zoomed["yRange"])])
    window.table_view.search.setText("marathon")
    window.table_view.flush_search()
    assert window.model.search.query == "marathon"
    saved = save_session_as(window.model, tmp_path / "look")
    assert saved.name == "look.loupe.json"
    window.close()  # as if Loupe were quit and started again later

    # Count fits in the new window: a map served from the cache runs none.
    from engine.maps.projection import project

    fits: list[str] = []

    def counted(vectors: np.ndarray, params: ProjectionParams, **options: Any) -> np.ndarray:
        fits.append(params.method)
        return project(vectors, params, **options)  # token and report, as the engine passes them

    monkeypatch.setattr("engine.core.engine.project", counted)
    # In this process: fits are counted by patching engine.core.engine.project, which a child cannot see.
    again = create_window(window_args(command=None), in_process=True)
    again.engine.engine._loaded = minilm  # type: ignore[attr-defined]  # the session's model: no second load
    qtbot.addWidget(again)
    again.show()
    try:
        again.open_path(saved)  # a .loupe.json goes to open_session
        _wait_for_real_map(qtbot, again)
        qtbot.waitUntil(lambda: again.map_view.selected_rows == [2, 7, 41], timeout=WAIT_MS)
        assert np.array_equal(again.map_view.coords, coords)
        assert fits == []
        assert again.model.source is not None and again.model.source.path == data.resolve()
        # The same region, centred: the map keeps its aspect ratio, so in a window laid out a little
        # differently one axis shows a bit more around it, and the other matches.
        shown, span = np.array(again.map_view.plot.viewRange()), on_screen[:, 1] - on_screen[:, 0]
        tolerance = 0.01 * span
        assert np.all(shown[:, 0] <= on_screen[:, 0] + tolerance) and np.all(
            shown[:, 1] >= on_screen[:, 1] - tolerance
        )
        assert np.allclose(shown.mean(axis=1), on_screen.mean(axis=1), rtol=0, atol=tolerance.min())
        assert np.any(np.abs((shown[:, 1] - shown[:, 0]) - span) <= tolerance)
        assert again.table_view.search.text() == "marathon"
        assert again.map_controls.params().method == "pca" and again.model.params.method == "pca"
        assert again.statusBar().currentMessage() == "Session look.loupe.json restored."

        # The data edited since: the session opens all the same, with a warning.
        data.write_text(data.read_text().replace("The soup was great", "The soup was cold"))
        again.open_path(saved)
        qtbot.waitUntil(
            lambda: again.statusBar().currentMessage().startswith("The file changed"), timeout=WAIT_MS
        )
        assert "(60 rows now)" in again.statusBar().currentMessage()
        assert again.map_view.selected_rows == [2, 7, 41]

        # A broken session file: one sentence in the status bar, the window goes on.
        broken = tmp_path / "broken.loupe.json"
        broken.write_text('{"format": "loupe-session", "version": 9}')
        again.open_path(broken)
        assert again.status_label.text() == (
            "Cannot open the session: broken.loupe.json was saved by a newer Loupe (session version 9);"
            " this Loupe reads version 2, so update Loupe to open it."
        )
    finally:
        again.close()
