"""Cluster jobs end to end: a real Ray head with token auth, a real Valkey with a password.

One head (``ray start --head --block`` on 127.0.0.1, its own session, stopped by its id) and one
Valkey serve the whole module; the datasets are real multilingual sentences and stdlib
docstrings. Jobs go in as a user sends them, ``loupe cluster submit … --wait`` in a child
process holding the token and the secrets in its environment, except where a test must act while
the job runs (a killed worker, a cache that goes away), which drives ``ClusterClient`` itself.
Stopping the head asserts that none of its processes is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from engine.cache.connect import open_cache
from engine.cluster.client import ClusterClient, JobState
from engine.cluster.progress import JobProgress, latest
from engine.cluster.spec import ClusterJob
from engine.core.engine import Engine
from engine.data.datasets import load_dataset
from engine.maps.projection import ProjectionParams
from engine.runtime.version import loupe_version
from tests.ray_head import (
    DatasetFiles,
    LocalRayHead,
    ValkeyWithPassword,
    client_env,
    job_id_in,
    loupe,
    read_coords,
    refused,
    write_dataset_files,
)
from tests.test_cache_warm import MODEL_MODULES, imported_packages

pytest.importorskip("ray", reason="the cluster extra (ray[data,default]) is not installed")

ROWS = 400
BIG_ROWS = 1_000
SEED = 7
TEAM_KEY = "k3Vq9-team-key-for-the-cluster-test-Zp2"  # 38 characters, as a team would share it
JOB_TIMEOUT_S = 240
EMB = "loupe:v2:emb:*"


@pytest.fixture(scope="module")
def head() -> Iterator[LocalRayHead]:
    ray_head = LocalRayHead().start()
    try:
        yield ray_head
    finally:
        ray_head.stop()  # asserts that no process of the head is left
        if ray_head.killed:
            print(f"\nstopping the head needed SIGKILL for: {ray_head.killed}")


@pytest.fixture(scope="module")
def valkey() -> Iterator[ValkeyWithPassword]:
    server = ValkeyWithPassword().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def data(head: LocalRayHead) -> DatasetFiles:
    return write_dataset_files(head.temp_dir / "data", ROWS)


@pytest.fixture(scope="module")
def big_data(head: LocalRayHead) -> DatasetFiles:
    return write_dataset_files(head.temp_dir / "big", BIG_ROWS, name="big")


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    return {}


@pytest.fixture
def with_secrets(head: LocalRayHead, valkey: ValkeyWithPassword, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a submitting desktop: the token, the Redis password and the team key."""
    monkeypatch.setenv("RAY_AUTH_TOKEN", head.token)
    monkeypatch.setenv("LOUPE_REDIS_PASSWORD", valkey.password)
    monkeypatch.setenv("LOUPE_CACHE_KEY", TEAM_KEY)


def desktop_env(head: LocalRayHead, valkey: ValkeyWithPassword, home: Path) -> dict[str, str]:
    return client_env(
        home, RAY_AUTH_TOKEN=head.token, LOUPE_REDIS_PASSWORD=valkey.password, LOUPE_CACHE_KEY=TEAM_KEY
    )


def submit_and_wait(
    head: LocalRayHead, valkey: ValkeyWithPassword, path: Path, home: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], str, float]:
    """``loupe cluster submit PATH … --wait``; (the process, the job id, seconds it took)."""
    args = ["cluster", "submit", str(path), "--address", head.address, "--redis", valkey.url()]
    args += ["--text-column", "text", "--seed", str(SEED), *options, "--wait"]
    began = time.monotonic()
    done = loupe(args, desktop_env(head, valkey, home))
    elapsed = time.monotonic() - began
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-5000:]
    return done, job_id_in(done.stdout + done.stderr), elapsed


def job_log(head: LocalRayHead, job_id: str) -> str:
    return ClusterClient(head.address, token=head.token).logs(job_id)


def final_progress(head: LocalRayHead, job_id: str) -> JobProgress:
    progress, error = latest(job_log(head, job_id))
    assert error is None, error
    assert progress is not None and progress.phase == "done", progress
    return progress


def row_keys(path: Path, layer: int = -1) -> list[str]:
    """The keys a desktop computes for ``path``'s rows, as Loupe's own reader reads them."""
    dataset = load_dataset(path, text_column="text")
    return Engine(open_cache(no_cache=True), model="minilm").row_keys(dataset.texts, layer=layer)


def cached_map(
    path: Path, valkey: ValkeyWithPassword, team_key: str | None, params: ProjectionParams
) -> object:
    """What a desktop with (or without) the team key finds as the cached map of ``path``."""
    dataset = load_dataset(path, text_column="text")
    saved = os.environ.pop("LOUPE_CACHE_KEY", None)
    os.environ["LOUPE_REDIS_PASSWORD"] = valkey.password
    if team_key is not None:
        os.environ["LOUPE_CACHE_KEY"] = team_key
    try:
        cache = open_cache(valkey.url())
        try:
            return Engine(cache, model="minilm").cached_map(dataset.texts, params)
        finally:
            cache.close()
    finally:
        os.environ.pop("LOUPE_CACHE_KEY", None)
        if saved is not None:
            os.environ["LOUPE_CACHE_KEY"] = saved


# --- who may submit ------------------------------------------------------------------------


def test_an_unauthenticated_post_is_refused_and_starts_no_job(head: LocalRayHead) -> None:
    body = json.dumps({"entrypoint": "touch /tmp/loupe-should-never-exist"}).encode()
    request = urllib.request.Request(f"{head.address}/api/jobs/", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 401
    answer.value.close()
    assert head.jobs() == []


def test_no_token_anywhere_is_refused(head: LocalRayHead, data: DatasetFiles, tmp_path: Path) -> None:
    empty_home = tmp_path / "home"
    env = client_env(tmp_path / "loupe", HOME=str(empty_home))
    done = loupe(
        ["cluster", "submit", str(data.csv), "--address", head.address, "--redis", "redis://127.0.0.1:1"], env
    )
    assert "token" in refused(done).lower()
    assert head.jobs() == []


def test_a_wrong_token_is_one_sentence(head: LocalRayHead, data: DatasetFiles, tmp_path: Path) -> None:
    env = client_env(tmp_path / "loupe", RAY_AUTH_TOKEN="not-the-cluster-token-" + "x" * 20)
    done = loupe(
        ["cluster", "submit", str(data.csv), "--address", head.address, "--redis", "redis://127.0.0.1:1"], env
    )
    sentence = refused(done)
    assert "refused" in sentence and head.address in sentence
    assert head.token not in done.stderr + done.stdout
    assert head.jobs() == []


def test_plain_http_to_another_host_is_refused_before_connecting(data: DatasetFiles, tmp_path: Path) -> None:
    env = client_env(tmp_path / "loupe", RAY_AUTH_TOKEN="some-token-" + "y" * 24)
    # 192.0.2.0/24 is TEST-NET-1: nothing answers there, so only a refusal returns at once.
    began = time.monotonic()
    done = loupe(
        [
            "cluster",
            "submit",
            str(data.csv),
            "--address",
            "http://192.0.2.10:8265",
            "--redis",
            "redis://127.0.0.1:1",
        ],
        env,
    )
    assert "https://" in refused(done)
    assert time.monotonic() - began < 30


# --- a job fills the shared cache ----------------------------------------------------------


def test_a_submitted_job_writes_every_row_and_the_map(
    head: LocalRayHead,
    valkey: ValkeyWithPassword,
    data: DatasetFiles,
    tmp_path: Path,
    timings: dict[str, float],
) -> None:
    _, job_id, timings["cold_s"] = submit_and_wait(head, valkey, data.csv, tmp_path / "desk")
    progress = final_progress(head, job_id)
    assert (progress.total, progress.computed, progress.from_cache) == (ROWS, ROWS, 0)
    expected = row_keys(data.csv)
    assert len(set(expected)) == ROWS
    assert set(expected) <= valkey.keys(EMB)
    params = ProjectionParams.from_options("umap", {}, seed=SEED)
    assert cached_map(data.csv, valkey, TEAM_KEY, params) is not None, "no projection under the desktop's key"


def test_the_map_opens_warm_without_the_model_and_equals_a_local_run(
    head: LocalRayHead, valkey: ValkeyWithPassword, data: DatasetFiles, tmp_path: Path
) -> None:
    warm_out, local_out = tmp_path / "warm.csv", tmp_path / "local.csv"
    env = desktop_env(head, valkey, tmp_path / "desk")
    warm = loupe(
        [
            "project",
            str(data.csv),
            "--redis",
            valkey.url(),
            "--text-column",
            "text",
            "--seed",
            str(SEED),
            "--out",
            str(warm_out),
        ],
        env,
        importtime=True,
    )
    assert warm.returncode == 0, warm.stderr[-5000:]
    imported = imported_packages(warm.stderr)
    assert "engine" in imported and not MODEL_MODULES & imported, (
        f"the warm run imported {MODEL_MODULES & imported}"
    )
    local = loupe(
        [
            "project",
            str(data.csv),
            "--no-cache",
            "--text-column",
            "text",
            "--seed",
            str(SEED),
            "--out",
            str(local_out),
            "--device",
            "cpu",
        ],
        client_env(tmp_path / "fresh"),
    )
    assert local.returncode == 0, local.stderr[-5000:]
    warm_rows, local_rows = read_coords(warm_out), read_coords(local_out)
    assert len(warm_rows) == ROWS and len(local_rows) == ROWS
    worst = max(
        abs(a - b)
        for here, there in zip(warm_rows, local_rows, strict=True)
        for a, b in zip(here, there, strict=True)
    )
    assert worst <= 1e-5, f"the cluster's map differs from a local run by {worst}"


def test_a_rerun_is_nearly_free(
    head: LocalRayHead,
    valkey: ValkeyWithPassword,
    data: DatasetFiles,
    tmp_path: Path,
    timings: dict[str, float],
) -> None:
    _, job_id, timings["warm_s"] = submit_and_wait(head, valkey, data.csv, tmp_path / "desk")
    # The driver finds the map and every row cached and ends before Ray Data starts.
    assert f"all {ROWS:,} rows were cached already" in job_log(head, job_id)
    progress = final_progress(head, job_id)
    assert (progress.computed, progress.from_cache) == (0, ROWS)
    cold, warm = timings.get("cold_s", 0.0), timings["warm_s"]
    print(f"\ncluster job of {ROWS} rows: cold {cold:.1f} s, rerun {warm:.1f} s")


def test_a_job_fits_its_map_on_a_sample(
    head: LocalRayHead, valkey: ValkeyWithPassword, data: DatasetFiles, tmp_path: Path
) -> None:
    """``--fit-sample`` reaches the cluster's final map: the map is cached under the sample's
    parameters, not a full fit's, and a desktop's ``loupe project --fit-sample`` opens it warm."""
    submit_and_wait(head, valkey, data.csv, tmp_path / "desk", "--fit-sample", "100")
    sampled = replace(ProjectionParams.from_options("umap", {}, seed=SEED), fit_sample=100)
    assert cached_map(data.csv, valkey, TEAM_KEY, sampled) is not None, "no map under the sample's key"
    out = tmp_path / "warm.csv"
    warm = loupe(
        ["project", str(data.csv), "--redis", valkey.url(), "--text-column", "text", "--seed", str(SEED),
         "--fit-sample", "100", "--out", str(out)],
        desktop_env(head, valkey, tmp_path / "desk"),
        importtime=True,
    )  # fmt: skip
    assert warm.returncode == 0, warm.stderr[-5000:]
    assert "Fitting the map on a spread sample" not in warm.stderr
    assert not MODEL_MODULES & imported_packages(warm.stderr)
    assert len(read_coords(out)) == ROWS


@pytest.mark.parametrize(("kind", "seed"), [("jsonl", 11), ("parquet", 12), ("parquet_folder", 13)])
def test_every_format_reads_the_same_rows(
    head: LocalRayHead, valkey: ValkeyWithPassword, data: DatasetFiles, tmp_path: Path, kind: str, seed: int
) -> None:
    """The same rows as JSONL, Parquet or a folder of Parquet: Ray Data reads them all, and every
    key matches the CSV's, so the cache filled by the first job answers all of them."""
    path = getattr(data, kind)
    # A map of its own (its seed), or the driver would find everything cached and read nothing.
    _, job_id, _ = submit_and_wait(
        head, valkey, path, tmp_path / "desk", "--method", "pca", "--seed", str(seed)
    )
    progress = final_progress(head, job_id)
    assert (progress.total, progress.computed, progress.from_cache) == (ROWS, 0, ROWS)


# --- secrets -------------------------------------------------------------------------------


def test_no_secret_reaches_a_log_the_job_info_or_the_status(
    head: LocalRayHead, valkey: ValkeyWithPassword, data: DatasetFiles, tmp_path: Path
) -> None:
    env = desktop_env(head, valkey, tmp_path / "desk")
    jobs = head.jobs()
    assert jobs, "no job ran before this test"
    outputs = [json.dumps(jobs)]
    for job in jobs:
        job_id = job["submission_id"]
        for command in ("status", "logs"):
            shown = loupe(["cluster", command, job_id, "--address", head.address], env, timeout=60)
            assert shown.returncode == 0, shown.stderr[-3000:]
            outputs += [shown.stdout, shown.stderr]
    secrets = {"the Redis password": valkey.password.encode(), "the team key": TEAM_KEY.encode()}
    for text in outputs:
        for name, secret in secrets.items():
            assert secret.decode() not in text, f"{name} in the job info or a command's output"
    carriers = set()
    for path in head.files():
        content = path.read_bytes()
        if any(secret in content for secret in secrets.values()):
            carriers.add(path)
    # The scan reaches the uploaded working folder (so it would see a leak anywhere), and only
    # that folder may hold them: secrets.json, by design.
    assert any(path.name == "secrets.json" for path in carriers), "the scan did not see the job's folder"
    unexpected = [p for p in carriers if p.name != "secrets.json" and "runtime_resources" not in p.parts]
    assert not unexpected, f"secrets found in {unexpected}"


def test_the_values_are_sealed_with_the_team_key(valkey: ValkeyWithPassword, data: DatasetFiles) -> None:
    params = ProjectionParams.from_options("umap", {}, seed=SEED)
    assert cached_map(data.csv, valkey, TEAM_KEY, params) is not None
    assert cached_map(data.csv, valkey, None, params) is None, "a desktop without the team key read the map"
    assert cached_map(data.csv, valkey, "another-team-key-" + "z" * 20, params) is None


# --- robustness ----------------------------------------------------------------------------


def run_in_process(
    head: LocalRayHead, valkey: ValkeyWithPassword, path: Path, **fields: object
) -> tuple[ClusterClient, str]:
    client = ClusterClient(head.address)
    job = ClusterJob(
        path=str(path),
        redis_url=valkey.url(),
        text_column="text",
        seed=SEED,
        loupe_version=loupe_version(),
        **fields,
    )  # type: ignore[arg-type]
    return client, client.submit(job)


def wait_until(
    client: ClusterClient, job_id: str, done: Callable[[JobState], bool], timeout_s: float = JOB_TIMEOUT_S
) -> JobState:
    deadline = time.monotonic() + timeout_s
    while True:
        state = client.state(job_id)
        if done(state):
            return state
        assert time.monotonic() < deadline, f"the job did not get there in {timeout_s} s: {state.describe()}"
        time.sleep(1)


@pytest.mark.usefixtures("with_secrets")
def test_a_killed_worker_loses_at_most_its_batch(
    head: LocalRayHead, valkey: ValkeyWithPassword, big_data: DatasetFiles
) -> None:
    layer = 3  # keys of their own: nothing is cached for this layer yet
    client, job_id = run_in_process(head, valkey, big_data.csv, layer=layer, batch_rows=32, method="pca")
    keys = set(row_keys(big_data.csv, layer))
    wait_until(client, job_id, lambda state: state.terminal or len(keys & valkey.keys(EMB)) >= 100)
    workers = head.worker_pids("MapWorker")
    assert workers, "no embedding actor found"
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    first = wait_until(client, job_id, lambda state: state.terminal)
    assert first.status in ("SUCCEEDED", "FAILED"), first.describe()
    present = len(keys & valkey.keys(EMB))
    print(f"\nafter the kill the job {first.status.lower()} with {present} of {BIG_ROWS} rows cached")
    client, rerun = run_in_process(head, valkey, big_data.csv, layer=layer, batch_rows=32, method="pca")
    second = wait_until(client, rerun, lambda state: state.terminal)
    assert second.status == "SUCCEEDED", second.describe()
    assert second.progress is not None
    assert second.progress.computed == BIG_ROWS - present, (first.describe(), present, second.describe())
    assert keys <= valkey.keys(EMB)


@pytest.mark.usefixtures("with_secrets")
def test_status_logs_and_stop(
    head: LocalRayHead, valkey: ValkeyWithPassword, big_data: DatasetFiles, tmp_path: Path
) -> None:
    env = desktop_env(head, valkey, tmp_path / "desk")
    args = ["cluster", "submit", str(big_data.csv), "--address", head.address, "--redis", valkey.url()]
    submitted = loupe([*args, "--text-column", "text", "--layer", "1"], env, timeout=60)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    job_id = job_id_in(submitted.stdout + submitted.stderr)
    client = ClusterClient(head.address)
    wait_until(client, job_id, lambda state: state.status == "RUNNING")
    status = loupe(["cluster", "status", job_id, "--address", head.address], env, timeout=60)
    assert status.returncode == 0 and "running" in (status.stdout + status.stderr).lower(), status.stderr
    stopped = loupe(["cluster", "stop", job_id, "--address", head.address], env, timeout=60)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert wait_until(client, job_id, lambda state: state.terminal, 60).status == "STOPPED"
    logs = loupe(["cluster", "logs", job_id, "--address", head.address], env, timeout=60)
    assert logs.returncode == 0 and "loupe-progress" in logs.stdout, logs.stderr[-3000:]


@pytest.mark.usefixtures("with_secrets")
def test_the_progress_moves_while_rows_are_embedded(
    head: LocalRayHead, valkey: ValkeyWithPassword, big_data: DatasetFiles, tmp_path: Path
) -> None:
    """``status`` (and ``--wait``) show rows done, rate and ETA during the embedding phase."""
    # One Parquet file: one block to Ray Data, as large datasets come (a CSV is read in pieces).
    client, job_id = run_in_process(head, valkey, big_data.parquet, layer=5, batch_rows=64, method="pca")
    keys = set(row_keys(big_data.parquet, 5))
    try:
        state = wait_until(
            client,
            job_id,
            lambda state: (
                state.terminal
                or (state.progress is not None and state.progress.done > 0)
                or len(keys & valkey.keys(EMB)) >= 700
            ),
        )
        shown = loupe(
            ["cluster", "status", job_id, "--address", head.address],
            desktop_env(head, valkey, tmp_path / "d"),
        )
    finally:
        client.stop(job_id)
    assert state.progress is not None and 0 < state.progress.done < BIG_ROWS, state.describe()
    assert re.search(r"embedding [\d,]+/1,000 rows, [\d,]+ rows/s, ETA", shown.stdout), shown.stdout


@pytest.mark.usefixtures("with_secrets")
def test_a_cache_that_goes_away_fails_the_job_in_one_sentence(
    head: LocalRayHead, valkey: ValkeyWithPassword, big_data: DatasetFiles, tmp_path: Path
) -> None:
    """Runs last: it stops the module's Valkey (and starts an empty one on the same port)."""
    client, job_id = run_in_process(head, valkey, big_data.csv, layer=4, batch_rows=32, method="pca")
    keys = set(row_keys(big_data.csv, 4))
    wait_until(client, job_id, lambda state: state.terminal or len(keys & valkey.keys(EMB)) >= 32)
    valkey.stop()
    began = time.monotonic()
    try:
        final = wait_until(client, job_id, lambda state: state.terminal, 120)
    finally:
        valkey.start()
    assert final.status == "FAILED", final.describe()
    print(f"\nthe job failed {time.monotonic() - began:.1f} s after its cache went away")
    env = desktop_env(head, valkey, tmp_path / "desk")
    status = loupe(["cluster", "status", job_id, "--address", head.address], env, timeout=60)
    shown = status.stdout + status.stderr
    assert "shared cache" in shown and "Traceback" not in shown, shown[-3000:]


def test_an_error_in_a_ray_task_is_its_own_sentence() -> None:
    """A LoupeError raised in a Ray task (the final map) reaches the driver wrapped by Ray."""
    from ray.exceptions import RayTaskError

    from engine.cluster.driver import _sentence
    from engine.errors import BadInputError

    try:
        raise BadInputError("The dataset has no text column.")
    except BadInputError as error:
        wrapped = RayTaskError("make_final_map", "Traceback (most recent call last): …", error)
    assert _sentence(wrapped.as_instanceof_cause()) == "The dataset has no text column."
