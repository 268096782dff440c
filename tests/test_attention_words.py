"""The words view of attention: word boundaries from offsets in every tokenizer style, the merge
(keys summed, queries averaged) against a hand computation, and rows that still sum to 1."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import BadInputError
from engine.model.attention import merge_words, rollout, word_groups, words_of
from engine.model.inference import AttentionMaps
from engine.user.attention_figures import attention_matrix, save_attention_figure

# "undo it" as [CLS] un ##do it [SEP]: one layer, one head, rows summing to 1.
UNDO_IT = np.array(
    [
        [0.5, 0.1, 0.1, 0.2, 0.1],
        [0.2, 0.3, 0.1, 0.3, 0.1],
        [0.1, 0.4, 0.2, 0.2, 0.1],
        [0.3, 0.1, 0.1, 0.4, 0.1],
        [0.6, 0.1, 0.1, 0.1, 0.1],
    ],
    dtype=np.float32,
)
# By hand: the key columns of "un" and "##do" added; the query rows of "un" and "##do"
# (after that) averaged: ([.2, .3+.1, .3, .1] + [.1, .4+.2, .2, .1]) / 2 = [.15, .5, .25, .1].
UNDO_IT_WORDS = np.array(
    [
        [0.5, 0.2, 0.2, 0.1],
        [0.15, 0.5, 0.25, 0.1],
        [0.3, 0.2, 0.4, 0.1],
        [0.6, 0.2, 0.1, 0.1],
    ]
)


def maps_with(
    text: str, pieces: list[tuple[str, tuple[int, int]]], attentions: npt.NDArray[np.float32] | None = None
) -> AttentionMaps:
    """[CLS] pieces [SEP] over ``text``; uniform attention unless given."""
    tokens = ("[CLS]", *(token for token, _ in pieces), "[SEP]")
    size = len(tokens)
    if attentions is None:
        attentions = np.full((1, 1, size, size), 1.0 / size, dtype=np.float32)
    offsets = ((0, 0), *(span for _, span in pieces), (0, 0))
    special = (True,) + (False,) * len(pieces) + (True,)
    return AttentionMaps(text, tokens, offsets, special, attentions)


def undo_it() -> AttentionMaps:
    return maps_with("undo it", [("un", (0, 2)), ("##do", (2, 4)), ("it", (5, 7))], UNDO_IT[None, None])


def test_words_match_the_hand_computation() -> None:
    maps = undo_it()
    assert word_groups(maps) == [[0], [1, 2], [3], [4]]
    words = words_of(maps)
    assert words.tokens == ("[CLS]", "undo", "it", "[SEP]")
    assert words.offsets == ((0, 0), (0, 4), (5, 7), (0, 0))
    assert words.special == (True, False, False, True)
    np.testing.assert_allclose(words.attentions[0, 0], UNDO_IT_WORDS, atol=1e-7)


def test_export_matrix_offers_words_with_and_without_special_tokens() -> None:
    matrix, labels = attention_matrix(undo_it(), layer=0, unit="words", hide_special=False)
    np.testing.assert_allclose(matrix, UNDO_IT_WORDS, atol=1e-7)
    assert labels == ["[CLS]", "undo", "it", "[SEP]"]
    matrix, labels = attention_matrix(undo_it(), layer=0, unit="words")
    np.testing.assert_allclose(matrix, UNDO_IT_WORDS[1:3, 1:3], atol=1e-7)
    assert labels == ["undo", "it"]
    with pytest.raises(BadInputError, match="tokens or words"):
        attention_matrix(undo_it(), layer=0, unit="letters")


def test_rollout_of_words_merges_the_token_rollout() -> None:
    """Rolled out over tokens first (the model's own units), then merged: rows still sum to 1."""
    maps = undo_it()
    matrix, _ = attention_matrix(maps, layer=0, view="rollout", unit="words", hide_special=False)
    np.testing.assert_allclose(matrix, merge_words(rollout(maps), word_groups(maps)), atol=1e-7)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)


def test_words_figure_is_labelled_with_words(tmp_path: Path) -> None:
    svg = save_attention_figure(tmp_path / "w.svg", undo_it(), layer=0, unit="words").read_text(
        encoding="utf-8"
    )
    assert "undo" in svg and "##do" not in svg and "key word" in svg and "query word" in svg


@pytest.mark.parametrize(
    ("style", "text", "pieces", "words"),
    [
        (
            "WordPiece ##",
            "Überprüfung der Pakete.",
            [
                ("uber", (0, 4)),
                ("##pr", (4, 6)),
                ("##ufung", (6, 11)),
                ("der", (12, 15)),
                ("pak", (16, 19)),
                ("##ete", (19, 22)),
                (".", (22, 23)),
            ],
            ["Überprüfung", "der", "Pakete", "."],
        ),
        (
            "sentencepiece ▁, offsets without the space",
            "Hello world",
            [("▁Hel", (0, 3)), ("lo", (3, 5)), ("▁wor", (6, 9)), ("ld", (9, 11))],
            ["Hello", "world"],
        ),
        (
            "sentencepiece, a lone ▁ of zero width",
            "a パ",
            [("▁a", (0, 1)), ("▁", (2, 2)), ("パ", (2, 3))],
            ["a", "パ"],
        ),
        (
            "byte-level Ġ, offsets with the space",
            "Hello world",
            [("Hel", (0, 3)), ("lo", (3, 5)), ("Ġwor", (5, 9)), ("ld", (9, 11))],
            ["Hello", "world"],
        ),
        (
            "byte-level, one character over two tokens",
            "ñu gnu",
            [("Ã", (0, 1)), ("±", (0, 1)), ("u", (1, 2)), ("Ġgnu", (2, 6))],
            ["ñu", "gnu"],
        ),
        (
            "Japanese: ideographs alone, kana runs by script",
            "このパッケージは経由",
            [
                ("こ", (0, 1)),
                ("##の", (1, 2)),
                ("##パ", (2, 3)),
                ("##ッケージ", (3, 7)),
                ("##は", (7, 8)),
                ("経", (8, 9)),
                ("由", (9, 10)),
            ],
            ["この", "パッケージ", "は", "経", "由"],
        ),
        (
            "punctuation is a word of its own",
            "Hund, Katze",
            [("hu", (0, 2)), ("##nd", (2, 4)), (",", (4, 5)), ("kat", (6, 9)), ("##ze", (9, 11))],
            ["Hund", ",", "Katze"],
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) > 20 else None,
)
def test_words_come_from_offsets_in_every_tokenizer_style(
    style: str, text: str, pieces: list[tuple[str, tuple[int, int]]], words: list[str]
) -> None:
    assert list(words_of(maps_with(text, pieces)).tokens) == ["[CLS]", *words, "[SEP]"], style


def test_offsets_outside_the_text_keep_each_token_alone() -> None:
    """Offsets a cache could carry but no tokenizer gives: no crash, no made-up word."""
    maps = maps_with("ab", [("a", (0, 1)), ("##b", (1, 9)), ("##c", (9, 10))])
    assert word_groups(maps) == [[0], [1], [2], [3], [4]]
    assert words_of(maps).tokens == ("[CLS]", "a", "##b", "##c", "[SEP]")


# -- properties ---------------------------------------------------------------------------------

LETTERS = "abcdefghxyzäöüßéçñкиряعربيةשלוםαβγ"
STYLES = ("wordpiece", "sentencepiece", "byte-level")


@st.composite
def tokenized(draw: st.DrawFn) -> tuple[AttentionMaps, list[str]]:
    """Words of letters cut into random pieces, with the offsets a tokenizer of some style gives."""
    words = draw(st.lists(st.text(LETTERS, min_size=1, max_size=8), min_size=1, max_size=8))
    style = draw(st.sampled_from(STYLES))
    text = " ".join(words)
    pieces: list[tuple[str, tuple[int, int]]] = []
    start = 0
    for word in words:
        cuts = sorted(
            draw(st.sets(st.integers(1, len(word) - 1), max_size=len(word) - 1)) if len(word) > 1 else set()
        )
        bounds = [0, *cuts, len(word)]
        for first, (a, b) in enumerate(pairwise(bounds)):
            span = (start + a, start + b)
            if style == "byte-level" and first == 0 and start > 0:
                span = (start + a - 1, start + b)  # "Ġ" pieces span their leading space
            prefix = {"wordpiece": "##" if first else "", "sentencepiece": "" if first else "▁"}.get(
                style, ""
            )
            pieces.append((prefix + word[a:b], span))
        start += len(word) + 1
    return maps_with(text, pieces), words


@given(tokenized())
def test_any_tokenizer_style_gives_back_the_words(case: tuple[AttentionMaps, list[str]]) -> None:
    maps, words = case
    merged = words_of(maps)
    assert list(merged.tokens) == ["[CLS]", *words, "[SEP]"]
    for label, (start, end) in zip(merged.tokens[1:-1], merged.offsets[1:-1], strict=True):
        assert maps.text[start:end] == label


@st.composite
def attention_and_groups(draw: st.DrawFn) -> tuple[npt.NDArray[np.float64], list[list[int]]]:
    """Row-stochastic attention [layers, heads, T, T] and a partition of T tokens into words."""
    tokens = draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(2, 2, tokens, tokens)) * draw(st.sampled_from([0.1, 1.0, 8.0]))
    weights = np.exp(logits)
    attention = weights / weights.sum(axis=-1, keepdims=True)
    cuts = sorted(draw(st.sets(st.integers(1, tokens - 1), max_size=tokens - 1)) if tokens > 1 else set())
    bounds = [0, *cuts, tokens]
    return attention, [list(range(a, b)) for a, b in pairwise(bounds)]


@given(attention_and_groups())
def test_words_rows_sum_to_one_where_token_rows_did(
    case: tuple[npt.NDArray[np.float64], list[list[int]]],
) -> None:
    attention, groups = case
    merged = merge_words(attention, groups)
    assert merged.shape == (2, 2, len(groups), len(groups))
    np.testing.assert_allclose(merged.sum(axis=-1), 1.0, atol=1e-5)
    assert (merged >= 0).all()
    # In general a word's row sums to the mean of its tokens' row sums (e.g. after dropping a column).
    dropped = attention[..., :-1]
    partial = merge_words(np.concatenate([dropped, np.zeros_like(attention[..., :1])], axis=-1), groups)
    expected = np.stack([dropped.sum(axis=-1)[..., members].mean(axis=-1) for members in groups], axis=-1)
    np.testing.assert_allclose(partial.sum(axis=-1), expected, atol=1e-5)


def test_merge_refuses_groups_that_do_not_cover_the_tokens() -> None:
    with pytest.raises(ValueError, match="every token exactly once"):
        merge_words(np.eye(3), [[0], [1]])
