"""CPU batches on two lanes at once: two threads, each running whole batches with half the cores.

One batch at a time with every core leaves cores idle: between two operators the interpreter
runs Python (transformers' forward, autocast's casts) while the other cores wait, and MiniLM's
matrices at Loupe's row counts are too small to split well. Two lanes, each a thread that runs
its batches with half the cores (torch's per-thread count), overlap one lane's Python with the
other's arithmetic. Measured on this project's 2-core machine, bf16, the 3,926 demo texts:
4.11 s against 5.17 s (medians of 4, interleaved), the vectors bit-identical (max difference 0.0).
Machines with more cores get two lanes of half the cores each (not measured there).

The tokenizer stays on one thread of its own (a fast tokenizer is not safe to call from two
threads at once), a few batches ahead of the lanes. Results arrive in the order the lanes finish
them; the caller stores and reports them on its own thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

K = TypeVar("K")
E = TypeVar("E")
R = TypeVar("R")

LANES = 2


def lane_plan(threads: int) -> tuple[int, int]:
    """``(lanes, threads per lane)`` for a process allowed ``threads`` intra-op threads."""
    if threads < LANES:
        return 1, threads
    return LANES, threads // LANES


class _Failed(Generic[K]):
    def __init__(self, key: K, error: BaseException) -> None:
        self.key = key
        self.error = error


def run_on_lanes(
    keys: list[K],
    *,
    lanes: int,
    prepare: Callable[[K], E],
    compute: Callable[[K, E], R],
    lane_context: Callable[[], contextlib.AbstractContextManager[Any]],
    threads_per_lane: int | None = None,
) -> Iterator[tuple[K, R]]:
    """``(key, compute(key, prepare(key)))`` for every key, as the lanes finish them.

    ``prepare`` (the tokenizer) runs on one thread of its own, in ``keys``' order, at most
    ``2 * lanes`` keys ahead of what has been delivered. ``compute`` runs on ``lanes`` threads,
    each inside ``lane_context()`` for its whole life (inference mode and autocast, whose cast
    weights then last the whole run), with ``threads_per_lane`` torch threads if given. The
    first error (a cancelled token, a bad batch) is raised here; leaving early (an error, or a
    consumer that stops) lets each lane finish the batch it is on, then ends the lanes.

    torch's thread count is OpenMP's, kept per thread, so a lane's setting changes that lane
    alone: never the caller, nor another embedding's lanes. Setting it also changes the count
    that threads started later begin with; the caller sets its own count again once every lane
    has set its, which restores that.
    """
    work: queue.Queue[tuple[K, Future[E]] | None] = queue.Queue()
    results: queue.Queue[tuple[K, R] | _Failed[K]] = queue.Queue()
    stop = threading.Event()
    lanes_set = threading.Barrier(lanes + 1)
    callers_threads = _torch_threads() if threads_per_lane is not None else None

    def lane() -> None:
        try:
            if threads_per_lane is not None:
                _set_torch_threads(threads_per_lane)
        finally:
            lanes_set.wait()
        with lane_context():
            while (item := work.get()) is not None:
                key, prepared = item
                if stop.is_set():
                    continue
                try:
                    results.put((key, compute(key, prepared.result())))
                except BaseException as error:  # handed to the caller's thread, raised there
                    results.put(_Failed(key, error))

    preparing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loupe-tokenize")
    threads = [threading.Thread(target=lane, name=f"loupe-lane-{n}", daemon=True) for n in range(lanes)]
    for thread in threads:
        thread.start()
    lanes_set.wait()
    if callers_threads is not None:
        _set_torch_threads(callers_threads)  # the count threads started from now on begin with
    waiting = deque(keys)
    submitted: list[Future[E]] = []
    in_flight = 0
    try:
        while waiting or in_flight:
            while waiting and in_flight < 2 * lanes:
                key = waiting.popleft()
                prepared = preparing.submit(prepare, key)
                submitted.append(prepared)
                work.put((key, prepared))
                in_flight += 1
            done = results.get()
            in_flight -= 1
            if isinstance(done, _Failed):
                raise done.error
            yield done
    finally:
        stop.set()
        for prepared in submitted:
            prepared.cancel()
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
        preparing.shutdown(wait=True)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _set_torch_threads(threads: int) -> None:
    import torch

    # A thread takes the process's count the first time it asks for it (ATen initialises its
    # OpenMP count lazily, once per thread): ask first, so that the setting below is not
    # replaced at this thread's first operator by whatever count the process has by then.
    torch.get_num_threads()
    torch.set_num_threads(threads)
