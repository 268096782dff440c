"""Inference: sentence embeddings (fast path) and attention maps (exact, eager path).

Embeddings follow sentence-transformers' recipe so that results match it: texts sorted by
length, batched, truncated to the model's limit, pooled over the attention mask and
L2-normalised when the model folder says so, all under ``torch.inference_mode()``, each batch
moved to the CPU as soon as it is done and the original order restored at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError, ModelError
from engine.model.batching import (
    Encoded,
    Launched,
    Tokenizing,
    collect,
    compute_context,
    launch,
    pick_layer,
    tokenize,
)
from engine.model.cpu_lanes import lane_plan, run_on_lanes
from engine.model.models import LoadedModel
from engine.runtime.jobs import CancelToken, Report, silent_report


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: npt.NDArray[np.float32]
    truncated: int


def default_batch_size(device: str, precision: str = "float32") -> int:
    """Rows per batch, measured fastest per device and precision on the demo texts (tests/bench)."""
    if device in {"cuda", "mps"}:
        return GPU_BATCH_SIZE
    return CPU_BATCH_SIZES.get(precision, CPU_BATCH_SIZES["float32"])


# CPU, 2 cores, token-length order: 32 and 64 rows were equal (9.3 s), 16 was 1.6x slower and
# 128/256 1.2x/1.6x slower. An H200 in fp16 (tests/bench/gpu_check.py, 20,000 texts): 64 rows
# 9,216 texts/s, 128 12,563, 256 15,619, 512 17,857, 1024 14,786. A CUDA out-of-memory error
# halves the batch, so a smaller card pays one retry, not a crash. CPU bf16 (AVX512-BF16, the
# first 2,000 demo texts in one-length batches, quiet machine, tests/bench/
# embed_vs_sentence_transformers.py): 792 texts/s at 32 rows, 794 at 64, 673 at 128, 680 at 256
# (padded batches, as issue 19 measured them, favoured 128: they waste less at that size).
CPU_BATCH_SIZES = {"float32": 32, "bfloat16": 64}
CPU_BATCH_SIZE = CPU_BATCH_SIZES["float32"]
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
    into ``texts``), so a caller can store it at once and lose at most two batches if the process
    dies. On CUDA, a batch that runs out of memory is retried at half the size (see
    :func:`halving_batches`). The model computes in ``model.precision`` (see
    engine.model.precision).

    The model is kept busy: the next batch is tokenized on a thread of its own (the fast
    tokenizer lets go of the interpreter) while the model runs the current one, and a batch's
    result is collected only after the next batch has been started, so on a GPU the host never
    waits for the device between batches (pinned memory, non-blocking copies, one event per
    batch instead of a synchronisation).

    On the CPU a row's vector depends on its text alone, not on which rows share its batch: a
    batch holds only rows of one token length, so nothing is padded (see :func:`batch_groups`).
    With two cores or more, CPU batches run on two lanes at once, each with half the cores
    (engine.model.cpu_lanes): one lane's Python overlaps the other's arithmetic.
    """
    import torch

    if not texts:
        return EmbeddingResult(np.zeros((0, 0), np.float32), 0)
    batch_size = batch_size or default_batch_size(model.device, model.precision)
    texts = [clip_text(model, text) for text in texts]
    lengths = token_lengths(model, texts, token=token, report=report)
    groups = batch_groups(lengths, model.device)
    out: list[npt.NDArray[np.float32]] = [np.empty(0, np.float32)] * len(texts)
    truncated = 0
    # Only CUDA reports running out of memory as an error worth retrying smaller.
    cuda = model.device == "cuda"
    oom_errors: tuple[type[BaseException], ...] = (torch.cuda.OutOfMemoryError,) if cuda else ()
    size = [batch_size]  # shrunk by an out-of-memory error, for every later group too

    def shrink() -> None:
        size[0] = max(1, size[0] // 2)
        torch.cuda.empty_cache()

    def batch_texts(key: tuple[int, int, int]) -> list[str]:
        group, start, stop = key
        batch = [texts[i] for i in groups[group][start:stop]]
        # A lone row goes beside a copy of itself on the CPU: see length_groups.
        return batch * 2 if len(batch) == 1 and model.device == "cpu" else batch

    def next_key(group: int, stop: int) -> tuple[int, int, int] | None:
        """The batch after the one ending at ``stop`` in ``group``, at the current size."""
        if stop >= len(groups[group]):
            group, stop = group + 1, 0
            if group >= len(groups):
                return None
        return group, stop, min(stop + size[0], len(groups[group]))

    done = 0
    pending: list[tuple[list[int], Launched]] = []  # started, not yet collected: at most one

    def finish_pending() -> None:
        nonlocal done, truncated
        indices, launched = pending.pop()
        vectors, batch_truncated = collect(launched, len(indices))
        truncated += batch_truncated
        for index, vector in zip(indices, vectors, strict=True):
            out[index] = vector
        if on_batch is not None:
            on_batch(indices, vectors)
        done += len(indices)
        report(done, len(texts), "Embedding")

    report(0, len(texts), "Embedding")
    lanes, threads_per_lane = lane_plan(torch.get_num_threads()) if model.device == "cpu" else (1, 0)
    if lanes > 1:  # the CPU: batches of a fixed size on lanes (engine.model.cpu_lanes)
        keys = [
            (group_index, start, min(start + batch_size, len(group)))
            for group_index, group in enumerate(groups)
            for start in range(0, len(group), batch_size)
        ]

        def compute_on_lane(key: tuple[int, int, int], encoded: Encoded) -> Launched:
            if token is not None:
                token.raise_if_cancelled()
            return launch(model, encoded, layer, all_layers)

        def lane_context() -> contextlib.ExitStack:
            stack = contextlib.ExitStack()
            stack.enter_context(torch.inference_mode())
            stack.enter_context(compute_context(model))
            return stack

        finished = run_on_lanes(
            keys,
            lanes=lanes,
            prepare=lambda key: tokenize(model, batch_texts(key)),
            compute=compute_on_lane,
            lane_context=lane_context,
            threads_per_lane=threads_per_lane,
        )
        for (group_index, start, stop), launched in finished:
            pending.append((groups[group_index][start:stop], launched))
            finish_pending()
        return EmbeddingResult(np.stack(out).astype(np.float32, copy=False), truncated)

    # One compute context for every batch: under autocast, each weight is cast to the low
    # precision once per call instead of once per batch (autocast keeps its casts until the
    # context ends); the vectors are the same bits either way.
    with (
        Tokenizing(model, lambda key: batch_texts(key)) as tokenizing,
        torch.inference_mode(),
        compute_context(model),
    ):
        for group_index, group in enumerate(groups):

            def compute(positions: range, group_index: int = group_index) -> Launched:
                if token is not None:
                    token.raise_if_cancelled()
                key = (group_index, positions.start, positions.stop)
                encoded = tokenizing.take(key)
                following = next_key(group_index, positions.stop)
                if following is not None:
                    tokenizing.ahead(following)  # tokenized while the model runs this batch
                return launch(model, encoded, layer, all_layers)

            batches = halving_batches(len(group), size[0], compute, oom_errors=oom_errors, on_oom=shrink)
            for positions, launched in batches:
                if pending:
                    finish_pending()
                pending.append(([group[p] for p in positions], launched))
        if pending:
            finish_pending()
    return EmbeddingResult(np.stack(out).astype(np.float32, copy=False), truncated)


def _embed_batch(
    model: LoadedModel, texts: list[str], layer: int, all_layers: bool
) -> tuple[npt.NDArray[np.float32], int]:
    """One batch, start to end, on the calling thread (in ``model.precision``)."""
    import torch

    with torch.inference_mode(), compute_context(model):
        launched = launch(model, tokenize(model, texts), layer, all_layers)
    return collect(launched, len(texts))


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
        hidden = pick_layer(output, layer) if want_hidden else output.last_hidden_state
        vectors = hidden[0].float().cpu().numpy()
    tokens = tuple(str(t) for t in model.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist()))
    return tokens, offsets, vectors.astype(np.float32, copy=False)


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
