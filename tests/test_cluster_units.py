"""The cluster room's Ray-free parts, checked without a Ray head: the job file (spec), the
progress lines (progress), who may submit where (access), the job's secrets (secrets), the
Redis password split off a URL, and the texts an actor embeds (batches.prepared_texts). Also:
importing the submitting side, ``loupe --help`` and the desktop's start never import Ray.

Every refusal a user or a hostile file can cause must be one sentence that echoes no secret.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cache.connect import open_cache, split_password
from engine.cache.team_key import find_team_key
from engine.cluster.access import (
    ClusterAccess,
    ClusterAccessError,
    check_access,
    find_token,
    normalised_address,
)
from engine.cluster.batches import prepared_texts
from engine.cluster.progress import JobProgress, error_line, format_duration, latest
from engine.cluster.secrets import (
    SECRETS_FILE,
    JobSecrets,
    gather_secrets,
    install_secrets,
    read_secrets,
    write_secrets,
)
from engine.cluster.spec import MAX_BATCH_ROWS, ClusterJob
from engine.data.datasets import load_dataset
from engine.errors import BadInputError
from tests.test_cache_remote import SECRET, AclServer, acl_server, round_trips, start_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tok-Ray-9f3b2c71d0e84a56b7c8d9e0f1a2b3c4"  # distinctive: finding it in a message is no coincidence
TEAM_KEY = "team-key-Loupe-5e1d9c0b7a6f4e3d"


def one_sentence(message: str) -> None:
    """A user-facing refusal: one line, one sentence, no traceback."""
    assert "\n" not in message and "Traceback" not in message, message
    assert message.endswith("."), message
    assert len(message) < 400, message


@pytest.fixture(autouse=True)
def no_machine_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Ray token, keyring or home folder of the machine running the tests: HOME is a temp folder."""
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setitem(sys.modules, "keyring", None)  # None in sys.modules: "not installed"
    return home


def fake_keyring(entries: dict[tuple[str, str], str]) -> tuple[SimpleNamespace, list[tuple[str, str]]]:
    """A stand-in ``keyring`` module answering from ``entries``, and the lookups it was asked."""
    asked: list[tuple[str, str]] = []

    def get_password(service: str, user: str) -> str | None:
        asked.append((service, user))
        return entries.get((service, user))

    return SimpleNamespace(get_password=get_password), asked


# --- spec: job.json ------------------------------------------------------------------------------


def a_job(**changes: Any) -> ClusterJob:
    fields: dict[str, Any] = {
        "path": "s3://bucket/ünïcode/rows.parquet",
        "redis_url": "rediss://loupe@cache.example.org:6380/0",
        "model": "minilm",
        "layer": 3,
        "text_column": "texte",
        "label_column": "étiquette",
        "method": "umap",
        "params": {"n_neighbors": "30", "min_dist": "0.05"},
        "seed": 2**32 - 1,
        "fit_sample": 20_000,
        "analyse": True,
        "actors": 8,
        "batch_rows": 512,
        "loupe_version": "0.18.0",
    }
    fields.update(changes)
    return ClusterJob(**fields)


@pytest.mark.parametrize(
    "job",
    [
        a_job(),
        a_job(layer="all", actors=None, text_column=None, label_column=None, params={}, fit_sample=None),
        ClusterJob(path="/shared/rows.csv", redis_url="redis://127.0.0.1:6379"),
    ],
)
def test_a_job_round_trips_through_its_json(job: ClusterJob) -> None:
    assert ClusterJob.from_json(job.to_json()) == job


def edited(**changes: Any) -> str:
    """A valid job file with ``changes`` applied; a value of ``...`` removes the field."""
    raw = json.loads(a_job().to_json())
    for name, value in changes.items():
        if value is ...:
            raw.pop(name)
        else:
            raw[name] = value
    return json.dumps(raw)


HOSTILE_FIELDS: list[tuple[str, Any]] = [
    ("version", 2),
    ("version", "1"),
    ("version", None),
    ("version", ...),
    ("path", ...),
    ("path", ""),
    ("path", 7),
    ("path", ["/a"]),
    ("redis_url", None),
    ("redis_url", {"url": "redis://x"}),
    ("model", 3.5),
    ("model", ""),
    ("layer", True),
    ("layer", 1.5),
    ("layer", 10**6),
    ("layer", -1000),
    ("layer", "ALL"),
    ("layer", "3"),
    ("layer", None),
    ("text_column", 5),
    ("text_column", ""),
    ("label_column", ["a"]),
    ("method", None),
    ("params", ["n_neighbors=30"]),
    ("params", {"n_neighbors": 30}),
    ("params", {"n_neighbors": None}),
    ("params", {"n_neighbors": ["30"]}),
    ("params", None),
    ("seed", -1),
    ("seed", 2**32),
    ("seed", 10**400),  # over Python's int-from-text digit limit: json refuses it
    ("seed", 1.0),
    ("seed", True),
    ("seed", "7"),
    ("seed", ...),
    ("fit_sample", 0),
    ("fit_sample", -5),
    ("fit_sample", 2**31),
    ("fit_sample", 3.0),
    ("fit_sample", True),
    ("fit_sample", "1000"),
    ("analyse", 1),
    ("analyse", "true"),
    ("analyse", None),
    ("actors", 0),
    ("actors", 10_001),
    ("actors", True),
    ("actors", 2.0),
    ("batch_rows", 0),
    ("batch_rows", MAX_BATCH_ROWS + 1),
    ("batch_rows", False),
    ("batch_rows", 1e400),  # infinity
    ("loupe_version", None),
    ("loupe_version", 18),
]


@pytest.mark.parametrize(
    ("name", "value"), HOSTILE_FIELDS, ids=[f"{n}={v!r}"[:40] for n, v in HOSTILE_FIELDS]
)
def test_every_malformed_field_is_refused_in_one_sentence(name: str, value: Any) -> None:
    with pytest.raises(BadInputError) as refused:
        ClusterJob.from_json(edited(**{name: value}))
    one_sentence(str(refused.value))


@pytest.mark.parametrize("version", [True, 1.0])
def test_a_version_that_only_equals_one_is_refused(version: object) -> None:
    """``true == 1`` and ``1.0 == 1`` in Python; the file's version must be the integer 1."""
    with pytest.raises(BadInputError) as refused:
        ClusterJob.from_json(edited(version=version))
    one_sentence(str(refused.value))


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", "null", "3", '"job"', "[" * 100_000, '{"version": 1', "\udcff", "NaN"],
    ids=["empty", "text", "list", "null", "number", "string", "deep", "cut", "surrogate", "nan"],
)
def test_a_job_file_that_is_not_a_job_is_refused_in_one_sentence(text: str) -> None:
    with pytest.raises(BadInputError) as refused:
        ClusterJob.from_json(text)
    one_sentence(str(refused.value))


def test_a_huge_job_file_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(BadInputError):
        ClusterJob.from_json(edited(path="x" * 10_000_000, seed=-5))
    assert time.perf_counter() - started < 5


# --- progress: the driver's lines in the job log -------------------------------------------------


@pytest.mark.parametrize(
    "progress",
    [
        JobProgress("reading"),
        JobProgress(
            "embedding", done=1_234, total=10_000_000, computed=1_000, from_cache=234, elapsed_s=12.5
        ),
        JobProgress("mapping", done=10, total=10, computed=0, from_cache=10, elapsed_s=0.25),
        JobProgress("done", done=400, total=400, computed=400, elapsed_s=21.0),
    ],
)
def test_a_progress_line_round_trips(progress: JobProgress) -> None:
    line = progress.line()
    assert "\n" not in line
    assert latest(line) == (progress, None)


RAY_NOISE = """\
2026-11-30 10:00:01,123\tINFO job_manager.py:530 -- Runtime env is setting up.
2026-11-30 10:00:04,001\tINFO worker.py:1832 -- Connecting to existing Ray cluster at 10.0.0.2:6379...
Running Dataset: dataset_3_0. Active & requested resources: 2/2 CPU, 1/1 GPU
(MapBatches(BatchEmbedder) pid=4411) loupe-progress {"phase": "done", "done": 1, "total": 1}
loupe-progress {"phase": "embedding", "done": 100, "total": 1000, "elapsed_s": 10}
loupe-progress {"phase": "embedding", "done": 200, "total": 1000, "elapsed_s": 2
loupe-progress not json at all
loupe-progress {"phase": "embedding", "done": -5, "total": 1000, "elapsed_s": 20}
loupe-progress {"phase": "embedding", "done": 300, "total": "1000", "elapsed_s": 20}
loupe-progress {"phase": "embedding", "done": true, "total": 1000, "elapsed_s": 20}
loupe-progress {"phase": "embedding", "done": 300.5, "total": 1000, "elapsed_s": 20}
loupe-progress {"phase": "embedding", "done": 300, "total": 1000, "elapsed_s": -1}
loupe-progress {"phase": "embedding", "done": 300, "total": 1000, "elapsed_s": NaN}
loupe-progress {"phase": "embedding", "done": 300, "total": 1000, "elapsed_s": Infinity}
loupe-progress {"phase": "hacking", "done": 300, "total": 1000, "elapsed_s": 20}
loupe-progress ["embedding", 300, 1000]
loupe-error {"message": 42}
loupe-error {"message": ""}
loupe-error {"message": "The shared cache at rediss://loupe:***@cache:6380 stopped answering."}
loupe-error "plain text"
  loupe-progress {"phase": "embedding", "done": 999, "total": 1000, "elapsed_s": 30}
Traceback (most recent call last):
  File "/tmp/ray/session/runtime_resources/working_dir_files/x/engine/cluster/driver.py", line 1
"""


def test_latest_keeps_the_last_well_formed_line_among_rays_noise() -> None:
    progress, error = latest(RAY_NOISE)
    assert progress == JobProgress("embedding", done=100, total=1000, elapsed_s=10.0)
    assert error == "The shared cache at rediss://loupe:***@cache:6380 stopped answering."


def test_latest_on_a_log_with_nothing_of_loupes() -> None:
    assert latest("") == (None, None)
    assert latest("INFO nothing here\n" * 1000) == (None, None)


def test_a_later_good_line_wins_and_error_sentences_are_cut() -> None:
    first = JobProgress("embedding", done=1, total=9, elapsed_s=1.0)
    last = JobProgress("mapping", done=9, total=9, computed=9, elapsed_s=3.0)
    log = "\r\n".join([first.line(), error_line("x" * 5_000), last.line()]) + "\r\n"
    progress, error = latest(log)
    assert progress == last
    assert error == "x" * 500


@pytest.mark.parametrize(
    "hostile",
    [
        "loupe-progress {" + "x" * 10_000_000,
        "loupe-progress {" + '"a": [' * 2_000_000 + "}",
        "loupe-progress {" + "{" * 5_000_000 + "}" * 5_000_000 + "}",
        "loupe-error {" + " " * 10_000_000,
    ],
    ids=["unclosed", "brackets", "nested", "spaces"],
)
def test_a_hostile_10_mb_line_is_skipped_quickly(hostile: str) -> None:
    good = JobProgress("embedding", done=5, total=10, elapsed_s=1.0)
    started = time.perf_counter()
    assert latest(good.line() + "\n" + hostile + "\n") == (good, None)
    assert time.perf_counter() - started < 5


def test_rate_eta_and_describe() -> None:
    running = JobProgress("embedding", done=1_000, total=10_000, elapsed_s=10.0)
    assert running.rate == 100.0
    assert running.eta_s == 90.0
    assert running.describe() == "embedding 1,000/10,000 rows, 100 rows/s, ETA 1 min 30 s"

    starting = JobProgress("embedding", done=0, total=10_000, elapsed_s=5.0)
    assert starting.rate == 0.0 and starting.eta_s is None
    assert starting.describe() == "embedding 0/10,000 rows"
    assert JobProgress("embedding", done=10, total=10, elapsed_s=0.0).rate == 0.0
    assert JobProgress("embedding", done=12, total=10, elapsed_s=1.0).eta_s == 0.0  # never negative
    assert JobProgress("mapping", done=10, total=10, elapsed_s=1.0).eta_s is None

    assert JobProgress("reading").describe() == "reading the dataset"
    assert JobProgress("mapping", done=10, total=10).describe() == "fitting the map"
    finished = JobProgress("done", done=1_500, total=1_500, computed=1_200, from_cache=300)
    assert finished.describe() == "done: 1,500 rows (1,200 embedded, 300 from the cache)"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (0.4, "0 s"),
        (59.4, "59 s"),
        (59.6, "1 min 00 s"),
        (61, "1 min 01 s"),
        (3_599, "59 min 59 s"),
        (3_600, "1 h 00 min"),
        (7 * 86_400 + 61, "168 h 01 min"),
    ],
)
def test_format_duration(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


# --- access: address and token -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("head:8265", "http://head:8265"),
        ("head", "http://head:8265"),
        ("  http://head:8265/  ", "http://head:8265"),
        ("127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("https://ray.example.org:8443", "https://ray.example.org:8443"),
        ("https://ray.example.org:443", "https://ray.example.org:443"),
        ("HTTP://Head.Example.org:8265", "http://head.example.org:8265"),
        ("[::1]:8265", "http://[::1]:8265"),
        ("http://[::1]", "http://[::1]:8265"),
        ("https://[2001:db8::7]:8443", "https://[2001:db8::7]:8443"),
    ],
)
def test_normalised_address(typed: str, normalised: str) -> None:
    assert normalised_address(typed) == normalised


def test_https_without_a_port_means_the_https_port() -> None:
    """A dashboard behind a TLS Ingress answers on 443: ``https://host`` must not go to 8265."""
    assert normalised_address("https://ray.example.org") == "https://ray.example.org:443"


@pytest.mark.parametrize(
    "typed",
    [
        "ray://head:10001",
        "http://head:8265/api/jobs",
        "http://head:8265?token=x",
        "ftp://head:8265",
        "file:///tmp/ray",
        "",
        "   ",
        "head:port",
        "head:99999",
        "http://:8265",
        "[::1",
    ],
)
def test_addresses_loupe_cannot_submit_to_are_refused_in_one_sentence(typed: str) -> None:
    with pytest.raises(ClusterAccessError) as refused:
        normalised_address(typed)
    one_sentence(str(refused.value))


def test_the_token_is_found_where_ray_looks_then_in_the_keyring(
    monkeypatch: pytest.MonkeyPatch, no_machine_secrets: Path, tmp_path: Path
) -> None:
    address = "https://ray.example.org:8443"
    keyring, asked = fake_keyring({("loupe-ray", address): " from-keyring "})
    monkeypatch.setitem(sys.modules, "keyring", keyring)
    assert find_token(address) == ("from-keyring", "the system keyring")
    assert asked == [("loupe-ray", address)]

    default = no_machine_secrets / ".ray" / "auth_token"
    default.parent.mkdir()
    default.write_text("from-home\n", encoding="utf-8")
    assert find_token(address) == ("from-home", "~/.ray/auth_token")

    named = tmp_path / "named_token"
    named.write_text("  from-path  ", encoding="utf-8")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(named))
    assert find_token(address) == ("from-path", "RAY_AUTH_TOKEN_PATH")

    monkeypatch.setenv("RAY_AUTH_TOKEN", "  ")  # blank counts as unset
    assert find_token(address)[1] == "RAY_AUTH_TOKEN_PATH"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert find_token(address) == ("from-env", "RAY_AUTH_TOKEN")

    assert check_access(address, token="from-caller").token == "from-caller"  # the caller's wins


def test_no_token_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_token("https://ray.example.org:8443") == (None, "nowhere")
    keyring, _ = fake_keyring({})
    monkeypatch.setitem(sys.modules, "keyring", keyring)
    assert find_token("https://ray.example.org:8443") == (None, "nowhere")


def test_a_token_path_that_does_not_exist_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(ClusterAccessError) as refused:
        check_access("https://ray.example.org:8443")
    one_sentence(str(refused.value))
    assert "missing" in str(refused.value)


@pytest.mark.parametrize("content", ["directory", "binary"])
def test_an_unreadable_token_file_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "token"
    if content == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe" + TOKEN.encode())
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path))
    with pytest.raises(ClusterAccessError) as refused:
        find_token("https://ray.example.org:8443")
    one_sentence(str(refused.value))
    assert TOKEN not in str(refused.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.3.2.1"])
def test_plain_http_is_allowed_on_this_machine(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    access = check_access(f"http://{host}:8265")
    assert access.token == TOKEN and access.token_source == "RAY_AUTH_TOKEN"
    assert access.headers == {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("address", ["http://10.0.0.2:8265", "ray-head:8265", "http://[2001:db8::1]:8265"])
def test_plain_http_elsewhere_is_refused_unless_insecure(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    with pytest.raises(ClusterAccessError) as refused:
        check_access(address)
    one_sentence(str(refused.value))
    assert "--insecure" in str(refused.value)
    assert check_access(address, insecure=True).token == TOKEN


def test_no_token_is_refused_unless_insecure() -> None:
    with pytest.raises(ClusterAccessError) as refused:
        check_access("https://ray.example.org:8443")
    one_sentence(str(refused.value))
    both_lifted = check_access("http://10.0.0.2:8265", insecure=True)
    assert both_lifted.token is None and both_lifted.headers == {}


def test_the_token_never_shows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    access = check_access("https://ray.example.org:8443")
    shown = [repr(access), str(access), f"{access}", repr([access])]
    for address in ("http://10.0.0.2:8265", "ray://head:10001", "http://head/api"):
        with pytest.raises(ClusterAccessError) as refused:
            check_access(address)
        shown.append(str(refused.value))
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_bytes(TOKEN.encode() + b"\xff")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    with pytest.raises(ClusterAccessError) as refused:
        check_access("https://ray.example.org:8443")
    shown.append(str(refused.value))
    assert all(TOKEN not in text for text in shown), shown
    assert isinstance(access, ClusterAccess)


# --- secrets: the password and the team key travel in secrets.json ------------------------------


def test_gather_secrets_splits_the_password_out_of_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOUPE_CACHE_KEY", f"  {TEAM_KEY}\n")
    clean, secrets = gather_secrets(f"rediss://loupe:{SECRET}@cache.example.org:6380/0")
    assert clean == "rediss://loupe@cache.example.org:6380/0"
    assert secrets.redis_password == SECRET and secrets.team_key == TEAM_KEY.encode()
    assert SECRET not in repr(secrets) and TEAM_KEY not in repr(secrets)


def test_gather_secrets_takes_the_password_and_key_file_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "cache-key"
    key_file.write_text(TEAM_KEY + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    monkeypatch.setenv("LOUPE_CACHE_KEY_FILE", str(key_file))
    monkeypatch.setenv("LOUPE_REDIS_PASSWORD", SECRET)
    clean, secrets = gather_secrets("rediss://loupe@cache.example.org:6380/0")
    assert clean == "rediss://loupe@cache.example.org:6380/0"
    assert secrets.redis_password == SECRET and secrets.team_key == TEAM_KEY.encode()


def test_the_ca_bundle_goes_with_the_secrets_for_rediss_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", encoding="utf-8")
    monkeypatch.setenv("LOUPE_REDIS_CA", str(pem))
    assert gather_secrets("rediss://cache:6380")[1].redis_ca_pem == pem.read_text(encoding="utf-8")
    assert gather_secrets("redis://127.0.0.1:6379")[1].redis_ca_pem is None


def test_an_unreadable_ca_bundle_is_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_bytes(b"\xff\xfe not PEM")
    monkeypatch.setenv("LOUPE_REDIS_CA", str(pem))
    with pytest.raises(BadInputError) as refused:
        gather_secrets(f"rediss://loupe:{SECRET}@cache:6380")
    one_sentence(str(refused.value))
    assert SECRET not in str(refused.value)


def test_no_secrets_write_no_file(tmp_path: Path) -> None:
    clean, secrets = gather_secrets("redis://127.0.0.1:6379")
    assert clean == "redis://127.0.0.1:6379" and secrets.empty
    write_secrets(tmp_path, secrets)
    assert not (tmp_path / SECRETS_FILE).exists()
    assert read_secrets(tmp_path).empty


def test_secrets_are_written_for_their_owner_only_and_read_back(tmp_path: Path) -> None:
    written = JobSecrets(SECRET, TEAM_KEY.encode() + b"\xff\x00", "-----BEGIN CERTIFICATE-----\n")
    write_secrets(tmp_path, written)
    path = tmp_path / SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = read_secrets(tmp_path)
    assert (back.redis_password, back.team_key, back.redis_ca_pem) == (
        written.redis_password,
        written.team_key,
        written.redis_ca_pem,
    )


MALFORMED_SECRETS = {
    "not json": f"password={SECRET}".encode(),
    "list": json.dumps([SECRET]).encode(),
    "missing key": json.dumps({"redis_password": SECRET, "team_key": None}).encode(),
    "number": json.dumps({"redis_password": 12345, "team_key": None, "redis_ca_pem": None}).encode(),
    "bad base64": json.dumps(
        {"redis_password": SECRET, "team_key": "%%" + TEAM_KEY, "redis_ca_pem": None}
    ).encode(),
    "not utf-8": b'{"redis_password": "'
    + SECRET.encode()
    + b'\xff", "team_key": null, "redis_ca_pem": null}',
    "deep": b"[" * 100_000,
}


@pytest.mark.parametrize("content", MALFORMED_SECRETS.values(), ids=MALFORMED_SECRETS.keys())
def test_malformed_secrets_are_refused_without_their_values(tmp_path: Path, content: bytes) -> None:
    (tmp_path / SECRETS_FILE).write_bytes(content)
    with pytest.raises(BadInputError) as refused:
        read_secrets(tmp_path)
    message = str(refused.value)
    one_sentence(message)
    assert SECRET not in message and TEAM_KEY not in message


def test_installed_secrets_are_what_the_cache_finds(
    acl_server: AclServer,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The driver's and every actor's step: secrets.json into the environment, then open_cache."""
    folder = tmp_path / "working_dir"
    folder.mkdir()
    clean, secrets = gather_secrets(acl_server.url(with_password=True))
    assert SECRET not in clean
    # A worker's own configuration naming a key file: the job's key replaces it.
    monkeypatch.setenv("LOUPE_CACHE_KEY_FILE", str(tmp_path / "a-worker's-key-file"))
    write_secrets(folder, JobSecrets(secrets.redis_password, TEAM_KEY.encode()))
    monkeypatch.chdir(folder)  # Ray unpacks the working_dir as each worker's current folder
    installed = install_secrets()
    assert os.environ["LOUPE_REDIS_PASSWORD"] == SECRET
    assert "LOUPE_CACHE_KEY_FILE" not in os.environ
    assert SECRET not in repr(installed) and TEAM_KEY not in repr(installed)

    key = find_team_key(shared=True)
    assert key is not None and key.source == "LOUPE_CACHE_KEY"
    monkeypatch.setenv("LOUPE_CACHE_KEY", TEAM_KEY)
    assert find_team_key(shared=True).secret == key.secret  # type: ignore[union-attr]
    cache = open_cache(clean)
    try:
        assert cache.available and round_trips(cache)
    finally:
        cache.close()


def test_an_installed_ca_bundle_is_named_in_the_environment(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    write_secrets(tmp_path, JobSecrets(redis_ca_pem=pem))
    install_secrets(tmp_path)
    named = Path(os.environ["LOUPE_REDIS_CA"])
    try:
        assert named.read_text(encoding="utf-8") == pem
        assert stat.S_IMODE(named.stat().st_mode) == 0o600
    finally:
        named.unlink()


# --- split_password ------------------------------------------------------------------------------


def test_a_semicolon_between_url_options_is_refused_without_the_password() -> None:
    """redis-py splits options on & only, so "db=1;password=pw" would keep the password in the
    URL that travels in the clear; such a URL is refused, in one sentence that does not show it."""
    from engine.cache.connect import split_password

    with pytest.raises(BadInputError) as refused:
        split_password("redis://host/0?db=1;password=pw")
    assert "&" in str(refused.value) and "pw" not in str(refused.value).replace("password", "")


@pytest.mark.parametrize(
    ("url", "clean", "password"),
    [
        ("redis://loupe:pw@host:6379/0", "redis://loupe@host:6379/0", "pw"),
        ("redis://:pw@host:6379", "redis://host:6379", "pw"),
        ("rediss://loupe:p%40ss%2Fw%3Fd%23@host:6380/1", "rediss://loupe@host:6380/1", "p@ss/w?d#"),
        ("redis://loupe:p@ss@host", "redis://loupe@host", "p@ss"),  # unencoded @: the last one ends it
        ("redis://loupe:%C3%A9t%C3%A9@host", "redis://loupe@host", "été"),
        ("redis://host:6379/0?password=pw", "redis://host:6379/0", "pw"),
        ("redis://host/0?db=1&password=pw&client_name=x", "redis://host/0?db=1&client_name=x", "pw"),
        ("redis://loupe:url-pw@host/0?password=query-pw", "redis://loupe@host/0", "url-pw"),
        ("unix://loupe:pw@/run/valkey.sock", "unix://loupe@/run/valkey.sock", "pw"),
        ("redis://loupe@host:6379", "redis://loupe@host:6379", None),
        ("redis://loupe:@host:6379", "redis://loupe:@host:6379", None),  # an empty password is none
        ("redis://[::1]:6379", "redis://[::1]:6379", None),
    ],
)
def test_split_password(url: str, clean: str, password: str | None) -> None:
    assert split_password(url) == (clean, password)
    if password:
        assert password not in clean


def test_split_password_takes_the_environments_when_the_url_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOUPE_REDIS_PASSWORD", SECRET)
    assert split_password("rediss://loupe@host:6380") == ("rediss://loupe@host:6380", SECRET)
    assert split_password("rediss://loupe:own@host:6380") == ("rediss://loupe@host:6380", "own")


@pytest.mark.parametrize(
    "url", [f"redis://h/0?pass%77ord={SECRET}", f"http://u:{SECRET}@h", f"redis://u:{SECRET}@h:port"]
)
def test_split_password_refuses_what_open_cache_refuses_without_the_password(url: str) -> None:
    with pytest.raises(BadInputError) as refused:
        split_password(url)
    assert SECRET not in str(refused.value)


# --- prepared_texts: the same rows and texts as Loupe's reader ----------------------------------

MULTILINGUAL = [
    "  Grüße aus Köln  ",
    "\u00a0non-breaking spaces\u00a0",
    "\ttabbed\t",
    "東京の天気は晴れです。",
    "  Москва — столица России ",
    None,
    "",
    "   ",
    "\u00a0\t\u3000",  # NBSP, tab, ideographic space: blank
    "emoji 🚀🔥 at the end 🎉 ",
    "“typographic quotes” and ‘single’ ",
    "\nnew line inside\nand around\n",
    "العربية من اليمين إلى اليسار",
    "\u200bzero width space\u200b",
    "a",
]


def readers_texts(texts: list[str | None], folder: Path) -> list[str]:
    path = folder / "rows.parquet"
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), path)
    return list(load_dataset(path, text_column="text").texts)


def test_prepared_texts_are_the_readers_texts(tmp_path: Path) -> None:
    expected = readers_texts(MULTILINGUAL, tmp_path)
    column = pa.array(MULTILINGUAL, pa.string())
    assert prepared_texts(column) == expected
    chunked = pa.chunked_array([column.slice(0, 5), column.slice(5, 5), column.slice(10)])
    assert prepared_texts(chunked) == expected
    assert prepared_texts(pa.array(MULTILINGUAL, pa.large_string())) == expected
    assert "Grüße aus Köln" in expected and "" not in expected


def test_prepared_texts_of_blank_rows_only() -> None:
    assert prepared_texts(pa.array([None, "", " \t\u00a0"], pa.string())) == []
    assert prepared_texts(pa.array([], pa.string())) == []
    assert prepared_texts(pa.chunked_array([], pa.string())) == []


SPACES = " \t\n\r\u00a0\u2007\u3000\u200b\u2028\x0b\x0c"


@settings(max_examples=40)
@given(
    st.lists(
        st.one_of(st.none(), st.text(alphabet=st.sampled_from(list(SPACES) + list("aé東🚀—"))), st.text()),
        min_size=1,
        max_size=12,
    )
)
def test_prepared_texts_are_the_readers_texts_for_any_text(tmp_path: Path, texts: list[str | None]) -> None:
    texts = [None if t is None else t.encode("utf-8", "replace").decode("utf-8") for t in texts]
    try:
        expected = readers_texts(texts, tmp_path)
    except BadInputError:  # the reader refuses a file with no text at all; so may the actor's batch
        expected = []
    assert prepared_texts(pa.array(texts, pa.string())) == expected


# --- Ray is imported only when a cluster command runs -------------------------------------------


def ray_modules_after(code: str, *args: str) -> list[str]:
    """The ``ray`` modules loaded once ``code`` has run in a fresh interpreter (with ``args``)."""
    script = code + "\nimport sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"')))


def test_ray_is_installed_so_the_import_checks_can_fail() -> None:
    assert importlib.util.find_spec("ray") is not None
    assert ray_modules_after("import ray") != []


def test_the_submitting_side_does_not_import_ray() -> None:
    code = "import engine.cluster.client, engine.cluster.spec, engine.cluster.progress, engine.cluster.access"
    code += (
        ", engine.cluster.secrets, engine.cluster.batches, engine.cluster.final_map, engine.cluster.driver"
    )
    assert ray_modules_after(code) == []


def test_loupe_help_does_not_import_ray() -> None:
    code = (
        "import contextlib, io, runpy, sys\n"
        "sys.argv = ['loupe', '--help']\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    runpy.run_module('desktop.launcher', run_name='__main__')\n"
        "from engine.cli import main\n"
        "main.build_parser()"
    )
    assert ray_modules_after(code) == []


def test_the_desktops_start_does_not_import_ray() -> None:
    args = argparse.Namespace(
        command="open", model="minilm", device="cpu", redis=None, no_cache=True, rows=None
    )
    code = (
        "import argparse\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from desktop.app import create_window, prepare_gui_process\n"
        "app = QApplication([])\n"
        f"window = create_window(argparse.Namespace(**{vars(args)!r}))\n"
        "prepare_gui_process()\n"
        "window.show()\n"
        "app.processEvents()\n"
        "window.close()\n"
        "window.bridge.shutdown()\n"
        "window.engine.close()\n"
        "window.engine.cache.close()"
    )
    assert ray_modules_after(code) == []


def test_a_job_file_written_here_is_what_the_secrets_leave_out(tmp_path: Path) -> None:
    """job.json carries the URL without its password: what Ray shows of the job can hold no secret."""
    clean, _ = gather_secrets(f"rediss://loupe:{SECRET}@cache:6380/0")
    text = a_job(redis_url=clean).to_json()
    assert SECRET not in text and base64.b64encode(SECRET.encode()).decode() not in text


def test_an_address_with_credentials_is_refused_without_echoing_them() -> None:
    from engine.cluster.access import ClusterAccessError, normalised_address

    with pytest.raises(ClusterAccessError) as refused:
        normalised_address("https://alice:s3cret-token@ray.example.org")
    assert "s3cret-token" not in str(refused.value) and "RAY_AUTH_TOKEN" in str(refused.value)


def test_an_error_line_is_one_line_whatever_the_message() -> None:
    from engine.cluster.progress import error_line, latest

    assert latest(error_line("The cache went away.\nTraceback (most recent call last): …"))[1] == (
        "The cache went away."
    )
