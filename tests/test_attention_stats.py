"""Attention statistics of a group of rows: known values on hand-built maps, then the real model."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PySide6.QtCore import QPointF
from pytestqt.qtbot import QtBot

from desktop.attention.figure_export import FigureExportDialog, FigureRequest
from desktop.attention.stats_view import AttentionStatsView
from engine.cache.backends import MemoryBackend
from engine.cache.connect import open_cache
from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.errors import BadInputError, JobCancelled, LoupeError
from engine.model.attention_stats import (
    MAX_ROWS,
    AttentionStatistics,
    attention_statistics,
    group_sample,
    text_statistics,
)
from engine.model.inference import AttentionMaps, attention_for_text
from engine.runtime.jobs import CancelToken


def maps_from(weights: npt.NDArray[np.float64], special: tuple[bool, ...] | None = None) -> AttentionMaps:
    """Maps whose every layer and head is ``weights`` ([T, T]); 2 layers x 3 heads."""
    size = weights.shape[0]
    special = special or (False,) * size
    attentions = np.broadcast_to(weights, (2, 3, size, size)).astype(np.float32)
    return AttentionMaps(
        text="x" * size,
        tokens=tuple(f"t{i}" for i in range(size)),
        offsets=tuple((0, 0) if s else (i, i + 1) for i, s in enumerate(special)),
        special=special,
        attentions=attentions,
    )


def uniform(size: int) -> npt.NDArray[np.float64]:
    return np.full((size, size), 1.0 / size)


def on_previous(size: int) -> npt.NDArray[np.float64]:
    """Token i attends only to i-1; token 0 (no previous token) to itself."""
    weights = np.zeros((size, size))
    weights[0, 0] = 1.0
    weights[np.arange(1, size), np.arange(size - 1)] = 1.0
    return weights


def test_uniform_attention_has_normalised_entropy_one() -> None:
    for size in (2, 5, 40):
        entropy, special, previous = text_statistics(maps_from(uniform(size)))
        np.testing.assert_allclose(entropy, 1.0, atol=1e-6)
        np.testing.assert_allclose(previous, 1.0 / size, atol=1e-6)
        np.testing.assert_allclose(special, 0.0)
        assert entropy.shape == (2, 3)


def test_entropy_is_log_t_before_normalising() -> None:
    """Half the keys uniformly: H = log(T/2) nats, normalised log(T/2) / log(T)."""
    size = 8
    weights = np.zeros((size, size))
    weights[:, : size // 2] = 2.0 / size
    entropy, _, _ = text_statistics(maps_from(weights))
    np.testing.assert_allclose(entropy, math.log(size / 2) / math.log(size), atol=1e-6)


def test_attention_on_the_previous_token() -> None:
    entropy, _, previous = text_statistics(maps_from(on_previous(6)))
    np.testing.assert_allclose(previous, 1.0)
    np.testing.assert_allclose(entropy, 0.0, atol=1e-7)  # each row is one key


def test_attention_all_on_cls_is_all_special() -> None:
    size = 5
    weights = np.zeros((size, size))
    weights[:, 0] = 1.0
    special = (True,) + (False,) * (size - 2) + (True,)
    _, to_special, previous = text_statistics(maps_from(weights, special))
    np.testing.assert_allclose(to_special, 1.0)
    np.testing.assert_allclose(previous, 1.0 / (size - 1))  # only query 1's previous token is [CLS]


def test_causal_maps_normalise_by_the_visible_keys() -> None:
    """A decoder's query i sees i+1 keys: uniform over them is entropy 1, not log(i+1)/log(T)."""
    size = 6
    weights = np.tril(np.ones((size, size)))
    weights /= weights.sum(axis=1, keepdims=True)
    entropy, _, _ = text_statistics(maps_from(weights))
    np.testing.assert_allclose(entropy, 1.0, atol=1e-6)


def test_quantised_rows_are_renormalised() -> None:
    """Cached maps are 8-bit: rows summing to 1.004 give the same statistics as exact ones."""
    exact = text_statistics(maps_from(uniform(4)))
    scaled = text_statistics(maps_from(uniform(4) * 1.004))
    for a, b in zip(exact, scaled, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_texts_are_weighted_equally_whatever_their_length() -> None:
    """A 3-token text and a 30-token text count the same in the group mean."""
    stats = attention_statistics([maps_from(on_previous(3)), maps_from(uniform(30))])
    np.testing.assert_allclose(stats.previous, (1.0 + 1.0 / 30) / 2, atol=1e-6)
    np.testing.assert_allclose(stats.entropy, 0.5, atol=1e-6)
    assert stats.rows == stats.requested == 2 and not stats.sampled


def test_a_one_token_text_does_not_poison_the_group() -> None:
    stats = attention_statistics([maps_from(np.ones((1, 1))), maps_from(on_previous(4))])
    np.testing.assert_allclose(stats.previous, 1.0)
    assert np.isfinite(stats.entropy).all()


def test_names_values_and_describe() -> None:
    stats = attention_statistics([maps_from(uniform(4))], requested=900)
    assert stats.names() == ("entropy", "special", "previous")
    assert stats.values("special") is stats.special
    assert "sampled from 900" in stats.describe("entropy")
    with pytest.raises(BadInputError, match="no attention statistic"):
        stats.values("kurtosis")


def test_empty_group_and_mixed_shapes_are_refused() -> None:
    with pytest.raises(BadInputError):
        attention_statistics([])
    other = AttentionMaps(
        "ab", ("a", "b"), ((0, 1), (1, 2)), (False, False), np.full((1, 1, 2, 2), 0.5, np.float32)
    )
    with pytest.raises(BadInputError, match="different shapes"):
        attention_statistics([maps_from(uniform(3)), other])


def test_group_sample_is_capped_fixed_and_ordered() -> None:
    texts = [f"row {i}" for i in range(2000)] + ["  "]
    sample = group_sample(texts)
    assert len(sample) == MAX_ROWS
    assert sample == group_sample(texts)
    assert sample == sorted(sample, key=texts.index)
    assert group_sample(["a", " ", "b"]) == ["a", "b"]


# -- the real model ---------------------------------------------------------------------------

TEXTS = [
    "The cat sat on the mat.",
    "Attention mixes information between the tokens of a sentence, layer after layer.",
    "def add(a, b):\n    return a + b",
    "Short.",
]


def engine_with(model: Any, cache: Cache | None = None) -> Engine:
    engine = Engine(cache or Cache(MemoryBackend()), device="cpu")
    engine._loaded = model
    return engine


def test_real_model_statistics(minilm: Any) -> None:
    engine = engine_with(minilm)
    progress: list[tuple[int, int]] = []
    stats = engine.attention_statistics(
        TEXTS, report=lambda done, total, message="": progress.append((done, total))
    )
    assert isinstance(stats, AttentionStatistics)
    for name in stats.names():
        grid = stats.values(name)
        assert grid.shape == (6, 12)
        assert np.isfinite(grid).all()
        assert (grid >= 0).all() and (grid <= 1.0 + 1e-6).all()
    assert progress[0] == (0, 4) and progress[-1] == (4, 4)
    assert stats.rows == stats.requested == 4
    # BERT-like models park attention on [CLS]/[SEP] in the middle layers (Clark et al. 2019).
    assert stats.special.max() > 0.5
    # A cold run measures the exact maps of the eager path.
    exact = attention_statistics([attention_for_text(minilm, text) for text in TEXTS])
    for name in stats.names():
        np.testing.assert_allclose(stats.values(name), exact.values(name), atol=1e-5)


def test_cached_8_bit_maps_give_nearly_the_exact_statistics(minilm: Any) -> None:
    """The per-text cache stores attention in 8 bits; the statistics move by well under 0.02."""
    engine = engine_with(minilm)
    for text in TEXTS:
        engine.attention(text)  # fills the cache
    from_cache = attention_statistics([engine.attention(text) for text in TEXTS])
    exact = attention_statistics([attention_for_text(minilm, text) for text in TEXTS])
    for name in AttentionStatistics.names():
        np.testing.assert_allclose(from_cache.values(name), exact.values(name), atol=0.02)


def test_real_model_statistics_are_cached(minilm: Any) -> None:
    engine = engine_with(minilm)
    first = engine.attention_statistics(TEXTS[:3])
    writes = engine.cache.stats.set_calls
    hits = engine.cache.stats.hits
    again = engine.attention_statistics(TEXTS[:3])
    np.testing.assert_array_equal(first.previous, again.previous)
    assert engine.cache.stats.set_calls == writes  # nothing recomputed
    assert engine.cache.stats.hits == hits + 1  # one read: the finished statistics
    # A group sharing rows reuses their per-text maps: only the new text is computed.
    engine.attention_statistics(TEXTS)
    assert engine.cache.stats.hits >= hits + 1 + 3


def test_statistics_survive_in_the_embedded_server_for_a_new_engine(minilm: Any) -> None:
    """A second client (as after a restart) reads the finished grids back exactly."""
    first_cache = open_cache()
    try:
        first = engine_with(minilm, first_cache).attention_statistics(TEXTS)
    finally:
        first_cache.close()
    second_cache = open_cache()
    try:
        engine = engine_with(minilm, second_cache)
        again = engine.attention_statistics(TEXTS)
        assert second_cache.stats.hits == 1 and second_cache.stats.misses == 0
    finally:
        second_cache.close()
    assert (again.rows, again.requested) == (first.rows, first.requested)
    for name in AttentionStatistics.names():
        np.testing.assert_array_equal(again.values(name), first.values(name))


def test_real_model_statistics_cancel_between_texts(minilm: Any) -> None:
    engine = engine_with(minilm)
    token = CancelToken()
    seen: list[int] = []

    def report(done: int, total: int, message: str = "") -> None:
        seen.append(done)
        if done == 2:
            token.cancel()

    with pytest.raises(JobCancelled):
        engine.attention_statistics(TEXTS, token=token, report=report)
    assert max(seen) == 2
    # The two texts finished before the cancel are cached; the statistics are not.
    hits = engine.cache.stats.hits
    engine.attention_statistics(TEXTS[:2])
    assert engine.cache.stats.hits == hits + 2


def test_blank_group_is_refused(minilm: Any) -> None:
    with pytest.raises(BadInputError, match="no text"):
        engine_with(minilm).attention_statistics(["", "   "])


# -- the desktop view -----------------------------------------------------------------------------


@pytest.fixture
def stats_view(qtbot: QtBot) -> AttentionStatsView:
    widget = AttentionStatsView()
    qtbot.addWidget(widget)
    widget.resize(800, 500)
    widget.show()
    qtbot.waitExposed(widget)
    group = [maps_from(on_previous(5)), maps_from(uniform(7), (True,) + (False,) * 6)]
    widget.set_statistics(attention_statistics(group), "2 rows selected")
    return widget


def test_view_switches_the_statistic_shown(stats_view: AttentionStatsView) -> None:
    stats = stats_view.stats
    assert stats is not None and stats_view.current_statistic() == "entropy"
    assert stats_view.title.text() == "2 rows selected"
    for name in ("special", "previous", "entropy"):
        stats_view.set_statistic(name)
        np.testing.assert_array_equal(stats_view.shown_values(), stats.values(name))
        np.testing.assert_allclose(stats_view.image.image, stats.values(name))
        assert stats_view.description.text() == stats.describe(name)


def test_view_hover_shows_the_cells_value(stats_view: AttentionStatsView, qtbot: QtBot) -> None:
    stats_view.set_statistic("previous")
    qtbot.wait(20)
    box = stats_view.plot.getViewBox()
    scene = box.mapViewToScene(QPointF(2.5, 1.5))  # head 2, layer 1
    stats_view.plot_widget.scene().sigMouseMoved.emit(scene)
    expected = f"layer 1 · head 2 · to previous token: {stats_view.shown_values()[1, 2]:.3f}"
    assert stats_view.hovered == (1, 2)
    assert stats_view.value_label.text() == expected == stats_view.plot_widget.toolTip()
    stats_view.set_statistic("special")  # the hovered cell follows the statistic
    assert stats_view.value_label.text().startswith("layer 1 · head 2 · to special tokens:")
    stats_view.plot_widget.scene().sigMouseMoved.emit(box.mapViewToScene(QPointF(50.0, 50.0)))
    assert stats_view.hovered is None and stats_view.plot_widget.toolTip() == ""


def test_view_exports_the_shown_statistic(stats_view: AttentionStatsView, tmp_path: Path) -> None:
    stats_view.set_statistic("special")
    figure, sidecar = stats_view.export_figure(tmp_path / "grid.svg", {"model": "m"})
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert (record["statistic"], record["rows"], record["model"]) == ("special", 2, "m")
    assert "<image" not in figure.read_text(encoding="utf-8")


def test_view_export_button_reports_by_signal(
    stats_view: AttentionStatsView, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = FigureRequest(tmp_path / "g.png", 4.0, 3.0, 100)
    monkeypatch.setattr(FigureExportDialog, "ask", classmethod(lambda cls, *a, **k: request))
    stats_view.provenance_source = lambda: {"dataset": {"fingerprint": "abc"}}
    with qtbot.waitSignal(stats_view.exported) as done:
        stats_view.choose_export()
    assert done.args == [[tmp_path / "g.png", tmp_path / "g.png.json"]]


def test_view_without_statistics_is_inert(qtbot: QtBot, tmp_path: Path) -> None:
    empty = AttentionStatsView()
    qtbot.addWidget(empty)
    assert not empty.export_button.isEnabled() and not empty.statistic.isEnabled()
    with pytest.raises(LoupeError, match="select a group"):
        empty.export_figure(tmp_path / "a.svg")


def test_view_goes_dark(stats_view: AttentionStatsView, qtbot: QtBot) -> None:
    stats_view.set_dark(True)
    qtbot.wait(20)
    assert stats_view.plot_widget.grab().toImage().pixelColor(3, 3).lightness() < 60
    stats_view.set_dark(False)
    assert stats_view.plot_widget.grab().toImage().pixelColor(3, 3).lightness() > 200
