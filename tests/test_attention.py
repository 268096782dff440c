"""Attention views (rollout, head average, special tokens, spans), exact attention against
transformers, token embeddings, exact truncation counts and the out-of-memory back-off."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.errors import BadInputError
from engine.model.attention import head_average, rollout, token_spans, without_special
from engine.model.inference import (
    AttentionMaps,
    _embed_batch,
    attention_for_text,
    embed_texts,
    halving_batches,
    token_embeddings,
)

TEXT = "Return the sum of an iterable of numbers, plus an optional start value."


def random_maps(layers: int = 4, heads: int = 3, tokens: int = 6, seed: int = 0) -> AttentionMaps:
    rng = np.random.default_rng(seed)
    raw = rng.random((layers, heads, tokens, tokens)).astype(np.float32)
    raw /= raw.sum(axis=-1, keepdims=True)
    special = (True,) + (False,) * (tokens - 2) + (True,)
    return AttentionMaps(
        text="x" * tokens,
        tokens=tuple(f"t{i}" for i in range(tokens)),
        offsets=tuple((0, 0) if s else (i, i + 1) for i, s in enumerate(special)),
        special=special,
        attentions=raw,
    )


def reference_rollout(maps: AttentionMaps, residual: bool, start_layer: int) -> np.ndarray:
    """Rollout written element by element, one explicit per-layer matrix at a time."""
    layers, heads, size, _ = maps.attentions.shape
    result = [[1.0 if i == j else 0.0 for j in range(size)] for i in range(size)]
    for layer in range(start_layer, layers):
        matrix = [[0.0] * size for _ in range(size)]
        for i in range(size):
            for j in range(size):
                value = sum(float(maps.attentions[layer, h, i, j]) for h in range(heads)) / heads
                matrix[i][j] = 0.5 * value + (0.5 if i == j else 0.0) if residual else value
            total = sum(matrix[i])
            matrix[i] = [v / total for v in matrix[i]]
        result = [
            [sum(matrix[i][k] * result[k][j] for k in range(size)) for j in range(size)] for i in range(size)
        ]
    return np.array(result)


@pytest.mark.parametrize(("residual", "start_layer"), [(True, 0), (False, 0), (True, 2)])
def test_rollout_matches_reference(residual: bool, start_layer: int) -> None:
    maps = random_maps()
    got = rollout(maps, residual=residual, start_layer=start_layer)
    assert got.shape == (6, 6)
    np.testing.assert_allclose(got, reference_rollout(maps, residual, start_layer), atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)


def test_rollout_of_identity_layers_is_identity() -> None:
    eye = np.broadcast_to(np.eye(5, dtype=np.float32), (3, 2, 5, 5)).copy()
    maps = AttentionMaps("abcde", tuple("abcde"), tuple((i, i + 1) for i in range(5)), (False,) * 5, eye)
    np.testing.assert_allclose(rollout(maps), np.eye(5), atol=1e-7)
    np.testing.assert_allclose(rollout(maps, residual=False), np.eye(5), atol=1e-7)


def test_rollout_rejects_a_layer_out_of_range() -> None:
    with pytest.raises(BadInputError):
        rollout(random_maps(layers=2), start_layer=2)


def test_head_average_and_without_special() -> None:
    maps = random_maps()
    np.testing.assert_allclose(head_average(maps), maps.attentions.mean(axis=1), atol=1e-7)
    inner = without_special(maps)
    assert inner.tokens == maps.tokens[1:-1] and not any(inner.special)
    # Raw values are kept, not renormalised.
    np.testing.assert_array_equal(inner.attentions, maps.attentions[:, :, 1:-1, 1:-1])
    assert token_spans(maps)[0] is None and token_spans(maps)[1] == (1, 2)


def test_attention_matches_transformers_eager(minilm: Any) -> None:
    import torch
    from transformers import AutoModel

    maps = attention_for_text(minilm, TEXT)
    reference = AutoModel.from_pretrained(str(minilm.spec.path), attn_implementation="eager").eval()
    encoded = minilm.tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        expected = torch.stack(reference(**encoded, output_attentions=True).attentions)[:, 0].numpy()
    assert maps.attentions.shape == expected.shape == (6, 12, len(maps.tokens), len(maps.tokens))
    np.testing.assert_allclose(maps.attentions, expected, atol=1e-5)
    assert maps.special[0] and maps.special[-1] and not any(maps.special[1:-1])
    assert maps.tokens[0] == "[CLS]" and maps.tokens[-1] == "[SEP]"
    spans = token_spans(maps)
    for token, span in zip(maps.tokens, spans, strict=True):
        if span is not None:
            assert TEXT[span[0] : span[1]].lower() == token.removeprefix("##").lower()
    np.testing.assert_allclose(rollout(maps).sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("layer", [-1, 3])
def test_token_embeddings_equal_hidden_states(minilm: Any, layer: int) -> None:
    import torch
    from transformers import AutoModel

    tokens, offsets, vectors = token_embeddings(minilm, TEXT, layer=layer)
    reference = AutoModel.from_pretrained(str(minilm.spec.path)).eval()
    encoded = minilm.tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        expected = reference(**encoded, output_hidden_states=True).hidden_states[layer][0].numpy()
    assert vectors.shape == (len(tokens), 384) == expected.shape
    assert len(offsets) == len(tokens)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_truncation_is_counted_exactly(minilm: Any) -> None:
    limit = minilm.spec.max_length
    exactly_full = "a " * (limit - 2)  # [CLS] + limit-2 tokens + [SEP]: fills the limit, not cut
    texts = ["short", exactly_full, "word " * 5000, "a " * (limit - 1)]
    result = embed_texts(minilm, texts, batch_size=4)
    assert result.truncated == 2


def test_out_of_memory_halves_the_batch(minilm: Any) -> None:
    import torch

    class FakeOutOfMemory(Exception):
        pass

    texts = [f"text number {i} " * (1 + i % 7) for i in range(70)]
    sizes: list[int] = []
    freed: list[bool] = []

    def compute(positions: range) -> Any:
        sizes.append(len(positions))
        if len(positions) > 16:
            raise FakeOutOfMemory
        with torch.inference_mode():
            return _embed_batch(minilm, [texts[p] for p in positions], -1, all_layers=False)[0]

    batches = list(
        halving_batches(
            len(texts), 32, compute, oom_errors=(FakeOutOfMemory,), on_oom=lambda: freed.append(True)
        )
    )
    assert sizes[:2] == [32, 16] and max(len(p) for p, _ in batches) == 16 and freed == [True]
    got = np.concatenate([vectors for _, vectors in batches])
    plain = list(halving_batches(len(texts), 16, compute))
    np.testing.assert_array_equal(got, np.concatenate([vectors for _, vectors in plain]))
    np.testing.assert_allclose(got, embed_texts(minilm, texts, batch_size=16).vectors, atol=1e-5)


def test_out_of_memory_at_size_one_propagates() -> None:
    def compute(positions: range) -> None:
        raise MemoryError

    with pytest.raises(MemoryError):
        list(halving_batches(3, 4, compute, oom_errors=(MemoryError,)))
