"""Sessions from and into the application model, without a window: what the model shows is
saved, and a session puts its view, filter, search, selection and bookmarks back into a model
showing the same data. The filter is kept as a column and a condition, so a column named
``a: b`` round-trips; a version 1 file's joined text still opens. A comparison on show is saved
as its other side and k (a session without one writes nothing of it), and the model keeps a
comparison only for its data and a map of its parameters."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from desktop.model.comparison import CompareChoice
from desktop.model.document import AppModel, EngineChoice, Source, ViewOptions
from desktop.window.sessions import (
    apply_session_view,
    comparison_choice,
    filter_rows,
    read_session,
    save_session_as,
    search_rows,
    session_from_model,
    source_of,
)
from engine.api.types import (
    ComparedSide,
    Comparison,
    EmbeddedRun,
    EngineIdentity,
    OpenedDataset,
    ProjectedMap,
    Side,
)
from engine.data.datasets import Dataset
from engine.errors import LoupeError
from engine.maps.projection import ProjectionParams
from engine.user.session import SavedFilter, session_to_json

ODD = "a: b"  # a column whose name holds the old separator
TEXTS = [
    "The soup was cold.",
    "Crème brûlée, «parfaite».",
    "Суп был горячим.",
    "音楽のスープ 🍲",
    "A “quiet” soup evening.",
    "The team won.",
]
PARAMS = ProjectionParams.from_options("umap", {"n_neighbors": "5"}, seed=3)


def _dataset(texts: list[str] = TEXTS, path: Path | None = None) -> Dataset:
    rows = len(texts)
    columns = {
        ODD: ["x: 1", "y", "x: 1", "z", "y", "x: 1"][:rows],
        "stars": [5, 1, 4, 2, 3, 5][:rows],
    }
    labels = ["food", "food", "food", "music", "food", "sport"][:rows]
    return Dataset("reviews", texts, labels, columns=columns, path=path)


def _showing(dataset: Dataset, source: Source, *, preview: bool = False) -> AppModel:
    """A model that has opened ``dataset`` and shows a map of it, as the window's flow leaves it."""
    model = AppModel(engine=EngineChoice(model="minilm", pooling="mean", layer=4))
    model.open(source)
    model.set_dataset(OpenedDataset("d1", dataset))
    run = EmbeddedRun("r1", "d1", 4, len(dataset), 384, len(dataset), 0, 0, "input")
    assert model.set_run(run)
    coords = np.arange(2 * len(dataset), dtype=np.float32).reshape(-1, 2)
    assert model.show_map(ProjectedMap("m1", "r1", PARAMS, coords), preview=preview)
    return model


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n", encoding="utf-8")  # the session checks it is there; rows are ours
    return path


def test_nothing_open_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(LoupeError) as raised:
        save_session_as(AppModel(), tmp_path / "s")
    assert str(raised.value) == "There is nothing to save yet: open a dataset first."
    assert not list(tmp_path.iterdir())


def test_what_the_model_shows_round_trips_through_a_session(tmp_path: Path, data_file: Path) -> None:
    dataset = _dataset()
    source = Source("reviews.csv", data_file, text_column="text", label_column="label")
    model = _showing(dataset, source)
    model.set_view(
        ViewOptions(colouring="column:stars", size_by="stars", density=True, x_range=(0, 4), y_range=(1, 9))
    )
    model.set_filter(filter_rows(dataset, ODD, "x: 1"))
    model.set_search(search_rows(dataset, "SOUP"))
    model.select([4, 0, 2])
    model.bookmark(3, "odd one")
    model.bookmark(1)

    saved = save_session_as(model, tmp_path / "look")
    assert saved.name == "look.loupe.json"
    written = json.loads(saved.read_text(encoding="utf-8"))
    assert written["view"]["filter"] == {"column": ODD, "condition": "x: 1"}
    assert written["projection"]["params"]["n_neighbors"] == 5 and written["layer"] == 4
    assert written["pooling"] == "mean" and written["selection"] == [4, 0, 2]

    session = read_session(saved)
    assert replace(session_from_model(model), created=session.created) == session
    assert source_of(session) == source
    again = _showing(_dataset(), source_of(session))
    assert apply_session_view(again, session) is None  # the same data: no warning
    assert again.filter is not None and (again.filter.column, again.filter.condition) == (ODD, "x: 1")
    assert list(again.filter.rows) == [0, 2, 5] == list(model.filter.rows)  # type: ignore[union-attr]
    matches = again.search.matches
    assert again.search.query == "SOUP" and matches is not None and list(matches) == [0, 4]
    assert list(again.selection) == [4, 0, 2]
    assert list(again.bookmarks.items()) == [(3, "odd one"), (1, "")]
    assert again.view == model.view
    assert session_from_model(again).view == session.view  # saved again, the same


def test_a_version_1_filter_still_opens_even_on_a_column_named_with_its_separator(
    tmp_path: Path, data_file: Path
) -> None:
    source = Source("reviews.csv", data_file)
    session = session_from_model(_showing(_dataset(), source))
    for joined, expected in ((f"{ODD}: x: 1", (ODD, "x: 1")), ("stars: > 3", ("stars", "> 3"))):
        data = session_to_json(session)
        data["version"] = 1
        data["view"]["filter"] = joined
        path = tmp_path / "old.loupe.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        old = read_session(path)
        assert old.view.filter is not None and old.view.filter.joined  # split again against the data
        model = _showing(_dataset(), source)
        apply_session_view(model, old)
        assert model.filter is not None and (model.filter.column, model.filter.condition) == expected


def test_changed_data_is_a_warning_and_rows_past_its_end_are_dropped(data_file: Path) -> None:
    source = Source("reviews.csv", data_file)
    model = _showing(_dataset(), source)
    model.select([1, 5])
    model.bookmark(5, "last")
    model.set_view(ViewOptions(colouring="column:stars"))
    session = session_from_model(model)

    shorter = Dataset("reviews", TEXTS[:4], ["food"] * 4, columns={"other": [1, 2, 3, 4]})
    again = _showing(shorter, source)
    warning = apply_session_view(again, session)
    assert warning is not None and warning.startswith("The file changed since the session was saved")
    assert warning.endswith("(4 rows now).")
    assert list(again.selection) == [1] and again.bookmarks == {}
    assert again.view.colouring == "label"  # no "stars" column to colour by: left as it was


def test_a_filter_that_no_longer_applies_is_dropped(data_file: Path) -> None:
    source = Source("reviews.csv", data_file)
    session = session_from_model(_showing(_dataset(), source))
    for saved in (SavedFilter("stars", "lots"), SavedFilter("gone", "1")):  # not a number; no column
        model = _showing(_dataset(), source)
        apply_session_view(model, replace(session, view=replace(session.view, filter=saved)))
        assert model.filter is None
    with pytest.raises(LoupeError, match=r"There is no column 'gone' in this dataset\."):
        filter_rows(_dataset(), "gone", "1")


def test_without_a_real_map_the_projection_asked_for_is_saved(data_file: Path) -> None:
    model = _showing(_dataset(), Source("reviews.csv", data_file), preview=True)
    model.set_params(ProjectionParams.from_options("tsne", {"perplexity": "12"}, seed=9))
    assert session_from_model(model).projection == model.params
    model.show_map(ProjectedMap("m2", "r1", PARAMS, np.zeros((len(TEXTS), 2), np.float32)))
    assert session_from_model(model).projection == PARAMS  # the map on show, once there is one


def test_the_demo_round_trips(tmp_path: Path) -> None:
    model = _showing(_dataset(), Source("the demo dataset", demo_rows=300))
    session = read_session(save_session_as(model, tmp_path / "demo.loupe.json"))
    assert session.dataset.demo_rows == 300 and session.dataset.path is None
    assert source_of(session).demo_rows == 300


def test_data_moved_with_its_session_is_found_and_data_gone_is_one_sentence(
    tmp_path: Path, data_file: Path
) -> None:
    model = _showing(_dataset(), Source("reviews.csv", data_file))
    saved = save_session_as(model, tmp_path / "s.loupe.json")
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "reviews.csv").write_bytes(data_file.read_bytes())
    (moved / "s.loupe.json").write_bytes(saved.read_bytes())
    data_file.unlink()
    assert read_session(moved / "s.loupe.json").dataset.path == str(moved / "reviews.csv")
    with pytest.raises(LoupeError) as raised:
        read_session(saved)
    assert str(raised.value) == f"Its data {data_file} is not there any more."
    with pytest.raises(LoupeError, match="Cannot read the session"):
        read_session(tmp_path / "gone.loupe.json")


def test_apply_needs_the_data_open() -> None:
    model = AppModel()
    session = session_from_model(_showing(_dataset(), Source("the demo dataset", demo_rows=6)))
    with pytest.raises(LoupeError, match="not open yet"):
        apply_session_view(model, session)


def _comparison(model: AppModel, *, against_layer: int = 1, params: ProjectionParams = PARAMS) -> Comparison:
    """A comparison of ``model``'s rows with layer ``against_layer``, as the engine answers."""
    rows = model.rows
    identity = EngineIdentity("minilm", "id", "all-MiniLM-L6-v2", "mean", "cpu", 256, 6)
    sides = []
    for name, layer in (("a", 4), ("b", against_layer)):
        run = EmbeddedRun(f"r{name}", "d1", layer, rows, 384, rows, 0, 0, f"input-{name}")
        coords = np.arange(2 * rows, dtype=np.float32).reshape(-1, 2)
        side = Side(None if name == "a" else "minilm", layer, None)
        sides.append(ComparedSide(side, identity, run, ProjectedMap(f"m{name}", f"r{name}", params, coords)))
    values = np.linspace(0, 1, rows, dtype=np.float32)
    return Comparison(
        "d1", sides[0], sides[1], params, 7, values, values[::-1].copy(), 0.5, 0.8, {}, True, False
    )


def test_a_comparison_round_trips_and_older_sessions_have_none(tmp_path: Path, data_file: Path) -> None:
    source = Source("reviews.csv", data_file)
    model = _showing(_dataset(), source)
    plain = save_session_as(model, tmp_path / "plain")
    assert "comparison" not in json.loads(plain.read_text(encoding="utf-8"))  # readable by older Loupes
    assert read_session(plain).comparison is None and comparison_choice(read_session(plain)) is None

    assert model.set_comparison(_comparison(model))
    saved = save_session_as(model, tmp_path / "compared")
    written = json.loads(saved.read_text(encoding="utf-8"))
    assert written["comparison"] == {"model": "minilm", "layer": 1, "pooling": None, "k": 7}
    session = read_session(saved)
    assert comparison_choice(session) == CompareChoice("minilm", 1, None, 7)
    assert replace(session_from_model(model), created=session.created) == session

    written["comparison"]["k"] = 0
    saved.write_text(json.dumps(written), encoding="utf-8")
    with pytest.raises(LoupeError, match=r"comparison\.k should be at least 1\.$"):
        read_session(saved)
    written["version"] = 1  # a version 1 file (no comparison then) still opens
    del written["comparison"]
    saved.write_text(json.dumps(written), encoding="utf-8")
    assert read_session(saved).comparison is None


def test_a_comparison_is_kept_only_for_its_data_and_its_map() -> None:
    model = _showing(_dataset(), Source("the demo dataset", demo_rows=6))
    seen: list[object] = []
    model.comparison_changed.connect(seen.append)
    other = _comparison(model)
    assert not model.set_comparison(replace(other, dataset_id="elsewhere"))
    compared = _comparison(model)
    assert model.set_comparison(compared) and seen == [compared]
    shown = model.shown
    assert shown is not None
    assert model.show_map(replace(shown.map, map_id="m2"))  # the same parameters: kept
    assert model.comparison is compared
    pca = ProjectionParams.from_options("pca", {}, seed=0)
    assert model.show_map(replace(shown.map, map_id="m3", params=pca))  # other parameters: closed
    assert model.comparison is None and seen == [compared, None]
    assert model.set_comparison(_comparison(model, params=pca))
    model.open(Source("the demo dataset", demo_rows=6))  # another dataset: closed
    assert model.comparison is None and seen[-1] is None
