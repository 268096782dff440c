"""Inference: sentence embeddings (fast path) and attention maps (exact, eager path).

Embeddings follow sentence-transformers' recipe so that results match it: texts sorted by
length, batched, truncated to the model's limit, pooled over the attention mask and
L2-normalised when the model folder says so, all under ``torch.inference_mode()``, each batch
moved to the CPU as soon as it is done and the original order restored at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError, ModelError
from engine.model.models import LoadedModel
from engine.runtime.jobs import CancelToken, Report, silent_report


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: npt.NDArray[np.float32]
    truncated: int


def default_batch_size(device: str) -> int:
    """Rows per batch, measured fastest per device on the demo texts (tests/bench)."""
    return GPU_BATCH_SIZE if device in {"cuda", "mps"} else CPU_BATCH_SIZE


# CPU, 2 cores, token-length order: 32 and 64 rows were equal (9.3 s), 16 was 1.6x slower and
# 128/256 1.2x/1.6x slower. An H200 in fp16 (tests/bench/gpu_check.py, 20,000 texts): 64 rows
# 9,216 texts/s, 128 12,563, 256 15,619, 512 17,857, 1024 14,786. A CUDA out-of-memory error
# halves the batch, so a smaller card pays one retry, not a crash.
CPU_BATCH_SIZE = 32
GPU_BATCH_SIZE = 512

T = TypeVar("T")


def halving_batches(
    count: int,
    batch_size: int,
    compute: Callable[[range], T],
    *,
    oom_errors: tuple[type[BaseException], ...] = (),
    on_oom: Callable[[], None] = lambda: None,
) -> Iterator[tuple[range, T]]:
    """Yield ``(positions, compute(positions))`` over ``range(count)`` in batches.

    When ``compute`` raises one of ``oom_errors`` the same positions are retried with half
    the batch size (``on_oom`` runs first, to free memory), and the smaller size is kept for
    the rest: the texts come longest first, so a size that failed once would likely fail
    again. At size 1 the error propagates. Kept free of torch so a test can inject a fake
    out-of-memory error on a CPU-only machine.
    """
    size = max(1, batch_size)
    start = 0
    while start < count:
        positions = range(start, min(start + size, count))
        try:
            result = compute(positions)
        except oom_errors:
            if size == 1:
                raise
            size = max(1, size // 2)
            on_oom()
            continue
        yield positions, result
        start = positions.stop


def embed_texts(
    model: LoadedModel,
    texts: Sequence[str],
    *,
    layer: int = -1,
    all_layers: bool = False,
    batch_size: int | None = None,
    token: CancelToken | None = None,
    report: Report = silent_report,
    on_batch: Callable[[list[int], npt.NDArray[np.float32]], None] | None = None,
) -> EmbeddingResult:
    """Embed ``texts`` in order; checks ``token`` and reports progress after each batch.

    ``vectors`` is ``[rows, width]`` for one ``layer`` (an index into the hidden states, -1 the
    last), or ``[rows, layers + 1, width]`` with ``all_layers``: every hidden state pooled from
    the same forward pass. ``on_batch(indices, vectors)`` receives each finished batch (indices
    into ``texts``), so a caller can store it at once and lose at most one batch if the process
    dies. On CUDA, a batch that runs out of memory is retried at half the size (see
    :func:`halving_batches`).

    On the CPU a row's vector depends on its text alone, not on which rows share its batch: a
    batch holds only rows of one token length, so nothing is padded (see :func:`batch_groups`).
    """
    import torch

    if not texts:
        return EmbeddingResult(np.zeros((0, 0), np.float32), 0)
    batch_size = batch_size or default_batch_size(model.device)
    texts = [clip_text(model, text) for text in texts]
    lengths = token_lengths(model, texts, token=token, report=report)
    out: list[npt.NDArray[np.float32]] = [np.empty(0, np.float32)] * len(texts)
    truncated = 0
    # Only CUDA reports running out of memory as an error worth retrying smaller.
    cuda = model.device == "cuda"
    oom_errors: tuple[type[BaseException], ...] = (torch.cuda.OutOfMemoryError,) if cuda else ()
    size = [batch_size]  # shrunk by an out-of-memory error, for every later group too

    def shrink() -> None:
        size[0] = max(1, size[0] // 2)
        torch.cuda.empty_cache()

    done = 0
    report(0, len(texts), "Embedding")
    with torch.inference_mode():
        for group in batch_groups(lengths, model.device):

            def compute(positions: range, group: list[int] = group) -> tuple[npt.NDArray[np.float32], int]:
                if token is not None:
                    token.raise_if_cancelled()
                batch = [texts[group[p]] for p in positions]
                if len(batch) > 1 or model.device != "cpu":
                    return _embed_batch(model, batch, layer, all_layers)
                # A lone row goes beside a copy of itself: see length_groups.
                pair, pair_truncated = _embed_batch(model, batch * 2, layer, all_layers)
                return pair[:1], pair_truncated // 2

            batches = halving_batches(len(group), size[0], compute, oom_errors=oom_errors, on_oom=shrink)
            for positions, (vectors, batch_truncated) in batches:
                indices = [group[p] for p in positions]
                truncated += batch_truncated
                for index, vector in zip(indices, vectors, strict=True):
                    out[index] = vector
                if on_batch is not None:
                    on_batch(indices, vectors)
                done += len(indices)
                report(done, len(texts), "Embedding")
    return EmbeddingResult(np.stack(out).astype(np.float32, copy=False), truncated)


# Texts are measured in chunks so that a million rows never hold a million token lists at once.
_LENGTH_CHUNK = 4096


def token_lengths(
    model: LoadedModel,
    texts: Sequence[str],
    *,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> npt.NDArray[np.int32]:
    """Each text's token count after truncation to the model's limit (special tokens included)."""
    lengths = np.empty(len(texts), np.int32)
    for start in range(0, len(texts), _LENGTH_CHUNK):
        if token is not None:
            token.raise_if_cancelled()
        if start:
            report(start, len(texts), "Measuring texts")
        chunk = [clip_text(model, text) for text in texts[start : start + _LENGTH_CHUNK]]
        encoded = model.tokenizer(
            chunk,
            truncation=True,
            max_length=model.spec.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
            return_length=True,
        )
        lengths[start : start + len(chunk)] = encoded["length"]
    return lengths


def token_length_order(
    model: LoadedModel,
    texts: Sequence[str],
    *,
    token: CancelToken | None = None,
    report: Report = silent_report,
) -> list[int]:
    """Indices of ``texts``, longest first by token count after truncation (ties keep their order).

    Sorting by characters, as sentence-transformers does, left 41 % of the demo's batch tokens as
    padding (characters per token vary between prose and code). The tokenizer runs twice (here
    for lengths, then per batch), which costs about 1 % of the time.
    """
    lengths = token_lengths(model, texts, token=token, report=report)
    return [int(i) for i in np.argsort(-lengths, kind="stable")]


def batch_groups(lengths: npt.NDArray[np.int32], device: str) -> list[list[int]]:
    """The groups of rows that batches are cut from, for ``device``.

    On the CPU, one group per token length (:func:`length_groups`): maps come out bit-identical
    whatever the cache held. On a GPU, where maps are not promised bit-identical anyway and
    throughput falls steeply below full batches (README: 9.2k texts/s at 64 rows against 17.9k
    at 512 on an H200), one group of every row, longest first: padded batches of full size.
    """
    groups = length_groups(lengths)
    return groups if device == "cpu" else [[row for group in groups for row in group]]


def length_groups(lengths: npt.NDArray[np.int32]) -> list[list[int]]:
    """Indices grouped by token length, longest group first, each group in its rows' order.

    Batching within a group pads nothing, and that is what makes a row's vector independent of
    its batch: padded to a longer batch, a row's vector moved by up to 1.6e-7 (the sums run over
    more positions), while in batches of 2 to 32 rows of its own length, at any position, it came
    out bit-identical (MiniLM, CPU, 624 cases over lengths 3 to 256). A batch of one row differed
    from that for some lengths (9 to 11 tokens: the matrix library takes another path for such
    small products), so a lone row is computed beside a copy of itself. Before, a row cached by
    one run and computed by another differed in the last bits, and UMAP made another map of it.
    Grouping also saves the padding: 1.07x the texts per second of padded batches of 32 on 2,000
    real multilingual rows (tests/bench/reproducibility.py).
    """
    order = np.argsort(-lengths, kind="stable")
    ordered = lengths[order]
    starts = np.flatnonzero(np.diff(ordered)) + 1
    return [[int(i) for i in part] for part in np.split(order, starts)]


# Characters per token allowed for before cutting a text: WordPiece and BPE tokens average
# 3-5 characters in the languages measured (1 in Chinese and Japanese), so 64 leaves room for
# the rare long token while the cut text stays small enough to tokenize at once.
CHARS_PER_TOKEN = 64


def clip_text(model: LoadedModel, text: str) -> str:
    """``text``, cut to a prefix that tokenizes (with truncation) to the same tokens as all of it.

    The tokenizer normalises and splits the whole of a text before it truncates: a 20 MB text
    took 65 s and 4.9 GB to yield 256 tokens. A cut can only change the word it falls in, so a
    prefix is safe when the tokens kept end at most halfway through it and more tokens follow.
    A prefix of ``max_length * CHARS_PER_TOKEN`` characters is tried first and doubled, up to the
    whole text, until that holds (a text of a few very long words takes a few doublings).
    """
    limit = model.spec.max_length
    # The kept content tokens: the limit less the special tokens the model adds.
    kept = limit - model.tokenizer.num_special_tokens_to_add(pair=False)
    cut = limit * CHARS_PER_TOKEN
    while cut < len(text):
        prefix = text[:cut]
        encoded = model.tokenizer(
            prefix,
            add_special_tokens=False,
            truncation=True,
            max_length=kept + 1,  # one more than kept says whether more follow
            return_attention_mask=False,
            return_token_type_ids=False,
            return_offsets_mapping=True,
        )
        offsets = encoded["offset_mapping"]
        if len(offsets) > kept and offsets[kept - 1][1] <= cut // 2:
            return prefix
        cut *= 2
    return text


def _embed_batch(
    model: LoadedModel, texts: list[str], layer: int, all_layers: bool
) -> tuple[npt.NDArray[np.float32], int]:
    import torch

    spec = model.spec
    encoded = model.tokenizer(
        texts, padding=True, truncation=True, max_length=spec.max_length, return_tensors="pt"
    )
    truncated = _count_truncated(encoded, spec.max_length)
    encoded = encoded.to(model.device)
    want_hidden = all_layers or layer != -1
    output = model.embedding_model()(**encoded, output_hidden_states=want_hidden)
    mask = encoded["attention_mask"]
    if all_layers:
        pooled = torch.stack([_pool(hidden, mask, spec.pooling) for hidden in output.hidden_states], dim=1)
    else:
        hidden = _pick_layer(output, layer) if want_hidden else output.last_hidden_state
        pooled = _pool(hidden, mask, spec.pooling)
    if spec.normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
    return pooled.float().cpu().numpy(), truncated


def _count_truncated(encoded: Any, max_length: int) -> int:
    """How many rows lost tokens to truncation, exactly.

    A fast (Rust) tokenizer keeps what it cut off in each encoding's ``overflowing`` list at
    no extra cost, which tells a cut row from one exactly ``max_length`` tokens long. A slow
    tokenizer has no encodings; there, a row that filled the limit is counted (the rare row of
    exactly ``max_length`` tokens is over-counted).
    """
    encodings = getattr(encoded, "encodings", None)
    if encodings:
        return sum(1 for encoding in encodings if encoding.overflowing)
    return int((encoded["attention_mask"].sum(dim=1) >= max_length).sum())


def token_embeddings(
    model: LoadedModel, text: str, layer: int = -1
) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...], npt.NDArray[np.float32]]:
    """Per-token hidden states of one text: ``(tokens, offsets, vectors [T, hidden])``.

    ``layer`` -1 is the last layer; other values index ``hidden_states`` (0 = embeddings).
    Uses the fast SDPA model; offsets are character spans, (0, 0) for special tokens.
    """
    import torch

    encoded, offsets, _ = _encode_one(model, text)
    want_hidden = layer != -1
    with torch.inference_mode():
        output = model.embedding_model()(**encoded.to(model.device), output_hidden_states=want_hidden)
        hidden = _pick_layer(output, layer) if want_hidden else output.last_hidden_state
        vectors = hidden[0].float().cpu().numpy()
    tokens = tuple(str(t) for t in model.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist()))
    return tokens, offsets, vectors.astype(np.float32, copy=False)


def _pick_layer(output: Any, layer: int) -> Any:
    states = output.hidden_states
    if not -len(states) <= layer < len(states):
        raise BadInputError(f"Layer {layer} is out of range: this model has layers 0..{len(states) - 1}.")
    return states[layer]


def _pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """Pool token states over the mask; batches are right-padded (load_model sets that)."""
    import torch

    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    if pooling == "mean":
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    raise ModelError(f"Unknown pooling {pooling!r}: use mean, cls, last or max.")


@dataclass(frozen=True)
class AttentionMaps:
    """Attention for one text: ``attentions[layer, head, query, key]`` over ``tokens``.

    ``offsets[i]`` is the (start, end) character span of token i in ``text``; special tokens
    have (0, 0) and ``special[i]`` True.
    """

    text: str
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    special: tuple[bool, ...]
    attentions: npt.NDArray[np.float32]

    @property
    def layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def heads(self) -> int:
        return int(self.attentions.shape[1])


def _encode_one(model: LoadedModel, text: str) -> tuple[Any, tuple[tuple[int, int], ...], tuple[bool, ...]]:
    """One text tokenised for the per-row views: model inputs, character offsets, special flags."""
    if not text.strip():
        raise BadInputError("The text is empty.")
    encoded = model.tokenizer(
        clip_text(model, text),  # offsets index the prefix, hence the whole text too
        truncation=True,
        max_length=model.spec.max_length,
        return_tensors="pt",
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    offsets = tuple((int(a), int(b)) for a, b in encoded.pop("offset_mapping")[0].tolist())
    special = tuple(bool(s) for s in encoded.pop("special_tokens_mask")[0].tolist())
    return encoded, offsets, special


def attention_for_text(model: LoadedModel, text: str) -> AttentionMaps:
    """Every layer's and head's attention for ``text``, from the eager attention path."""
    import torch

    encoded, offsets, special = _encode_one(model, text)
    eager = model.attention_model()
    with torch.inference_mode():
        output = eager(**encoded.to(model.device), output_attentions=True)
    if not output.attentions or output.attentions[0] is None:
        raise ModelError(f"{model.spec.name} returned no attention weights.")
    maps = torch.stack([a[0] for a in output.attentions]).float().cpu().numpy()
    tokens = model.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist())
    return AttentionMaps(
        text=text,
        tokens=tuple(str(t) for t in tokens),
        offsets=tuple(offsets),
        special=tuple(special),
        attentions=maps.astype(np.float32, copy=False),
    )
