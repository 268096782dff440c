"""One row's attention under two models side by side (issue 16, item 3): the paired view and
its figure, on real attention from real models.

The base model is the real MiniLM (6 layers x 12 heads). The second models are real BERTs
built from a config in a temporary folder, so no test reaches the network: one reads MiniLM's
own tokenizer folder (the tokenizers agree), the other a WordPiece tokenizer trained here on
:data:`TEXTS` (same words, other pieces: they do not agree on tokens, only on words).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from desktop.attention.pair_view import WORDS, PairedAttentionView
from engine.errors import BadInputError, LoupeError
from engine.model.attention import words_of
from engine.model.inference import attention_for_text
from engine.user.attention_figures import attention_matrix
from engine.user.attention_pair_figure import (
    SPLIT_DIFFERENTLY,
    WORDS_AGREE_HINT,
    paired_attention,
    save_attention_pair_figure,
    side_layer,
)

ENGLISH = "The quick brown fox jumps over the lazy dog."
ACCENTED = "Überprüfung der Straße im Café, naïve Idee."
CJK = "東京は日本の首都です。"
ARABIC = "القاهرة هي عاصمة مصر."
TEXTS = [ENGLISH, ACCENTED, CJK, ARABIC]
TITLES = ("MiniLM", "tiny BERT")


def _load(folder: Path) -> Any:
    """A model folder loaded on the CPU; LOUPE_HOME points at a scratch folder meanwhile, as in
    the session's ``minilm`` fixture (a module fixture runs before the per-test home is set)."""
    from engine.model.models import load_model, resolve_model

    previous = os.environ.get("LOUPE_HOME")
    os.environ["LOUPE_HOME"] = tempfile.mkdtemp(prefix="lp", dir="/tmp")
    try:
        return load_model(resolve_model(str(folder)), device="cpu")
    finally:
        if previous is None:
            os.environ.pop("LOUPE_HOME", None)
        else:
            os.environ["LOUPE_HOME"] = previous


@pytest.fixture(scope="module")
def same_tokenizer(minilm: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A 2-layer, 2-head BERT built from a config, reading MiniLM's tokenizer files."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("same-tokenizer")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=minilm.tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm.spec.path / name, folder / name)
    yield _load(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def other_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A 3-layer, 4-head BERT with its own cased WordPiece vocabulary trained on :data:`TEXTS`."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("other-tokenizer")
    raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.normalizer = normalizers.BertNormalizer(lowercase=False)
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    raw.train_from_iterator(TEXTS, trainers.WordPieceTrainer(vocab_size=120, special_tokens=specials))
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", raw.token_to_id("[CLS]")), ("[SEP]", raw.token_to_id("[SEP]"))],
    )
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=raw,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    yield _load(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def view(qtbot: QtBot) -> PairedAttentionView:
    widget = PairedAttentionView()
    qtbot.addWidget(widget)
    widget.resize(1200, 520)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def colours(widget: Any) -> int:
    """How many distinct colours a sample of the widget's pixels has (1 means blank)."""
    image = widget.grab().toImage()
    return len(
        {
            image.pixel(x, y)
            for x in range(0, image.width(), max(image.width() // 60, 1))
            for y in range(0, image.height(), max(image.height() // 60, 1))
        }
    )


def svg_texts(path: Path) -> str:
    """Every ``<text>`` element's content in an SVG, joined (XML entities decoded)."""
    root = ElementTree.parse(path).getroot()
    return "\n".join("".join(node.itertext()) for node in root.iter("{http://www.w3.org/2000/svg}text"))


# -- the pairing ---------------------------------------------------------------------------------


def test_relative_depth_matches_first_to_first_and_last_to_last() -> None:
    assert [side_layer(picked, 6, 2) for picked in range(6)] == [0, 0, 0, 1, 1, 1]
    assert [side_layer(picked, 6, 3) for picked in range(6)] == [0, 0, 1, 1, 2, 2]
    assert [side_layer(picked, 6, 6) for picked in range(6)] == list(range(6))
    assert side_layer(0, 1, 1) == 0


def test_pair_refuses_a_layer_or_head_out_of_range(minilm: Any) -> None:
    maps = attention_for_text(minilm, ENGLISH)
    with pytest.raises(BadInputError, match="Layer 6 is out of range"):
        paired_attention(maps, maps, layer=6)
    with pytest.raises(BadInputError, match="Head 12 is out of range"):
        paired_attention(maps, maps, layer=0, head=12)
    with pytest.raises(BadInputError, match="tokens or words"):
        paired_attention(maps, maps, layer=0, unit="letters")


# -- the view --------------------------------------------------------------------------------------


def test_same_model_twice_shows_a_zero_difference(view: PairedAttentionView, minilm: Any) -> None:
    base, again = attention_for_text(minilm, ENGLISH), attention_for_text(minilm, ENGLISH)
    view.show_pair(3, base, again, ("MiniLM", "MiniLM"))
    assert view.difference_shown() and not view.difference_map.isHidden()
    assert view.pair is not None and view.pair.identical
    assert view.difference_map.matrix is not None
    assert not np.any(view.difference_map.matrix)
    assert "identical" in view.captions[2].text()
    # The note says why: attention does not depend on the layer or pooling compared.
    assert not view.note.isHidden() and "same attention" in view.note.text()
    # Drawn in the middle of the diverging scale, not as an error or an empty panel.
    assert view.difference_map.image.getLevels() is not None
    view.hover_at(2, 1.5, 0.5)
    assert "difference +0.0000" in view.readout.text()


def test_same_tokenizer_gives_a_nonzero_difference(
    view: PairedAttentionView, minilm: Any, same_tokenizer: Any
) -> None:
    base, against = attention_for_text(minilm, ENGLISH), attention_for_text(same_tokenizer, ENGLISH)
    assert base.tokens == against.tokens
    view.show_pair(0, base, against, TITLES)
    pair = view.pair
    assert pair is not None and pair.difference is not None and not pair.identical
    assert view.difference_shown() and not view.difference_map.isHidden()
    np.testing.assert_allclose(pair.difference, pair.against - pair.base)
    assert np.abs(pair.difference).max() > 0.01
    # Both sides on one colour scale: the larger of the two maxima.
    assert pair.scale == pytest.approx(max(pair.base.max(), pair.against.max()))
    assert view.base_map.image.getLevels() == pytest.approx((0.0, pair.scale))
    assert view.against_map.image.getLevels() == pytest.approx((0.0, pair.scale))
    low, high = view.difference_map.image.getLevels()
    assert low == pytest.approx(-high) and high == pytest.approx(np.abs(pair.difference).max())
    # The two sizes differ (6 x 12 against 2 x 2): the view says how they are matched.
    assert not view.note.isHidden() and "relative depth" in view.note.text()
    assert view.base_map.labels == view.against_map.labels == view.difference_map.labels


def test_different_tokenizers_say_so_and_show_two_grids(
    view: PairedAttentionView, qtbot: QtBot, minilm: Any, other_tokenizer: Any
) -> None:
    base, against = attention_for_text(minilm, ENGLISH), attention_for_text(other_tokenizer, ENGLISH)
    assert base.tokens != against.tokens
    view.show_pair(1, base, against, TITLES)
    assert not view.difference_shown()
    assert view.difference_map.isHidden() and view.captions[2].isHidden()
    assert view.note.text().startswith(SPLIT_DIFFERENTLY)
    qtbot.wait(30)
    assert view.base_map.width() > 450  # the two panels share the room the third would take
    assert view.base_map.labels == list(base.tokens[1:-1])
    assert view.against_map.labels == list(against.tokens[1:-1])
    view.hover_at(1, 2.5, 0.5)
    assert TITLES[1] in view.readout.text() and "difference" not in view.readout.text()
    # Their words agree (same text, other pieces): the words view has a difference.
    assert WORDS_AGREE_HINT.strip() in view.note.text()
    view.set_unit(WORDS)
    assert view.difference_shown() and not view.difference_map.isHidden()
    assert view.base_map.labels == [
        "The",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        ".",
    ]
    assert view.against_map.labels == view.base_map.labels


def test_pickers_move_both_sides(view: PairedAttentionView, minilm: Any, same_tokenizer: Any) -> None:
    base, against = attention_for_text(minilm, ACCENTED), attention_for_text(same_tokenizer, ACCENTED)
    view.show_pair(0, base, against, TITLES)
    assert view.layer.maximum() == 5 and view.head.count() == 13  # mean + MiniLM's 12 heads
    assert view.layer.value() == 5 and view.current_head() is None  # last layer, mean of heads
    for layer, head, base_side, against_side in [
        (0, 1, (0, 1), (0, 1)),
        (3, 1, (3, 1), (1, 1)),
        (4, 7, (4, 7), (1, 1)),  # the tiny model has 2 heads: its last
        (2, None, (2, None), (0, None)),
    ]:
        view.layer.setValue(layer)
        view.set_head(head)
        pair = view.pair
        assert pair is not None
        assert (pair.base_layer, pair.base_head) == base_side
        assert (pair.against_layer, pair.against_head) == against_side
        expected_base, _ = attention_matrix(base, layer=base_side[0], head=base_side[1])
        expected_against, _ = attention_matrix(against, layer=against_side[0], head=against_side[1])
        np.testing.assert_allclose(view.base_map.matrix, expected_base)
        np.testing.assert_allclose(view.against_map.matrix, expected_against)
        np.testing.assert_allclose(view.difference_map.matrix, expected_against - expected_base, atol=1e-6)
        shown_head = "mean of heads" if head is None else f"head {base_side[1]}"
        assert view.captions[0].text() == f"MiniLM · layer {base_side[0]} · {shown_head}"
        assert f"layer {against_side[0]}" in view.captions[1].text()
    view.hide_special.setChecked(False)
    assert view.base_map.labels == list(base.tokens)


def test_the_deeper_model_may_be_either_side(
    view: PairedAttentionView, minilm: Any, other_tokenizer: Any
) -> None:
    """A 3-layer base against the 6-layer MiniLM: the pickers span MiniLM's layers and heads."""
    base, against = attention_for_text(other_tokenizer, ACCENTED), attention_for_text(minilm, ACCENTED)
    view.show_pair(2, base, against, ("tiny BERT", "MiniLM"))
    assert view.layer.maximum() == 5 and view.head.count() == 13
    view.layer.setValue(5)
    view.set_head(11)
    pair = view.pair
    assert pair is not None
    assert (pair.base_layer, pair.base_head, pair.against_layer, pair.against_head) == (2, 3, 5, 11)
    view.layer.setValue(0)
    assert (view.pair.base_layer, view.pair.against_layer) == (0, 0)
    # A next row keeps the choice.
    view.show_pair(3, base, against, ("tiny BERT", "MiniLM"))
    assert view.layer.value() == 0 and view.current_head() == 11


def test_clear_empties_the_view_and_export_says_why(view: PairedAttentionView, minilm: Any) -> None:
    maps = attention_for_text(minilm, ENGLISH)
    view.show_pair(0, maps, maps, ("MiniLM", "MiniLM"))
    view.clear("The comparison was closed.")
    assert view.title.text() == "The comparison was closed."
    assert view.pair is None and view.base_map.matrix is None
    assert not view.export_button.isEnabled() and not view.layer.isEnabled()
    assert view.difference_map.isHidden()
    with pytest.raises(LoupeError, match="no attention pair to export"):
        view.export_figure(Path("/tmp/never.svg"))
    view.clear()
    assert "Click a row" in view.title.text()
    # The next row opens at the layer and head chosen before the clear.
    view.show_pair(1, maps, maps, ("MiniLM", "MiniLM"))
    view.layer.setValue(2)
    view.set_head(4)
    view.clear()
    view.show_pair(2, maps, maps, ("MiniLM", "MiniLM"))
    assert (view.layer.value(), view.current_head()) == (2, 4)
    assert view.export_button.isEnabled()


def test_the_view_renders_both_sides_and_the_difference(
    view: PairedAttentionView, qtbot: QtBot, minilm: Any, same_tokenizer: Any
) -> None:
    base, against = attention_for_text(minilm, ACCENTED), attention_for_text(same_tokenizer, ACCENTED)
    view.show_pair(0, base, against, TITLES)
    qtbot.wait(30)
    for heatmap in view.heatmaps:
        assert heatmap.width() > 150 and heatmap.height() > 150
        assert colours(heatmap) > 8
    assert colours(view) > 20
    view.set_dark(True)
    assert view.base_map.grab().toImage().pixelColor(3, 3).lightness() < 60


# -- the figure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_export_writes_the_pair_with_both_sides_provenance(
    view: PairedAttentionView, tmp_path: Path, minilm: Any, same_tokenizer: Any, suffix: str
) -> None:
    base, against = attention_for_text(minilm, ENGLISH), attention_for_text(same_tokenizer, ENGLISH)
    view.show_pair(7, base, against, TITLES)
    view.layer.setValue(4)
    window_record = {
        "dataset": {"fingerprint": "abc123"},
        "base": {"model": "all-MiniLM-L6-v2@abcdef", "pooling": "mean"},
        "against": {"model": "tiny-bert@012345", "pooling": "cls"},
    }
    figure, sidecar = view.export_figure(
        tmp_path / f"pair{suffix}", window_record, width=10.0, height=4.0, dpi=100
    )
    data = figure.read_bytes()
    record = json.loads(sidecar.read_text())
    assert record["view"] == "attention pair" and record["row"] == 7 and record["text"] == ENGLISH
    assert record["tokenizers_agree"] is True and record["difference"] == "against - base"
    assert record["base"] == {
        "model": "all-MiniLM-L6-v2@abcdef",
        "pooling": "mean",
        "title": "MiniLM",
        "attention_layer": 4,
        "attention_head": None,
        "model_layers": 6,
        "model_heads": 12,
        "tokens": len(base.tokens),
    }
    assert record["against"]["model"] == "tiny-bert@012345" and record["against"]["attention_layer"] == 1
    assert record["dataset"] == {"fingerprint": "abc123"}
    if suffix == ".png":
        image = Image.open(io.BytesIO(data))
        assert image.size == (1000, 400)
        description = image.info["Description"]
    elif suffix == ".svg":
        description = data.decode()
        texts = svg_texts(figure)
        assert "MiniLM" in texts and "tiny BERT" in texts and "difference (against − base)" in texts
        assert all(token in texts for token in ("quick", "lazy", "dog"))
        assert "<image" not in description  # nothing rasterised
    else:
        assert data.startswith(b"%PDF") and b"/FontFile2" in data  # TrueType: text stays text
        description = data.decode("latin-1")
    assert "all-MiniLM-L6-v2@abcdef" in description and "tiny-bert@012345" in description


@pytest.mark.parametrize("text", TEXTS, ids=["english", "accented", "cjk", "arabic"])
def test_svg_keeps_every_script_as_text(tmp_path: Path, minilm: Any, other_tokenizer: Any, text: str) -> None:
    """Each side's tokens are real text in the SVG, whatever the script; without a difference
    panel the figure carries the sentence that says why."""
    base, against = attention_for_text(minilm, text), attention_for_text(other_tokenizer, text)
    path = save_attention_pair_figure(
        tmp_path / "pair.svg", base, against, layer=5, titles=TITLES, provenance={}
    )
    texts = svg_texts(path)
    for token in (*base.tokens[1:-1], *against.tokens[1:-1]):
        assert token in texts
    if base.tokens != against.tokens:
        assert SPLIT_DIFFERENTLY in texts.replace("\n", " ")
    words = save_attention_pair_figure(
        tmp_path / "words.svg", base, against, layer=5, unit="words", titles=TITLES
    )
    word_texts = svg_texts(words)
    assert "difference (against − base)" in word_texts
    merged = words_of(base)
    shown_words = [word for word, special in zip(merged.tokens, merged.special, strict=True) if not special]
    assert shown_words and all(word in word_texts for word in shown_words)


def test_export_refuses_a_bad_file_or_size(view: PairedAttentionView, tmp_path: Path, minilm: Any) -> None:
    maps = attention_for_text(minilm, ENGLISH)
    view.show_pair(0, maps, maps, ("MiniLM", "MiniLM"))
    with pytest.raises(BadInputError, match=r"use \.png, \.svg or \.pdf"):
        view.export_figure(tmp_path / "pair.gif")
    with pytest.raises(BadInputError, match="1 to 50 inches"):
        view.export_figure(tmp_path / "pair.svg", width=0.5)
    assert not list(tmp_path.iterdir())


def test_export_runs_through_the_runner_and_reports(
    view: PairedAttentionView, tmp_path: Path, minilm: Any, qtbot: QtBot
) -> None:
    """The window runs exports as jobs: the view reads what to draw now and hands the writing over."""
    maps = attention_for_text(minilm, CJK)
    view.show_pair(0, maps, maps, ("MiniLM", "MiniLM"))
    handed: list[str] = []

    def runner(name: str, write: Any, done: Any, failed: Any) -> None:
        handed.append(name)
        done(write())

    view.export_runner = runner
    write = view.figure_writer(tmp_path / "pair.pdf", {}, width=9.0, height=4.0, dpi=100)
    view.layer.setValue(0)  # a change after reading does not change what is written
    with qtbot.waitSignal(view.exported) as signal:
        view.export_runner("attention pair", write, view.exported.emit, view.export_failed.emit)
    figure, sidecar = signal.args[0]
    assert handed == ["attention pair"]
    assert json.loads(sidecar.read_text())["base"]["attention_layer"] == 5
    assert figure.read_bytes().startswith(b"%PDF")


def test_identical_pair_figure_says_so(tmp_path: Path, minilm: Any) -> None:
    maps = attention_for_text(minilm, ARABIC)
    path = save_attention_pair_figure(tmp_path / "same.svg", maps, maps, layer=0, head=3, titles=("A", "A"))
    texts = svg_texts(path)
    assert "identical: 0 everywhere" in texts
    png = save_attention_pair_figure(tmp_path / "same.png", maps, maps, layer=0, titles=("A", "A"), dpi=60)
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # drawn, not blank


def test_zooming_one_panel_zooms_the_others(
    view: PairedAttentionView, qtbot: QtBot, minilm: Any, same_tokenizer: Any
) -> None:
    """A wheel turn over the base panel shows the same cells on all three; Reset zoom undoes it."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    base, against = attention_for_text(minilm, ACCENTED), attention_for_text(same_tokenizer, ACCENTED)
    view.show_pair(0, base, against, TITLES)
    qtbot.wait(30)
    whole = view.base_map.plot.getViewBox().viewRange()
    centre = view.base_map.plot.getViewBox().mapViewToScene(QPointF(3.0, 3.0))
    where = QPointF(view.base_map.mapFromScene(centre))
    wheel = QWheelEvent(
        where,
        QPointF(view.base_map.mapToGlobal(where.toPoint())),
        QPoint(0, 0),
        QPoint(0, 480),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.base_map.viewport(), wheel)
    qtbot.wait(30)
    zoomed = view.base_map.plot.getViewBox().viewRange()
    assert zoomed[0][1] - zoomed[0][0] < 0.8 * (whole[0][1] - whole[0][0])
    for heatmap in (view.against_map, view.difference_map):
        # The same cells; a pixel's difference in panel size shifts the aspect-locked range a little.
        np.testing.assert_allclose(heatmap.plot.getViewBox().viewRange(), zoomed, atol=0.05)
    view.zoom_to_all()
    for heatmap in view.heatmaps:
        y_range = heatmap.plot.getViewBox().viewRange()[1]
        assert y_range[0] <= 0.0 and y_range[1] >= len(heatmap.labels) - 1e-6


def test_narrow_panels_show_every_token_until_the_user_zooms(
    view: PairedAttentionView, minilm: Any, qtbot: QtBot
) -> None:
    # The window's attention pane is about 450 px wide: three panels of ~140 px each. With the
    # aspect locked, pyqtgraph used to keep the height and crop the columns after a resize.
    maps = attention_for_text(minilm, ENGLISH)
    view.resize(450, 420)
    view.show()
    view.show_pair(0, maps, maps, ("A", "B"))
    view.resize(430, 440)
    qtbot.wait(50)
    columns = view.base_map.matrix.shape[1] if view.base_map.matrix is not None else 0
    for heatmap in view.heatmaps:
        (x0, x1), _ = heatmap.plot.getViewBox().viewRange()
        assert x0 <= 0.01 and x1 >= columns - 0.01, (x0, x1, columns)
