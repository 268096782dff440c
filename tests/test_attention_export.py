"""Attention figures: vector SVG/PDF, PNG of the asked size, provenance sidecars, plain errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from desktop.attention.figure_export import FigureExportDialog, FigureRequest
from desktop.attention.view import ALL_HEADS, ROLLOUT, TOKEN_LINES, AttentionView
from engine.errors import BadInputError, LoupeError
from engine.model.attention import rollout
from engine.model.attention_stats import attention_statistics
from engine.model.inference import AttentionMaps
from engine.user.attention_figures import (
    attention_matrix,
    save_attention_figure,
    save_attention_statistics_figure,
)
from engine.user.export import attention_provenance, write_sidecar

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "a",
    "cat",
    "naps",
    "$5",
    "by",
    "the",
    "warm",
    "old",
    "stove",
]


def maps_of(words: list[str] = WORDS, layers: int = 2, heads: int = 3, seed: int = 0) -> AttentionMaps:
    """[CLS] words [SEP] with softmax attention from random logits (a stand-in for a model's)."""
    tokens = ("[CLS]", *words, "[SEP]")
    size = len(tokens)
    logits = np.random.default_rng(seed).normal(size=(layers, heads, size, size)) * 2.0
    weights = np.exp(logits)
    attentions: npt.NDArray[np.float32] = (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)
    offsets, start = [(0, 0)], 0
    for word in words:
        offsets.append((start, start + len(word)))
        start += len(word) + 1
    offsets.append((0, 0))
    special = (True,) + (False,) * len(words) + (True,)
    return AttentionMaps(" ".join(words), tokens, tuple(offsets), special, attentions)


def test_matrix_follows_layer_head_and_special_tokens() -> None:
    maps = maps_of()
    matrix, tokens = attention_matrix(maps, layer=1, head=2)
    assert tokens == WORDS
    np.testing.assert_allclose(matrix, maps.attentions[1, 2, 1:-1, 1:-1])
    mean, _ = attention_matrix(maps, layer=0, head=None, hide_special=False)
    np.testing.assert_allclose(mean, maps.attentions[0].mean(axis=0), atol=1e-6)
    rolled, _ = attention_matrix(maps, layer=0, view="rollout")
    np.testing.assert_allclose(rolled, rollout(maps)[1:-1, 1:-1], atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": 2}, "Layer 2 is out of range"),
        ({"layer": 0, "head": 3}, "Head 3 is out of range"),
        ({"layer": 0, "view": "lines"}, "no attention figure called"),
    ],
)
def test_matrix_refuses_what_the_maps_do_not_have(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        attention_matrix(maps_of(), **kwargs)  # type: ignore[arg-type]


def test_svg_is_vector_with_a_cell_per_value_and_text_per_token(tmp_path: Path) -> None:
    path = save_attention_figure(tmp_path / "a.svg", maps_of(), layer=0, head=1)
    svg = path.read_text(encoding="utf-8")
    assert "<image" not in svg  # no embedded bitmap anywhere, colour bar included
    cells = len(WORDS) ** 2
    assert svg.count("<path") >= cells
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for word in set(WORDS):
        assert texts.count(word) >= 2 * WORDS.count(word), word  # both axes


def test_long_texts_label_every_kth_token_at_a_readable_size(tmp_path: Path) -> None:
    words = [f"w{i}" for i in range(200)]
    svg = save_attention_figure(tmp_path / "long.svg", maps_of(words), layer=0).read_text(encoding="utf-8")
    labels = re.findall(r"<text[^>]*>(w\d+)</text>", svg)
    sizes = {float(size) for size in re.findall(r"font-size:\s*([\d.]+)px", svg)}
    assert "w0" in labels and 2 * 20 < len(labels) < 2 * 200  # thinned, yet many labels
    assert min(sizes) >= 4.0


def test_pdf_is_vector_with_real_text(tmp_path: Path) -> None:
    path = save_attention_figure(tmp_path / "a.pdf", maps_of(), layer=1, view="rollout")
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    assert b"/Subtype /Image" not in data
    assert b"/FontFile2" in data  # TrueType text, not glyph outlines


@pytest.mark.parametrize(("width", "height", "dpi"), [(4.0, 3.0, 100), (7.0, 6.0, 200), (5.5, 5.5, 72)])
def test_png_has_the_asked_pixel_size(tmp_path: Path, width: float, height: float, dpi: int) -> None:
    path = save_attention_figure(tmp_path / "a.png", maps_of(), layer=0, width=width, height=height, dpi=dpi)
    with Image.open(path) as image:
        assert image.size == (round(width * dpi), round(height * dpi))


def test_statistics_figure_is_vector_and_annotated(tmp_path: Path) -> None:
    stats = attention_statistics([maps_of(seed=s) for s in range(3)])
    path = save_attention_statistics_figure(tmp_path / "s.svg", stats, "previous")
    svg = path.read_text(encoding="utf-8")
    assert "<image" not in svg
    assert svg.count("<path") >= 2 * 3
    values = re.findall(r"<text[^>]*>(\d\.\d\d)</text>", svg)
    assert len(values) >= 2 * 3
    assert f"{stats.previous[1, 2]:.2f}" in values
    png = save_attention_statistics_figure(tmp_path / "s.png", stats, "entropy", width=6, height=4, dpi=100)
    with Image.open(png) as image:
        assert image.size == (600, 400)


def test_sidecar_records_what_the_figure_shows(tmp_path: Path) -> None:
    base = {"dataset": {"fingerprint": "abc123", "rows": 10}, "model": "minilm@deadbeef", "method": "umap"}
    record = attention_provenance(base, view="heatmap", layer=1, head=None, row=4, hide_special=True)
    figure = save_attention_figure(tmp_path / "a.png", maps_of(), layer=1, provenance=record)
    sidecar = write_sidecar(figure, record)
    saved = json.loads(sidecar.read_text(encoding="utf-8"))
    assert sidecar.name == "a.png.json"
    assert saved["dataset"]["fingerprint"] == "abc123"
    assert saved["model"] == "minilm@deadbeef"
    assert (saved["layer"], saved["head"], saved["view"], saved["method"]) == (
        1,
        None,
        "heatmap",
        "attention heatmap",
    )
    assert {"numpy", "matplotlib"} <= set(saved["versions"])
    assert saved["row"] == 4 and "created" in saved
    with Image.open(figure) as image:
        assert "abc123" in image.info["Description"]


@pytest.mark.parametrize("name", ["a.jpg", "a"])
def test_a_bad_extension_is_one_plain_sentence(tmp_path: Path, name: str) -> None:
    with pytest.raises(LoupeError) as caught:
        save_attention_figure(tmp_path / name, maps_of(), layer=0)
    message = str(caught.value)
    assert message.startswith("Cannot write a figure as") and message.endswith(".") and "\n" not in message
    assert not list(tmp_path.iterdir())


def test_bad_size_or_resolution_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="inches"):
        save_attention_figure(tmp_path / "a.png", maps_of(), layer=0, width=0.1)
    with pytest.raises(BadInputError, match="dpi"):
        save_attention_statistics_figure(
            tmp_path / "a.png", attention_statistics([maps_of()]), "entropy", dpi=5
        )


# -- the attention view's export ----------------------------------------------------------------


@pytest.fixture
def view(qtbot: QtBot) -> AttentionView:
    widget = AttentionView()
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_maps(maps_of(), "row 3")
    return widget


BASE = {"dataset": {"fingerprint": "f00d"}, "model": "minilm@1"}


def test_view_exports_the_shown_heatmap_with_its_sidecar(view: AttentionView, tmp_path: Path) -> None:
    view.layer.setValue(1)
    view.head.setCurrentIndex(3)  # head 2
    figure, sidecar = view.export_figure(tmp_path / "h.svg", BASE)
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert (record["view"], record["layer"], record["head"]) == ("heatmap", 1, 2)
    assert record["dataset"]["fingerprint"] == "f00d" and record["text"] == " ".join(WORDS)
    shown, tokens = view.shown_matrix()
    exported, exported_tokens = attention_matrix(view.maps, layer=1, head=2)  # type: ignore[arg-type]
    np.testing.assert_array_equal(shown, exported)
    assert tokens == exported_tokens
    assert "Layer 1 · head 2" in figure.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("mode", "view_name"), [(ALL_HEADS, "heatmap"), (TOKEN_LINES, "heatmap"), (ROLLOUT, "rollout")]
)
def test_view_exports_heatmap_or_rollout_from_every_mode(
    view: AttentionView, tmp_path: Path, mode: str, view_name: str
) -> None:
    view.set_mode(mode)
    _, sidecar = view.export_figure(tmp_path / "m.png", None, width=4, height=4, dpi=50)
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert (record["view"], record["shown_mode"]) == (view_name, mode)
    assert record["layer"] is None if mode == ROLLOUT else record["layer"] == view.layer.value()
    with Image.open(tmp_path / "m.png") as image:
        assert image.size == (200, 200)
    assert "all-heads and token-lines modes this is the heatmap" in view.export_button.toolTip()


def test_export_button_asks_then_writes_with_the_windows_provenance(
    view: AttentionView, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = FigureRequest(tmp_path / "asked.pdf", 5.0, 4.0, 300)
    monkeypatch.setattr(FigureExportDialog, "ask", classmethod(lambda cls, *a, **k: request))
    view.provenance_source = lambda: BASE
    with qtbot.waitSignal(view.exported) as done:
        view.export_button.click()
    assert done.args == [[tmp_path / "asked.pdf", tmp_path / "asked.pdf.json"]]
    assert json.loads((tmp_path / "asked.pdf.json").read_text(encoding="utf-8"))["model"] == "minilm@1"


def test_export_failure_is_one_sentence_by_signal(
    view: AttentionView, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = FigureRequest(tmp_path / "asked.gif", 5.0, 4.0, 300)
    monkeypatch.setattr(FigureExportDialog, "ask", classmethod(lambda cls, *a, **k: request))
    with qtbot.waitSignal(view.export_failed) as failed:
        view.choose_export()
    assert failed.args[0].startswith("Cannot write a figure as .gif")


def test_export_before_any_row_is_refused(qtbot: QtBot, tmp_path: Path) -> None:
    empty = AttentionView()
    qtbot.addWidget(empty)
    assert not empty.export_button.isEnabled()
    with pytest.raises(LoupeError, match="click a point"):
        empty.export_figure(tmp_path / "a.svg", {})


def test_dialog_turns_resolution_off_for_vector_files(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = FigureExportDialog(None, "attention.svg", width=6.0, height=5.0)
    qtbot.addWidget(dialog)
    assert not dialog.dpi.isEnabled()
    dialog.path.setText(str(tmp_path / "a.png"))
    dialog.dpi.setValue(100)
    assert dialog.dpi.isEnabled() and dialog.pixels.text() == "600 x 500 pixels"
    assert dialog.request() == FigureRequest(tmp_path / "a.png", 6.0, 5.0, 100)


def test_view_dark_background_and_token_labels(view: AttentionView, qtbot: QtBot) -> None:
    view.set_mode(TOKEN_LINES)
    view.set_dark(True)
    qtbot.wait(20)
    image = view.lines_widget.grab().toImage()
    corner = image.pixelColor(5, 5)
    assert corner.lightness() < 60
    labels = [item for item in view.lines_plot.items if isinstance(item, pg.TextItem)]
    assert labels and all(item.color.lightness() > 180 for item in labels)
    view.set_dark(False)
    assert view.lines_widget.grab().toImage().pixelColor(5, 5).lightness() > 200
