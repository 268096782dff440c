"""Sessions: a versioned JSON file that round-trips, refuses bad input in one sentence, and
reopens a window's map from the cache with the same view and selection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.datasets import Dataset
from engine.errors import BadInputError
from engine.projection import ProjectionParams
from engine.session import (
    Bookmark,
    DatasetRef,
    Session,
    ViewState,
    check_dataset,
    dataset_location,
    load_session,
    save_session,
    session_to_json,
)


def _session(**changes: Any) -> Session:
    values: dict[str, Any] = {
        "dataset": DatasetRef(path="/data/reviews.csv", fingerprint="abc123"),
        "model": "minilm",
        "pooling": "mean",
        "layer": 4,
        "projection": ProjectionParams.from_options("umap", {"n_neighbors": "30", "metric": "euclidean"}, 7),
        "view": ViewState(
            x_range=(-1.5, 2.25), y_range=(0.0, 3.0), colouring="column:stars", size_by="length",
            density=True, layer_slider=3, search="refund", filter="stars > 3",
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
    assert (data["format"], data["version"]) == ("loupe-session", 1)
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
    path = _write(tmp_path, _changed("version", 2))
    with pytest.raises(
        BadInputError, match=r"saved by a newer Loupe \(session version 2\); this Loupe reads version 1"
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
