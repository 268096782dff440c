"""The embedding pipeline: tokenizing runs ahead on its own thread, batches are collected one
behind (a GPU) or run on two lanes (a CPU with two cores or more), and none of it changes a
single bit of the vectors.

Tests that take ``pipeline`` run twice: on lanes (this machine's 2 cores) and as one lane
(torch limited to one thread: the path a one-core CPU takes, and a GPU's, minus the device).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from engine.model import batching, inference
from engine.model.inference import _embed_batch, default_batch_size, embed_texts

TEXTS = [f"Sentence {i}: {'word ' * (i % 9)}and the end." for i in range(70)] + [
    "Ein kurzer deutscher Satz.",
    "一个中文句子。",
    "Une phrase française, un peu plus longue que les autres.",
]


@pytest.fixture(params=["lanes", "one lane"])
def pipeline(request: pytest.FixtureRequest) -> Iterator[str]:
    import torch

    before = torch.get_num_threads()
    if request.param == "one lane":
        torch.set_num_threads(1)
    else:
        assert torch.get_num_threads() >= 2, "the lanes need two cores"
    try:
        yield str(request.param)
    finally:
        torch.set_num_threads(before)


def test_tokenizing_runs_on_its_own_thread_and_the_vectors_are_unchanged(
    minilm: Any, monkeypatch: pytest.MonkeyPatch, pipeline: str
) -> None:
    import torch

    threads: list[tuple[str, str]] = []  # (tokenizing thread, thread the batch ran on)
    real_tokenize, real_launch = batching.tokenize, inference.launch
    tokenized_on: dict[int, str] = {}

    def recorded_tokenize(model: Any, texts: list[str]) -> Any:
        encoded = real_tokenize(model, texts)
        tokenized_on[id(encoded)] = threading.current_thread().name
        return encoded

    def recorded_launch(model: Any, encoded: Any, layer: int, all_layers: bool) -> Any:
        threads.append((tokenized_on[id(encoded)], threading.current_thread().name))
        return real_launch(model, encoded, layer, all_layers)

    # Each path's own reference to the tokenizer: the one-lane path's Tokenizing, the lanes'.
    monkeypatch.setattr(batching, "tokenize", recorded_tokenize)
    monkeypatch.setattr(inference, "tokenize", recorded_tokenize)
    monkeypatch.setattr(inference, "launch", recorded_launch)
    seen: list[list[int]] = []
    threads_before = torch.get_num_threads()
    result = embed_texts(minilm, TEXTS, batch_size=8, on_batch=lambda rows, vectors: seen.append(rows))
    assert threads and all(tokenizer.startswith("loupe-tokenize") for tokenizer, _ in threads)
    ran_on = {lane for _, lane in threads}
    if pipeline == "lanes":
        assert ran_on == {"loupe-lane-0", "loupe-lane-1"}
    else:
        assert ran_on == {threading.current_thread().name}
    assert torch.get_num_threads() == threads_before  # the lanes set their own threads' counts only
    # Every row reached on_batch exactly once, although each batch is collected one behind.
    assert sorted(row for rows in seen for row in rows) == list(range(len(TEXTS)))
    # The same bits as each batch computed alone on this thread, start to end.
    for rows in seen:
        batch = [TEXTS[i] for i in rows]
        alone, _ = _embed_batch(minilm, batch * 2 if len(batch) == 1 else batch, -1, False)
        np.testing.assert_array_equal(result.vectors[rows], alone[: len(rows)])


def test_a_batch_not_tokenized_ahead_is_tokenized_on_the_thread_and_stale_ones_are_dropped(
    minilm: Any,
) -> None:
    """After an out-of-memory error halves the batch, the batch asked for was not foreseen."""
    texts_for = {
        (0, 0, 4): ["a b", "c d", "e f", "g h"],
        (0, 0, 2): ["a b", "c d"],
        (0, 2, 4): ["e f", "g h"],
    }
    with batching.Tokenizing(minilm, lambda key: texts_for[key]) as tokenizing:
        tokenizing.ahead((0, 0, 4))
        smaller = tokenizing.take((0, 0, 2))
        assert smaller.tensors["input_ids"].shape[0] == 2
        assert (0, 0, 4) not in tokenizing._ahead, "a batch starting where this one did is never asked for"
        tokenizing.ahead((0, 2, 4))
        assert tokenizing.take((0, 2, 4)).tensors["input_ids"].shape[0] == 2
    assert not [t for t in threading.enumerate() if t.name.startswith("loupe-tokenize")]


def test_a_cancelled_run_stops_its_tokenizing_thread(minilm: Any, pipeline: str) -> None:
    from engine.errors import JobCancelled
    from engine.runtime.jobs import CancelToken

    token = CancelToken()
    batches: list[int] = []

    def cancel_after_first(rows: list[int], vectors: Any) -> None:
        batches.append(len(rows))
        token.cancel()

    with pytest.raises(JobCancelled):
        embed_texts(minilm, TEXTS, batch_size=4, token=token, on_batch=cancel_after_first)
    assert batches
    assert sum(batches) < len(TEXTS), "the run stopped before its end"
    assert not [t for t in threading.enumerate() if t.name.startswith(("loupe-tokenize", "loupe-lane"))]


def test_batch_sizes_are_chosen_per_device_and_precision() -> None:
    assert default_batch_size("cpu") == default_batch_size("cpu", "float32") == 32
    assert default_batch_size("cpu", "bfloat16") == batching_cpu_bf16()
    assert default_batch_size("cuda", "float16") == default_batch_size("cuda") == 512


def batching_cpu_bf16() -> int:
    from engine.model.inference import CPU_BATCH_SIZES

    return CPU_BATCH_SIZES["bfloat16"]


def test_the_gpu_path_collects_through_an_event(minilm: Any) -> None:
    """The GPU path's collecting logic, run on the CPU with a stand-in event: the host waits on
    the batch's own event only, and a doubled lone row gives back one row and half its count."""
    import torch

    class Event:
        waited = 0

        def synchronize(self) -> None:
            Event.waited += 1

    pooled = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    vectors, truncated = batching.collect(batching.Launched(pooled, Event(), 2), rows=1)
    assert Event.waited == 1 and truncated == 1
    np.testing.assert_array_equal(vectors, [[0.0, 1.0, 2.0]])
    vectors, truncated = batching.collect(batching.Launched(pooled, None, 2), rows=2)
    assert truncated == 2 and vectors.shape == (2, 3)


def test_bf16_pipeline_is_reproducible_run_to_run(minilm: Any, pipeline: str) -> None:
    low = replace(minilm, precision="bfloat16")
    first = embed_texts(low, TEXTS).vectors
    np.testing.assert_array_equal(embed_texts(low, TEXTS).vectors, first)
    np.testing.assert_array_equal(embed_texts(low, list(reversed(TEXTS))).vectors, first[::-1])
