"""Exports from the application model, without a window: a snapshot taken on the GUI thread
keeps what was shown, whatever the model does next, and the figure and the data are written on
another thread, with the provenance the engine's identity gives."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from desktop.model.document import AppModel, EngineChoice, RowFilter, Source, ViewOptions
from desktop.window.export import ExportSnapshot, export_data, export_map
from engine.api.types import EmbeddedRun, EngineIdentity, Faithfulness, MapScores, OpenedDataset, ProjectedMap
from engine.data.datasets import Dataset
from engine.errors import LoupeError
from engine.maps.projection import ProjectionParams

ROWS = 30
IDENTITY = EngineIdentity(
    model_name="minilm",
    model_identity="sentence-transformers/all-MiniLM-L6-v2@abc123",
    display_name="all-MiniLM-L6-v2",
    pooling="mean",
    device="cpu",
    max_length=256,
    layers=6,
)
PARAMS = ProjectionParams.from_options("umap", {"n_neighbors": "7"}, seed=5)


def _model(path: Path | None) -> AppModel:
    texts = [f"Zeile {row}: „{['Küche', 'Путешествия', '音楽'][row % 3]}“ 🎵" for row in range(ROWS)]
    labels = [["food", "travel", "music"][row % 3] for row in range(ROWS)]
    dataset = Dataset("rows", texts, labels, columns={"a: b": [row % 5 for row in range(ROWS)]}, path=path)
    model = AppModel(engine=EngineChoice(layer=-1))
    model.open(Source("rows.csv", path) if path is not None else Source("demo", demo_rows=ROWS))
    model.set_dataset(OpenedDataset("d", dataset))
    assert model.set_run(EmbeddedRun("r", "d", -1, ROWS, 384, ROWS, 0, 0, "input"))
    coords = np.random.default_rng(0).normal(size=(ROWS, 2)).astype(np.float32)
    assert model.show_map(ProjectedMap("m", "r", PARAMS, coords))
    clusters = np.array([row % 2 - (row == 0) for row in range(ROWS)], dtype=np.int32)  # row 0: noise
    names = {0: "even rows", 1: "odd rows"}
    assert model.set_scores(MapScores("m", clusters, names, 0.875, ((0.0, 0.0, "even rows"),)))
    assert model.set_faithfulness(Faithfulness("m", np.linspace(0, 1, ROWS, dtype=np.float32)))
    return model


def _on_a_thread(write: Callable[[], list[Path]]) -> list[Path]:
    """Run an export as a job would: on another thread, its error re-raised here."""
    outcome: list[list[Path] | BaseException] = []

    def run() -> None:
        try:
            outcome.append(write())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    [result] = outcome
    if isinstance(result, BaseException):
        raise result
    return result


def test_no_map_is_one_sentence() -> None:
    with pytest.raises(LoupeError) as raised:
        ExportSnapshot.take(AppModel(), IDENTITY, "title")
    assert str(raised.value) == "There is no map to export yet: open a dataset first."


def test_the_snapshot_keeps_what_was_shown_while_the_model_moves_on(tmp_path: Path) -> None:
    model = _model(None)
    kept = np.array([row for row in range(ROWS) if row % 5 == 1], dtype=np.intp)
    model.set_filter(RowFilter("a: b", "1", kept))
    model.select([3, 6])
    model.set_view(ViewOptions(colouring="cluster"))
    snapshot = ExportSnapshot.take(model, IDENTITY, "UMAP n_neighbors=7 (seed 5)")
    shown = snapshot.coords.copy()

    # The model changes on the GUI thread while the job writes: the snapshot does not.
    model.select([1])
    model.set_filter(None)
    model.set_view(ViewOptions(colouring="label"))
    assert model.run is not None
    model.show_map(ProjectedMap("m2", "r", ProjectionParams(method="pca"), np.zeros((ROWS, 2), np.float32)))
    assert model.scores is None

    figure, sidecar = _on_a_thread(lambda: export_map(snapshot, tmp_path / "map.svg"))
    unfiltered = _model(None)
    unfiltered.set_view(ViewOptions(colouring="cluster"))
    everything = ExportSnapshot.take(unfiltered, IDENTITY, snapshot.title)
    all_rows, _ = _on_a_thread(lambda: export_map(everything, tmp_path / "all.svg"))
    marks = [path.read_text(encoding="utf-8").count("<use ") for path in (all_rows, figure)]
    assert marks[0] - marks[1] >= ROWS - len(kept)  # the filtered-out points are not drawn
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert record["colouring"] == "cluster" and record["filter"] == "a: b: 1"
    assert record["selection"] == [3, 6] and record["trustworthiness"] == 0.875
    assert record["model"] == IDENTITY.model_identity and record["pooling"] == "mean"
    assert (record["method"], record["seed"], record["parameters"]["n_neighbors"]) == ("umap", 5, 7)
    assert record["dataset"]["rows"] == ROWS
    assert np.array_equal(snapshot.coords, shown)
    assert snapshot.categories()[:3] == ["noise", "odd rows", "even rows"]  # coloured by cluster


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_the_data_has_every_row_with_what_was_kept_and_selected(tmp_path: Path, suffix: str) -> None:
    model = _model(None)
    model.set_filter(RowFilter("a: b", "0", np.array([0, 5, 10, 15, 20, 25], dtype=np.intp)))
    model.select([2, 5])
    snapshot = ExportSnapshot.take(model, IDENTITY, "map")
    data, sidecar = _on_a_thread(lambda: export_data(snapshot, tmp_path / f"map{suffix}"))
    if suffix == ".parquet":
        table = pq.read_table(data).to_pydict()
    else:
        import csv

        with data.open(encoding="utf-8", newline="") as handle:
            lines = list(csv.DictReader(handle))
        table = {name: [line[name] for line in lines] for name in lines[0]}
        table["kept"] = [value == "True" for value in table["kept"]]
        table["selected"] = [value == "True" for value in table["selected"]]
    assert sum(table["kept"]) == 6 and table["kept"][5] and not table["kept"][1]
    assert [row for row, chosen in enumerate(table["selected"]) if chosen] == [2, 5]
    assert [str(name) for name in table["cluster_name"][:3]] == ["", "odd rows", "even rows"]
    assert len(table["faithfulness"]) == ROWS and "Küche" in str(table["text"][0])
    assert json.loads(sidecar.read_text(encoding="utf-8"))["filter"] == "a: b: 0"


def test_an_export_never_replaces_the_dataset_or_its_vectors(tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("text\nkept as it is\n", encoding="utf-8")
    vectors = tmp_path / "rows.npy"
    np.save(vectors, np.zeros((1, 2), np.float32))
    before = data.read_bytes(), vectors.read_bytes()
    snapshot = ExportSnapshot.take(_model(data), IDENTITY, "map")
    (tmp_path / "x").mkdir()
    for target, write in (
        (tmp_path / "x" / ".." / "rows.csv", export_data),
        (tmp_path / "rows.npy", export_map),
    ):
        with pytest.raises(LoupeError, match="is the input"):
            _on_a_thread(lambda target=target, write=write: write(snapshot, target))  # type: ignore[misc]
    assert (data.read_bytes(), vectors.read_bytes()) == before
