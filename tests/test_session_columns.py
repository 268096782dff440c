"""A session remembers the columns the user chose (``loupe open --text-column/--label-column``,
Dataset ▸ Columns…) and reopens the data with them; a session saved before they were recorded
(no columns in it) lets Loupe guess, as it did then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop.app import create_window
from desktop.window.main_window import MainWindow
from desktop.window.sessions import save_session_as
from engine.data.datasets import NO_LABEL
from engine.errors import BadInputError
from engine.maps.projection import ProjectionParams
from engine.process.proxy import EngineProcess
from engine.user.session import DatasetRef, Session, load_session, save_session, session_to_json
from tests.conftest import window_args
from tests.test_desktop_columns import _notes, _shown_method

WAIT_MS = 240_000


@pytest.mark.parametrize(("text", "label"), [("title", "section"), ("body", NO_LABEL), (None, "title")])
def test_chosen_columns_round_trip(tmp_path: Path, text: str | None, label: str | None) -> None:
    ref = DatasetRef(path="/data/notes.csv", fingerprint="f", text_column=text, label_column=label)
    saved = save_session(tmp_path / "s.loupe.json", Session(dataset=ref))
    assert load_session(saved).dataset == ref
    written = json.loads(saved.read_text(encoding="utf-8"))["dataset"]
    assert written.get("text_column") == text and written.get("label_column") == label


def test_a_session_without_columns_guesses_them(tmp_path: Path) -> None:
    """Sessions saved before the columns were recorded: both None, Loupe's guess."""
    data = session_to_json(Session(dataset=DatasetRef(path="/data/notes.csv", fingerprint="f")))
    assert set(data["dataset"]) == {"path", "fingerprint"}  # what older sessions hold
    path = tmp_path / "old.loupe.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    ref = load_session(path).dataset
    assert (ref.text_column, ref.label_column) == (None, None)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("text_column", "", "dataset.text_column should name a column."),
        ("text_column", 3, "dataset.text_column should be text, not 3."),
        ("label_column", ["a"], 'dataset.label_column should be text, not ["a"].'),
    ],
)
def test_bad_columns_are_one_sentence(tmp_path: Path, field: str, value: object, message: str) -> None:
    data = session_to_json(Session(dataset=DatasetRef(path="/data/notes.csv", fingerprint="f")))
    data["dataset"][field] = value
    path = tmp_path / "bad.loupe.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BadInputError) as raised:
        load_session(path)
    assert str(raised.value) == f"bad.loupe.json is not a usable session: {message}"


def test_a_reopened_session_reads_the_data_with_the_chosen_columns(
    qtbot: QtBot, window: MainWindow, reopened: list[MainWindow], tmp_path: Path
) -> None:
    path = _notes(tmp_path / "notes.csv")  # guessed: body as text, section as label
    failures: list[str] = []
    window.job_failed.connect(failures.append)
    window.model.set_params(ProjectionParams(method="pca"))  # quick; a real map all the same
    window.open_path(path, text_column="title", label_column=NO_LABEL)  # as `loupe open` passes them
    qtbot.waitUntil(lambda: bool(failures) or _shown_method(window) == "pca", timeout=WAIT_MS)
    assert not failures, failures
    opened = window.model.dataset
    assert opened is not None and opened.texts[3] == "Note 3"
    assert not opened.has_labels
    session = save_session_as(window.model, tmp_path / "notes.loupe.json")
    window.close()

    again = create_window(window_args(command=None))  # Loupe again, the engine in its child process
    reopened.append(again)
    assert isinstance(again.engine, EngineProcess)
    qtbot.addWidget(again)
    again.show()
    again.job_failed.connect(failures.append)
    again.open_session(session)
    # Restored, or "The file changed since…": read with other columns, it is other data.
    shown = again.statusBar().currentMessage
    qtbot.waitUntil(lambda: bool(failures) or shown().startswith(("Session", "The file")), timeout=WAIT_MS)
    assert not failures, failures
    assert shown() == "Session notes.loupe.json restored."
    dataset = again.model.dataset
    assert dataset is not None and dataset.text_column == "title" and dataset.texts[3] == "Note 3"
    assert not dataset.has_labels and "section" in dataset.columns
    source = again.model.source
    assert source is not None and (source.text_column, source.label_column) == ("title", NO_LABEL)
