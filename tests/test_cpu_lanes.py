"""CPU batches on two lanes (engine.model.cpu_lanes): the same bits as one lane, errors raised on
the caller's thread, no lane or tokenizer thread left behind, and torch's thread counts left as
they were, even when two embeddings overlap."""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from engine.model.cpu_lanes import lane_plan, run_on_lanes
from engine.model.inference import embed_texts
from tests.texts import MULTILINGUAL

# Real multilingual rows of many token lengths, a few of each (lone rows included).
TEXTS = MULTILINGUAL * 7 + [f"Row {i} of a long tail: {'naïve café ' * (i % 13)}" for i in range(40)]


def _threads_named(*prefixes: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


def test_each_lane_runs_with_half_the_cores(minilm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed comes from here: on 2 cores, each lane runs its operators on one thread."""
    import torch

    from engine.model import inference

    counts: set[tuple[str, int]] = set()
    real_launch = inference.launch

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts.add((threading.current_thread().name, torch.get_num_threads()))
        return real_launch(*args, **kwargs)

    monkeypatch.setattr(inference, "launch", counted)
    lanes, per_lane = lane_plan(torch.get_num_threads())
    embed_texts(minilm, TEXTS)
    assert counts == {(f"loupe-lane-{n}", per_lane) for n in range(lanes)}


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_lanes_give_the_same_bits_as_one_lane(minilm: Any, precision: str) -> None:
    import torch

    model = replace(minilm, precision=precision)
    assert lane_plan(torch.get_num_threads())[0] == 2, "this machine has two cores: lanes are on"
    on_lanes = embed_texts(model, TEXTS).vectors
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one_lane = embed_texts(model, TEXTS).vectors
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(on_lanes, one_lane)


def test_lane_plan() -> None:
    assert lane_plan(1) == (1, 1)
    assert lane_plan(2) == (2, 1)
    assert lane_plan(16) == (2, 8)


def test_an_error_on_a_lane_is_raised_on_the_callers_thread_and_the_lanes_end() -> None:
    def compute(key: int, prepared: int) -> int:
        if key == 5:
            raise ValueError("batch 5 is bad")
        time.sleep(0.01)
        return prepared * 10

    delivered: list[tuple[int, int]] = []

    def consume() -> None:
        plus_one = lambda key: key + 1  # noqa: E731
        delivered.extend(
            run_on_lanes(
                list(range(40)), lanes=2, prepare=plus_one, compute=compute, lane_context=nullcontext
            )
        )

    with pytest.raises(ValueError, match="batch 5 is bad"):
        consume()
    assert all(result == (key + 1) * 10 for key, result in delivered)
    assert len(delivered) < 40
    assert not _threads_named("loupe-lane", "loupe-tokenize")


def test_every_key_is_delivered_once_with_its_own_result() -> None:
    prepared_on: set[str] = set()

    def prepare(key: int) -> int:
        prepared_on.add(threading.current_thread().name)
        return key * 2

    keys = list(range(100))

    def both(key: int, prepared: int) -> tuple[int, int]:
        return key, prepared

    pairs = run_on_lanes(keys, lanes=2, prepare=prepare, compute=both, lane_context=nullcontext)
    results = dict(pairs)
    assert results == {key: (key, key * 2) for key in range(100)}
    assert len(prepared_on) == 1 and prepared_on.pop().startswith("loupe-tokenize")
    assert not _threads_named("loupe-lane", "loupe-tokenize")


def test_overlapping_embeddings_leave_every_threads_count_as_it_was(minilm: Any) -> None:
    """torch's thread count is per thread: lanes set their own, and leave the caller's, another
    embedding's and the count new threads start with as they were."""
    import torch

    before = torch.get_num_threads()
    other: list[Any] = []
    worker = threading.Thread(target=lambda: other.append(embed_texts(minilm, TEXTS).vectors))
    worker.start()
    started_during: list[int] = []

    def start_a_thread(rows: list[int], vectors: Any) -> None:  # on this thread, mid-run
        probe = threading.Thread(target=lambda: started_during.append(torch.get_num_threads()))
        probe.start()
        probe.join()

    mine = embed_texts(minilm, TEXTS, on_batch=start_a_thread).vectors
    worker.join(120)
    assert started_during and set(started_during) == {before}  # a thread started mid-run: all cores
    np.testing.assert_array_equal(other[0], mine)
    assert torch.get_num_threads() == before
    started_later: list[int] = []
    probe = threading.Thread(target=lambda: started_later.append(torch.get_num_threads()))
    probe.start()
    probe.join()
    assert started_later == [before]
