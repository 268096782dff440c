"""Jobs and the runner: progress with rate and ETA, cancellation within one batch, errors as values."""

from __future__ import annotations

import threading
import time

import pytest

from engine.errors import BadInputError, JobCancelled
from engine.runtime.jobs import (
    CancelToken,
    JobHandle,
    JobRunner,
    Progress,
    ProgressMeter,
    Report,
    report_phase,
)


def counting_job(batches: int, started: threading.Event | None = None, pause: float = 0.01):  # type: ignore[no-untyped-def]
    def job(*, token: CancelToken, report: Report) -> int:
        for done in range(batches):
            token.raise_if_cancelled()
            if started is not None:
                started.set()
            time.sleep(pause)
            report(done + 1, batches, "Counting")
        return batches

    return job


def test_progress_meter_reports_rate_and_eta() -> None:
    seen: list[Progress] = []
    meter = ProgressMeter(seen.append)
    meter(0, 100, "Embedding")
    time.sleep(0.1)
    meter(50, 100, "Embedding")
    assert seen[-1].rate is not None and 200 < seen[-1].rate < 1000
    assert seen[-1].eta_s is not None and 0.05 < seen[-1].eta_s < 0.25
    assert seen[-1].fraction == 0.5


def test_no_rate_from_the_first_row_of_a_long_phase() -> None:
    seen: list[Progress] = []
    meter = ProgressMeter(seen.append)
    meter(392, 3926, "Placing rows")
    time.sleep(0.1)
    meter(393, 3926, "Placing rows")
    assert seen[-1].rate is None and seen[-1].eta_s is None  # not "10/s · ETA 353 s"


def test_a_new_phase_restarts_the_rate() -> None:
    seen: list[Progress] = []
    meter = ProgressMeter(seen.append)
    meter(90, 100, "Loading the model")  # 90 rows came from the cache instantly
    meter(90, 100, "Embedding")
    assert seen[-1].rate is None  # no claim of an impossible speed


def test_runner_delivers_results_progress_and_errors() -> None:
    runner = JobRunner()
    results: list[object] = []
    errors: list[str] = []
    progress: list[Progress] = []
    try:
        done = runner.submit(
            "compute", "count", counting_job(5),
            on_progress=lambda h, p: progress.append(p), on_done=lambda h, r: results.append(r),
        )  # fmt: skip
        assert done.future.result(timeout=10) == 5

        def bad_input(*, token: CancelToken, report: Report) -> None:
            raise BadInputError("Column 'text' does not exist.")

        failed = runner.submit("compute", "bad", bad_input, on_error=lambda h, m, e: errors.append(m))
        with pytest.raises(BadInputError):
            failed.future.result(timeout=10)
    finally:
        runner.shutdown()
    assert results == [5]
    assert [p.done for p in progress] == [1, 2, 3, 4, 5]
    assert errors == ["Column 'text' does not exist."]


def test_cancel_takes_effect_within_one_batch() -> None:
    runner = JobRunner()
    started = threading.Event()
    cancelled: list[JobHandle] = []
    batches_seen: list[int] = []
    try:
        handle = runner.submit(
            "model", "long", counting_job(10_000, started, pause=0.02),
            on_progress=lambda h, p: batches_seen.append(p.done), on_cancelled=cancelled.append,
        )  # fmt: skip
        assert started.wait(10)
        handle.cancel()
        at_cancel = len(batches_seen)
        with pytest.raises(JobCancelled):
            handle.future.result(timeout=5)
    finally:
        runner.shutdown()
    assert cancelled == [handle]
    assert len(batches_seen) <= at_cancel + 1


def test_lanes_do_not_wait_for_each_other() -> None:
    """An interactive request finishes while the model lane is busy."""
    runner = JobRunner()
    release = threading.Event()

    def blocking(*, token: CancelToken, report: Report) -> None:
        release.wait(10)

    def quick(*, token: CancelToken, report: Report) -> str:
        return "attention"

    try:
        runner.submit("model", "busy", blocking)
        assert runner.submit("interactive", "click", quick).future.result(timeout=2) == "attention"
    finally:
        release.set()
        runner.shutdown()


def test_shutdown_joins_every_thread() -> None:
    runner = JobRunner()
    runner.submit("model", "long", counting_job(10_000))
    runner.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("loupe-")]


def test_report_phase_maps_each_step_onto_one_bar() -> None:
    seen: list[tuple[int, int, str]] = []

    def report(done: int, total: int, message: str = "") -> None:
        seen.append((done, total, message))

    second = report_phase(report, 1, 4, "Against")
    second(0, 10, "Embedding")
    second(5, 10)
    second(3, 0)  # a step with nothing to do is done
    assert seen == [(1000, 4000, "Against: Embedding"), (1500, 4000, "Against"), (2000, 4000, "Against")]
