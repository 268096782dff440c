"""How long a click's attention map takes while a long embedding job runs, vs. when idle.

DESIGN.md asks for "well under a second even while a long embedding or projection job runs".
Runs the real model on the real lanes (no cache, so every request computes), prints the median
and worst latency of attention requests made while idle and while the model lane embeds.
``--engine-process`` makes the clicks as the window does: ``attend_row`` on the engine's child
process while it embeds the demo there.

    .venv/bin/python tests/bench/click_latency_during_job.py [--engine-process]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import os

os.environ.setdefault("LOUPE_HOME", tempfile.mkdtemp(prefix="lb", dir="/tmp"))

from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.data.demo_data import build_stdlib_dataset
from engine.runtime.jobs import JobRunner


def click_latencies(engine: Engine, runner: JobRunner, texts: list[str]) -> list[float]:
    latencies = []
    for text in texts:
        start = time.perf_counter()
        runner.submit(
            "interactive", "click", lambda token, report, t=text: engine.attention(t)
        ).future.result()
        latencies.append(time.perf_counter() - start)
    return latencies


def main() -> None:
    dataset = build_stdlib_dataset()
    engine = Engine(Cache(None), device="cpu")
    engine.loaded_model().attention_model()  # both copies loaded before timing
    engine.loaded_model().embedding_model()
    runner = JobRunner()
    clicks = list(dataset.texts[:: len(dataset) // 20])[:20]
    try:
        idle = click_latencies(engine, runner, clicks)
        started = threading.Event()

        def embed(*, token, report):  # type: ignore[no-untyped-def]
            started.set()
            return engine.embeddings(dataset.texts, token=token, report=report)

        job = runner.submit("model", "embed", embed)
        started.wait()
        time.sleep(1.0)
        busy = click_latencies(engine, runner, clicks)
        still_running = not job.future.done()
        job.cancel()
    finally:
        runner.shutdown()
    for name, values in (("idle", idle), ("during embedding", busy)):
        print(
            f"{name:>17}: median {statistics.median(values) * 1000:.0f} ms, worst {max(values) * 1000:.0f} ms"
        )
    print(f"embedding job still running during every click: {still_running}")


def through_engine_process() -> None:
    """The same clicks as the window makes them: ``attend_row`` on the engine process (ids, not
    texts), while the model lane embeds the demo there; no cache, so every click computes."""
    from engine.api.types import AttendRow, Embed, OpenDataset, Preload
    from engine.process.proxy import start_engine

    api = start_engine(Cache(None), device="cpu", no_cache=True)
    runner = JobRunner()
    try:
        opened = api.open_dataset(OpenDataset(demo_rows=4000))
        api.preload(Preload())
        rows = list(range(0, len(opened.dataset), len(opened.dataset) // 20))[:20]

        def timed_clicks() -> list[float]:
            latencies = []
            for row in rows:
                start = time.perf_counter()
                request = AttendRow(opened.dataset_id, row)
                runner.submit(
                    "interactive", "click", lambda token, report, r=request: api.attend_row(r)
                ).future.result()
                latencies.append(time.perf_counter() - start)
            return latencies

        timed_clicks()  # the child's attention copy of the model, loaded before timing
        idle = timed_clicks()
        started = threading.Event()

        def embed(*, token, report):  # type: ignore[no-untyped-def]
            started.set()
            return api.embed(Embed(opened.dataset_id), token=token, report=report)

        job = runner.submit("model", "embed", embed)
        started.wait()
        time.sleep(1.0)
        busy = timed_clicks()
        still_running = not job.future.done()
        job.cancel()
    finally:
        runner.shutdown()
        api.close()
    for name, values in (("idle", idle), ("during embedding", busy)):
        print(
            f"{name:>17}: median {statistics.median(values) * 1000:.0f} ms, worst {max(values) * 1000:.0f} ms"
        )
    print(f"embedding job still running during every click: {still_running}")


if __name__ == "__main__":
    if "--engine-process" in sys.argv:
        through_engine_process()
    else:
        main()
