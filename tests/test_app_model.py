"""The application model's rules, without Qt or an engine: what is shown when results arrive
late, stale or out of order, what a new dataset clears, and which events fire (once each)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from desktop.model.document import AppModel, LabelCodes, RowFilter, Search, Source, ViewOptions
from engine.api.types import EmbeddedRun, Faithfulness, LayerMaps, MapScores, OpenedDataset, ProjectedMap
from engine.data.datasets import Dataset
from engine.maps.projection import Method, ProjectionParams

ROOT = Path(__file__).resolve().parents[1]
EVENTS = (
    "engine_changed",
    "params_changed",
    "dataset_changed",
    "run_changed",
    "map_changed",
    "scores_changed",
    "faithfulness_changed",
    "layer_maps_changed",
    "selection_changed",
    "filter_changed",
    "search_changed",
    "bookmarks_changed",
    "view_changed",
)


def _opened(dataset_id: str = "d1", rows: int = 5) -> OpenedDataset:
    texts = [f"row {i}" for i in range(rows)]
    return OpenedDataset(dataset_id, Dataset("test", texts, ["a", "b"] * (rows // 2) + ["a"] * (rows % 2)))


def _run(dataset_id: str = "d1", run_id: str = "r1", rows: int = 5) -> EmbeddedRun:
    return EmbeddedRun(run_id, dataset_id, -1, rows, 4, rows, 0, 0, f"input-{run_id}")


def _map(map_id: str, run_id: str = "r1", rows: int = 5, method: Method = "umap") -> ProjectedMap:
    coords = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
    return ProjectedMap(map_id, run_id, ProjectionParams(method=method), coords)


def _scores(map_id: str, rows: int = 5) -> MapScores:
    return MapScores(map_id, np.zeros(rows, np.int32), {0: "zero"}, 0.9, ((0.0, 0.0, "zero"),))


class Recorder:
    """Counts every event the model fires, with the last value of each."""

    def __init__(self, model: AppModel) -> None:
        self.counts: Counter[str] = Counter()
        self.last: dict[str, object] = {}
        for name in EVENTS:
            getattr(model, name).connect(lambda value, name=name: self._seen(name, value))

    def _seen(self, name: str, value: object) -> None:
        self.counts[name] += 1
        self.last[name] = value

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


@pytest.fixture
def model() -> AppModel:
    made = AppModel()
    made.open(Source("test"))
    made.set_dataset(_opened())
    assert made.set_run(_run())
    return made


def test_a_preview_never_replaces_a_real_map(model: AppModel) -> None:
    assert model.show_map(_map("pca", method="pca"), preview=True)
    assert model.shown is not None and model.shown.preview
    assert model.show_map(_map("m1"))
    assert model.shown.map.map_id == "m1" and not model.shown.preview
    # A cached map can land before its preview: the preview is then ignored.
    assert not model.show_map(_map("pca2", method="pca"), preview=True)
    assert model.shown.map.map_id == "m1"


def test_a_new_map_forgets_the_last_maps_visible_range(model: AppModel) -> None:
    """The preview's range is in the preview's coordinates: kept, the next colouring change put
    it back on the real map, which then showed an empty region (the cluster screenshot)."""
    assert model.show_map(_map("pca", method="pca"), preview=True)
    model.set_view(ViewOptions(x_range=(0.0, 1.0), y_range=(0.0, 1.0)))
    recorder = Recorder(model)
    assert model.show_map(_map("m1"))
    assert model.view.x_range is None and model.view.y_range is None
    assert recorder.take()["view_changed"] == 1
    assert model.show_map(_map("m2"))  # no range kept: no view event either
    assert recorder.take()["view_changed"] == 0


def test_a_map_of_another_run_is_ignored(model: AppModel) -> None:
    assert not model.show_map(_map("m1", run_id="old-run"))
    assert model.shown is None


def test_scores_and_faithfulness_count_only_for_the_map_on_show(model: AppModel) -> None:
    model.show_map(_map("m1"))
    model.show_map(_map("m2"))  # Apply again: the scores of m1 are late
    assert not model.set_scores(_scores("m1"))
    assert not model.set_faithfulness(Faithfulness("m1", np.ones(5, np.float32)))
    assert model.scores is None and model.faithfulness is None
    assert model.set_scores(_scores("m2"))
    assert model.set_faithfulness(Faithfulness("m2", np.ones(5, np.float32)))
    assert model.scores is not None and model.faithfulness is not None
    # A new map clears them: they were about the old one.
    model.show_map(_map("m3"))
    assert model.scores is None and model.faithfulness is None


def test_a_new_dataset_clears_everything_made_from_the_last(model: AppModel) -> None:
    model.show_map(_map("m1"))
    model.set_scores(_scores("m1"))
    model.set_faithfulness(Faithfulness("m1", np.ones(5, np.float32)))
    model.set_layer_maps(LayerMaps((np.zeros((5, 2), np.float32),) * 3))
    model.select([1, 2])
    model.set_filter(RowFilter("label", "a", np.array([0, 2, 4])))
    model.set_search(Search("row", np.array([0, 1])))
    model.bookmark(3, "look")
    model.set_view(ViewOptions(colouring="cluster", x_range=(0, 1), y_range=(0, 1), layer_slider=2))
    model.open(Source("next"))
    assert model.opened is None and model.run is None and model.shown is None
    assert model.scores is None and model.faithfulness is None and model.layer_maps == ()
    assert len(model.selection) == 0 and model.filter is None and model.search == Search()
    assert model.bookmarks == {}
    # The colouring is the user's choice and stays; where they looked does not.
    assert model.view.colouring == "cluster"
    assert model.view.x_range is None and model.view.layer_slider is None
    # Results of the old dataset arriving now are dropped.
    model.set_dataset(_opened("d2", rows=3))
    assert not model.set_run(_run("d1"))
    assert not model.set_layer_maps(LayerMaps((np.zeros((5, 2), np.float32),)))
    assert model.run is None and model.layer_maps == ()


def test_label_codes_count_only_for_the_open_dataset(model: AppModel) -> None:
    assert not model.set_label_codes(LabelCodes("another", ["x"], np.zeros(5, np.intp)))
    assert model.label_codes is None
    assert model.set_label_codes(LabelCodes("d1", ["a", "b"], np.array([0, 1, 0, 1, 0])))
    assert model.label_codes is not None
    model.open(Source("next"))
    assert model.label_codes is None


def test_selection_filter_search_and_bookmarks_hold_only_rows_of_the_dataset(model: AppModel) -> None:
    model.select([-1, 0, 4, 5, 99])
    assert model.selection.tolist() == [0, 4]
    model.set_filter(RowFilter("n", "> 1", np.array([2, 3, 7])))
    assert model.filter is not None and model.filter.rows.tolist() == [2, 3]
    assert model.kept_rows().tolist() == [2, 3]
    model.set_search(Search("x", np.array([4, 10])))
    assert model.search.matches is not None and model.search.matches.tolist() == [4]
    model.bookmark(7, "outside")
    model.bookmark(-1)
    model.set_bookmarks({1: "one", 12: "outside", 0: "zero"})
    assert model.bookmarks == {1: "one", 0: "zero"} and list(model.bookmarks) == [1, 0]
    model.set_filter(None)
    assert model.kept_rows().tolist() == [0, 1, 2, 3, 4]


def test_a_filter_is_its_column_and_condition_never_a_parsed_description() -> None:
    odd = RowFilter("a: b", "x: y", np.array([0]))
    assert (odd.column, odd.condition) == ("a: b", "x: y")


def test_each_change_fires_its_event_once_and_no_change_fires_none(model: AppModel) -> None:
    seen = Recorder(model)
    model.select([1, 2])
    model.select([1, 2])
    assert seen.take() == Counter(selection_changed=1)
    model.set_filter(RowFilter("label", "a", np.array([0, 2])))
    model.set_filter(RowFilter("label", "a", np.array([0, 2])))
    assert seen.take() == Counter(filter_changed=1)
    model.set_search(Search("row", np.array([1])))
    model.set_search(Search("row", np.array([1])))
    assert seen.take() == Counter(search_changed=1)
    model.bookmark(1, "n")
    model.bookmark(1, "n")
    model.remove_bookmark(4)
    assert seen.take() == Counter(bookmarks_changed=1)
    model.set_view(ViewOptions(density=True))
    model.set_view(ViewOptions(density=True))
    assert seen.take() == Counter(view_changed=1)
    model.set_params(ProjectionParams(method="pca"))
    model.set_params(ProjectionParams(method="pca"))
    assert seen.take() == Counter(params_changed=1)

    model.show_map(_map("m1"))
    assert seen.take() == Counter(map_changed=1)  # no scores were there to clear
    model.set_scores(_scores("m1"))
    assert seen.take() == Counter(scores_changed=1)
    model.show_map(_map("m2"))
    assert seen.take() == Counter(map_changed=1, scores_changed=1)
    assert seen.last["scores_changed"] is None

    model.open(Source("next"))
    counts = seen.take()
    assert all(count == 1 for count in counts.values()), counts
    assert {"dataset_changed", "run_changed", "map_changed", "selection_changed", "filter_changed"} <= set(
        counts
    )
    assert "search_changed" in counts and "bookmarks_changed" in counts


def test_an_event_callback_may_disconnect_itself(model: AppModel) -> None:
    calls: list[object] = []

    def once(rows: object) -> None:
        calls.append(rows)
        model.selection_changed.disconnect(once)

    model.selection_changed.connect(once)
    model.select([1])
    model.select([2])
    assert len(calls) == 1


def test_the_model_imports_no_qt() -> None:
    """The model (and the map flow it is fed from) loads without Qt or pyqtgraph."""
    code = (
        "import sys, desktop.model, desktop.model.document, desktop.model.events, desktop.model.labels,"
        " engine.api.flow;"
        "print(sorted({'PySide6', 'pyqtgraph', 'shiboken6'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
