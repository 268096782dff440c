"""Figures with CJK and Arabic labels or tokens: drawn with the installed fonts that have them,
and characters no installed font has are one logged line, never a Python warning (which the
suite treats as an error) per glyph and per draw."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine.model.inference import AttentionMaps
from engine.user import figures
from engine.user.attention_figures import save_attention_figure
from engine.user.figures import figure_fonts, save_map_figure

LABELS = ["日本語", "العربية", "Русский", "français", "emoji 🎉"]
NO_CJK = not any("CJK" in name or "Hei" in name for name in figure_fonts())


def _glyph_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "engine.user.figures" and "no glyph" in r.getMessage()
    ]


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_a_map_with_cjk_and_arabic_labels_warns_at_most_once_in_the_log(
    tmp_path: Path, suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    coords = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    labels = [LABELS[row % len(LABELS)] for row in range(50)]
    with caplog.at_level(logging.INFO, logger="engine.user.figures"):
        path = save_map_figure(tmp_path / f"map{suffix}", coords, labels, title="地図 · خريطة")
    assert path.stat().st_size > 0
    lines = _glyph_lines(caplog)
    assert len(lines) <= 1
    if NO_CJK:  # as on this machine: the line names the figure and a few of the characters
        assert lines and lines[0].startswith(f"map{suffix}: ") and "日" in lines[0]


def test_an_attention_figure_of_japanese_tokens_is_one_line_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = ["[CLS]", "東", "京", "の", "駅", "[SEP]"]
    weights = np.full((1, 1, 6, 6), 1 / 6, np.float32)
    maps = AttentionMaps(
        text="東京の駅",
        tokens=tuple(tokens),
        offsets=((0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (0, 0)),
        special=(True, False, False, False, False, True),
        attentions=weights,
    )
    with caplog.at_level(logging.INFO, logger="engine.user.figures"):
        save_attention_figure(tmp_path / "a.svg", maps, layer=0, title="東京の駅")
    assert len(_glyph_lines(caplog)) <= 1


def test_other_warnings_still_reach_the_caller(tmp_path: Path) -> None:
    """Only the glyph warnings are turned into the log line: a real problem still warns."""
    with pytest.warns(RuntimeWarning, match="a real problem"), figures.any_script(tmp_path / "x.png"):
        warnings.warn("a real problem", RuntimeWarning, stacklevel=1)


def test_only_installed_fallback_fonts_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib logs a warning for every listed family it cannot find: none is listed."""
    monkeypatch.setattr(figures, "FALLBACK_FONTS", ("No Such Font", "DejaVu Serif", "Noto Sans CJK JP"))
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    expected = [
        "DejaVu Sans",
        "DejaVu Serif",
        *(["Noto Sans CJK JP"] if "Noto Sans CJK JP" in installed else []),
    ]
    assert figure_fonts() == expected
