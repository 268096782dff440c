"""The pipeline's records carry the structured fields the issue names: job, model, dataset, duration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from engine.cache.store import Cache
from engine.core.engine import Engine
from engine.logs.records import reset_logging, setup_logging
from engine.runtime.context import log_context
from engine.runtime.jobs import CancelToken, JobRunner, Report


@pytest.fixture
def logging_setup() -> Iterator[Any]:
    reset_logging()
    setup = setup_logging()
    yield setup
    reset_logging()


def test_an_embedding_job_logs_job_model_dataset_and_duration(logging_setup: Any, minilm: Any) -> None:
    engine = Engine(Cache(None))
    engine._loaded = minilm

    def job(*, token: CancelToken, report: Report) -> int:
        with log_context(dataset="fingerprint-123"):
            return len(engine.embeddings(["One text.", "Another text."], token=token, report=report).vectors)

    runner = JobRunner()
    try:
        handle = runner.submit("model", "embed two", job)
        assert handle.future.result(timeout=120) == 2
    finally:
        runner.shutdown()
    logging_setup.file_handler.flush()
    records = [json.loads(line) for line in logging_setup.log_path.read_text().splitlines()]
    ready = [r for r in records if r["message"] == "embeddings ready"]
    assert len(ready) == 1
    record = ready[0]
    assert record["job_id"] == handle.job_id and record["job"] == "embed two"
    assert record["model"] == engine.spec.identity and record["dataset"] == "fingerprint-123"
    assert record["rows"] == 2 and record["duration_s"] > 0
    assert record["session_id"] == logging_setup.session_id
