"""``loupe open PATH --text-column C --label-column C``: the columns reach the window, which
loads the dataset with them (offscreen, the engine in its child process as the app runs it)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop.window.export import export_data
from desktop.window.main_window import MainWindow
from engine.cli import main as cli
from engine.errors import LoupeError


def rows_csv(path: Path) -> Path:
    # Neither column is what Loupe would guess: "body" has the longest texts, and no column is
    # named like a label.
    topics = [("Taxes", "taxes", "money"), ("Cats", "cats", "pets")]
    lines = [
        f'"{title} {i}","Row {i} is a long text about {subject}.",{section}'
        for i, (title, subject, section) in ((i, topics[i % 2]) for i in range(12))
    ]
    path.write_text("title,body,section\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_open_takes_the_columns_and_hands_them_to_the_window(tmp_path: Path) -> None:
    path = rows_csv(tmp_path / "rows.csv")
    given: list[argparse.Namespace] = []

    def open_gui(args: argparse.Namespace) -> int:
        given.append(args)
        return 0

    argv = ["open", str(path), "--text-column", "title", "--label-column", "section", "--no-cache"]
    assert cli.main(argv, open_gui=open_gui) == 0
    [args] = given
    assert (args.path, args.text_column, args.label_column) == (path, "title", "section")
    assert cli.build_parser().parse_args(["open", str(path)]).text_column is None


def test_the_window_opens_a_dataset_with_the_columns_given(
    qtbot: QtBot,
    window: MainWindow,  # conftest's: the engine in its child process, as users run it
    tmp_path: Path,
) -> None:
    path = rows_csv(tmp_path / "rows.csv")
    before = path.read_bytes()
    window.open_path(path, text_column="title", label_column="section")
    model = window.model
    qtbot.waitUntil(lambda: model.shown is not None and window.identity is not None, timeout=180_000)
    dataset = model.dataset
    assert dataset is not None
    assert dataset.text_column == "title" and dataset.texts[0] == "Taxes 0"
    assert set(dataset.labels) == {"pets", "money"}
    # An export never replaces the dataset it maps, however the path is spelled.
    (tmp_path / "x").mkdir()
    with pytest.raises(LoupeError, match="is the input"):
        export_data(window.files.snapshot(), tmp_path / "x" / ".." / "rows.csv")
    assert path.read_bytes() == before
