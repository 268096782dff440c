"""Views of attention maps: head averages, attention rollout, special tokens, character spans.

Pure numpy: everything here works on :class:`~engine.model.inference.AttentionMaps` that the eager
path has already produced, so the desktop can recompute a view on a click without torch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError
from engine.model.inference import AttentionMaps


def head_average(maps: AttentionMaps) -> npt.NDArray[np.float32]:
    """The mean over heads of every layer: ``[layers, T, T]``."""
    averaged: npt.NDArray[np.float32] = maps.attentions.mean(axis=1, dtype=np.float64).astype(np.float32)
    return averaged


def rollout(maps: AttentionMaps, *, residual: bool = True, start_layer: int = 0) -> npt.NDArray[np.float32]:
    """Attention rollout (Abnar & Zuidema 2020) from ``start_layer`` to the last layer: ``[T, T]``.

    Each layer's heads are averaged; with ``residual`` the skip connection is modelled as
    ``0.5 * A + 0.5 * I``; rows are re-normalised to sum to 1, and the layers are multiplied
    in order, ``R = A'_L @ ... @ A'_start``, so row i says how much each input token flows
    into token i at the top. Computed in float64 so deep models do not drift from 1.
    """
    layers = maps.layers
    if not 0 <= start_layer < layers:
        raise BadInputError(f"start_layer {start_layer} is out of range: the layers are 0..{layers - 1}.")
    averaged = maps.attentions.astype(np.float64).mean(axis=1)
    tokens = averaged.shape[-1]
    result = np.eye(tokens)
    for layer in range(start_layer, layers):
        step = averaged[layer]
        if residual:
            step = 0.5 * step + 0.5 * np.eye(tokens)
        # A row of exact zeros (nothing attended) stays zero rather than dividing by zero.
        sums = step.sum(axis=-1, keepdims=True)
        step = np.divide(step, sums, out=np.zeros_like(step), where=sums > 0)
        result = step @ result
    return result.astype(np.float32)


def without_special(maps: AttentionMaps) -> AttentionMaps:
    """``maps`` with the special tokens' rows and columns dropped.

    The remaining values are kept as they were, not re-normalised: a row then sums to less
    than 1 by exactly the share that went to special tokens, which is the honest picture
    (BERT-like models park much of their attention on [CLS]/[SEP]). Callers that want rows
    summing to 1 can divide themselves.
    """
    keep = np.array([not s for s in maps.special], dtype=bool)
    index = np.flatnonzero(keep)
    return replace(
        maps,
        tokens=tuple(maps.tokens[i] for i in index),
        offsets=tuple(maps.offsets[i] for i in index),
        special=tuple(False for _ in index),
        attentions=np.ascontiguousarray(maps.attentions[:, :, index][:, :, :, index]),
    )


def token_spans(maps: AttentionMaps) -> list[tuple[int, int] | None]:
    """Each token's ``(start, end)`` character span in ``maps.text``; None for special tokens.

    ``maps.text[start:end]`` is the token's surface (for WordPiece without its ``##``), which
    is what highlighting the text under a token needs.
    """
    return [
        None if special or start == end else (start, end)
        for (start, end), special in zip(maps.offsets, maps.special, strict=True)
    ]


# -- words ------------------------------------------------------------------------------------
#
# A words view merges a word's subword tokens into one row and one column. Words are found
# from the character offsets alone, so WordPiece (``##``), sentencepiece (``▁``) and
# byte-level BPE (``Ġ``) tokenizers all work the same way: a token continues the word before
# it when its span starts where the previous token's ended (or inside it: byte-level BPE
# splits one character over several tokens) and no space lies between. Two refinements keep
# the units a reader's: punctuation and symbols are words of their own (as BERT's
# pre-tokenizer splits them), and in scripts written without spaces (Chinese and Japanese
# ideographs, Thai, Lao, Khmer, Myanmar) there is no space to find a word by, so each
# ideograph stays its own unit and kana join only within one script (a katakana loanword, a
# run of hiragana). Special tokens stay words of their own.

_SPACE, _PUNCTUATION, _LETTER, _HIRAGANA, _KATAKANA, _UNSPACED = range(6)
_JOINABLE = (_LETTER, _HIRAGANA, _KATAKANA)
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3400, 0x4DBF),  # CJK ideographs, extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3134F),  # CJK ideographs, extensions B to G
)


def _kind(character: str) -> int:
    """What a character is for finding word boundaries."""
    import unicodedata

    if character.isspace():
        return _SPACE
    code = ord(character)
    if 0x3040 <= code <= 0x309F:
        return _HIRAGANA
    if 0x30A0 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return _KATAKANA
    if any(low <= code <= high for low, high in _UNSPACED_RANGES):
        return _UNSPACED
    category = unicodedata.category(character)
    if category[0] in "PS":
        return _PUNCTUATION
    if category[0] == "Z" or category == "Cc":
        return _SPACE
    return _LETTER  # letters, digits and combining marks


def _continues(text: str, previous: tuple[int, int], current: tuple[int, int]) -> bool:
    """Whether the token spanning ``current`` belongs to the word of the one spanning ``previous``."""
    (previous_start, previous_end), (start, end) = previous, current
    if not (0 <= start <= end <= len(text) and 0 <= previous_start <= previous_end <= len(text)):
        return False  # offsets outside the text: nothing to judge by, keep the token alone
    if start < previous_end:
        return True  # one character split over several tokens (byte-level BPE)
    if start > previous_end or start == end:
        return False  # a gap between them, or a zero-width token (it marks the next word)
    first = _kind(text[start])
    if first == _SPACE:
        return False  # a leading space inside the token's span (byte-level "Ġ" without trimming)
    if previous_start == previous_end:
        return True  # after a zero-width marker (a lone sentencepiece "▁")
    return first in _JOINABLE and _kind(text[previous_end - 1]) == first


def word_groups(maps: AttentionMaps) -> list[list[int]]:
    """The token indices of each word, in order: a partition of ``range(len(maps.tokens))``.

    See the note above this function for how words are found from the offsets.
    """
    groups: list[list[int]] = []
    for i, (span, special) in enumerate(zip(maps.offsets, maps.special, strict=True)):
        joins = (
            bool(groups)
            and not special
            and not maps.special[i - 1]
            and _continues(maps.text, maps.offsets[i - 1], span)
        )
        if joins:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def merge_words(values: npt.NDArray[np.floating], groups: list[list[int]]) -> npt.NDArray[np.float32]:
    """Token x token attention (over the last two axes) as word x word attention.

    For a word made of several tokens the attention its key tokens receive is summed (a query
    attends to a word as much as to all its pieces together) and the rows of its query tokens
    are averaged (the word attends as its pieces do on average). A row that summed to 1 over
    the tokens therefore still sums to 1 over the words. Computed in float64.
    """
    tokens = values.shape[-1]
    assignment = np.zeros((tokens, len(groups)))
    for word, members in enumerate(groups):
        assignment[members, word] = 1.0
    if not np.array_equal(assignment.sum(axis=1), np.ones(tokens)):
        raise ValueError("the word groups must cover every token exactly once")
    averaging = assignment / assignment.sum(axis=0, keepdims=True)
    summed_keys = values.astype(np.float64) @ assignment
    merged: npt.NDArray[np.float32] = np.ascontiguousarray(
        np.swapaxes(averaging, 0, 1) @ summed_keys, dtype=np.float32
    )
    return merged


def words_of(maps: AttentionMaps) -> AttentionMaps:
    """``maps`` with words in place of tokens (:func:`word_groups`, :func:`merge_words`).

    Each word's label is its text as written (``"Überprüfung"``, not ``"uber ##pr ##uf ##ung"``)
    and its offsets span all its tokens; special tokens keep their label and flag.
    """
    groups = word_groups(maps)
    labels: list[str] = []
    offsets: list[tuple[int, int]] = []
    for members in groups:
        first, last = maps.offsets[members[0]], maps.offsets[members[-1]]
        start, end = first[0], max(maps.offsets[i][1] for i in members)
        surface = maps.text[start:end] if 0 <= start < end <= len(maps.text) else ""
        stripped = surface.strip()
        if maps.special[members[0]] or not stripped:
            labels.append("".join(maps.tokens[i] for i in members))
            offsets.append(first if maps.special[members[0]] else (start, max(start, last[1])))
            continue
        start += len(surface) - len(surface.lstrip())  # a leading space inside a "Ġ" token's span
        labels.append(stripped)
        offsets.append((start, start + len(stripped)))
    return replace(
        maps,
        tokens=tuple(labels),
        offsets=tuple(offsets),
        special=tuple(maps.special[members[0]] for members in groups),
        attentions=merge_words(maps.attentions, groups),
    )
