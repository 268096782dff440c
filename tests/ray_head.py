"""A real local Ray head with token authentication, a real Valkey with a password, and real data.

Helpers for the cluster tests and the cluster benchmark (not a conftest: only the modules that
start a head import this). Everything listens on 127.0.0.1 on ports chosen free at start, so two
suites on one machine do not collide (Ray's defaults, such as the Ray Client server's 10001 and
the dashboard agent's 52365, would). Each server runs in its own process group and is stopped by
its id, TERM then KILL, after which :meth:`LocalRayHead.stop` asserts that no process of it is
left: none in its session and none whose command line names its temporary folder. Also here:
``loupe`` run as a desktop runs it (a child process with its own LOUPE_HOME) and what its
refusals must look like.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
STOP_GRACE_S = 15.0
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
COMMAND_TIMEOUT_S = 240


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_port_range(count: int) -> tuple[int, int]:
    """``count`` consecutive loopback ports below the ephemeral range, all free a moment ago."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        first = rng.randrange(20_000, 32_000 - count)
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + count):
                    probe = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first, first + count - 1
    raise AssertionError(f"no {count} consecutive free ports found")


def processes_of(session_id: int | None, marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of live processes in session ``session_id`` or naming ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, session = fields[0], int(fields[3])
        if state != "Z" and (session == session_id or marker in cmdline):
            found.append((int(entry.name), cmdline.strip()[:200]))
    return found


def stop_group(process: subprocess.Popen[bytes], marker: str, grace_s: float = STOP_GRACE_S) -> list[str]:
    """TERM the process group led by ``process``; after ``grace_s`` KILL whatever of its session
    (or naming ``marker``) is still running. The command lines that needed a KILL.

    Ray's workers leave the head's process group but not its session, and they exit a moment
    after the raylet: the grace period waits for the whole session, not only the group.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (process.poll() is None or processes_of(process.pid, marker)):
        time.sleep(0.1)
    killed = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid, cmdline in processes_of(process.pid, marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(cmdline)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and processes_of(process.pid, marker):
        time.sleep(0.1)
    return killed


@dataclass
class LocalRayHead:
    """``ray start --head --block`` on 127.0.0.1 with token auth, in its own session."""

    num_cpus: int = 2
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    temp_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rh", dir="/tmp")))
    process: subprocess.Popen[bytes] | None = None
    killed: list[str] = field(default_factory=list)  # what stop() had to KILL after the grace

    def __post_init__(self) -> None:
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.loupe_home = self.temp_dir / "home"
        self.loupe_home.mkdir()
        self.ray_dir = self.temp_dir / "r"  # Ray's own folder: sockets need a short path

    @property
    def address(self) -> str:
        """The Jobs REST API, as ``loupe cluster --address`` takes it."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def log(self) -> Path:
        return self.temp_dir / "head.log"

    def environment(self) -> dict[str, str]:
        """The head's environment: the venv's ``python`` first on PATH, this checkout importable."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("RAY_", "LOUPE_")) and name not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            PYTHONPATH=str(ROOT),
            LOUPE_HOME=str(self.loupe_home),
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=self.token,
            RAY_USAGE_STATS_ENABLED="0",
        )
        return env

    def command(self) -> list[str]:
        first_worker, last_worker = free_port_range(64)
        ports = {
            "--port": self.gcs_port,
            "--dashboard-port": self.dashboard_port,
            "--node-manager-port": free_port(),
            "--object-manager-port": free_port(),
            "--runtime-env-agent-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--metrics-export-port": free_port(),
            "--ray-client-server-port": free_port(),
            "--min-worker-port": first_worker,
            "--max-worker-port": last_worker,
        }
        command = [str(VENV_BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1"]
        command += [f"{option}={port}" for option, port in ports.items()]
        command += [
            "--dashboard-host=127.0.0.1",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            "--include-dashboard=true",
            f"--temp-dir={self.ray_dir}",
            "--disable-usage-stats",
        ]
        return command

    def start(self, timeout_s: float = 90.0) -> LocalRayHead:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                cwd=self.temp_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.dashboard_status()
            if status == 401:
                break
            assert self.process.poll() is None, (
                f"ray start exited {self.process.returncode}:\n{self.log_tail()}"
            )
            assert time.monotonic() < deadline, f"the Ray dashboard did not answer:\n{self.log_tail()}"
            time.sleep(0.3)
        assert self.dashboard_status(self.token) == 200, self.log_tail()
        return self

    def dashboard_status(self, token: str | None = None) -> int | None:
        """HTTP status of ``GET /api/jobs/`` (None while nothing answers)."""
        request = urllib.request.Request(f"{self.address}/api/jobs/")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the connection's socket
            return int(exc.code)
        except (OSError, urllib.error.URLError):
            return None

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the cluster knows, read with the token."""
        request = urllib.request.Request(
            f"{self.address}/api/jobs/", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            jobs: list[dict[str, Any]] = json.loads(answer.read())
        return jobs

    def log_tail(self, chars: int = 6000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        return text[-chars:]

    def files(self) -> Iterator[Path]:
        """Every file Ray wrote under its folder (logs, session files, unpacked packages)."""
        for path in self.ray_dir.rglob("*"):
            if path.is_file() and not path.is_symlink():
                yield path

    def worker_pids(self, name_part: str) -> list[int]:
        """Pids of this head's processes whose command line contains ``name_part``."""
        assert self.process is not None
        return [pid for pid, cmdline in processes_of(self.process.pid, "\0never\0") if name_part in cmdline]

    def stop(self) -> None:
        """Stop the whole process group; assert nothing of this head is left running."""
        if self.process is None:
            return
        self.killed = stop_group(self.process, str(self.temp_dir))
        left = processes_of(self.process.pid, str(self.temp_dir))
        self.process = None
        assert not left, f"processes of the Ray head left running: {left}"
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayHead:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class ValkeyWithPassword:
    """A ``valkey-server`` on a free loopback port whose default user needs ``password``."""

    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vk", dir="/tmp")))
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    def url(self, *, with_password: bool = False) -> str:
        """The URL for ``--redis``; the password goes by LOUPE_REDIS_PASSWORD unless asked for."""
        secret = f":{self.password}@" if with_password else ""
        return f"redis://{secret}127.0.0.1:{self.port}/0"

    def start(self) -> ValkeyWithPassword:
        import redis

        from engine.cache.server import find_server_binary

        self.port = self.port or free_port()  # a restart keeps the URL the job was given
        command = [str(find_server_binary()), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--requirepass", self.password, "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.directory)]
        with (self.directory / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = self.client()
        deadline = time.monotonic() + 15
        try:
            while True:
                with contextlib.suppress(redis.RedisError, OSError):
                    if client.ping():
                        return self
                assert self.process.poll() is None, (self.directory / "server.log").read_text()
                assert time.monotonic() < deadline, (self.directory / "server.log").read_text()
                time.sleep(0.05)
        finally:
            client.close()

    def client(self) -> Any:
        import redis

        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=5,
            socket_connect_timeout=5,
        )

    def keys(self, pattern: str) -> set[str]:
        client = self.client()
        try:
            return {key.decode() for key in client.scan_iter(match=pattern, count=1000)}
        finally:
            client.close()

    def flush(self) -> None:
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, str(self.directory), grace_s=5)
            left = processes_of(self.process.pid, str(self.directory))
            self.process = None
            assert not left, f"valkey processes left running: {left}"

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# -- loupe as a desktop runs it ---------------------------------------------------------


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """A desktop's environment: this checkout importable, its own LOUPE_HOME, headless."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RAY_", "LOUPE_")) and name not in NO_DISPLAY
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(PYTHONPATH=str(ROOT), LOUPE_HOME=str(home), **extra)
    return env


def loupe(
    args: list[str], env: dict[str, str], *, timeout: float = COMMAND_TIMEOUT_S, importtime: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "desktop.launcher", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def job_id_in(text: str) -> str:
    found = re.findall(r"raysubmit_\w+", text)
    assert found, f"no job id in the output:\n{text[-3000:]}"
    return found[-1]


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one sentence of a refused command, checked: exit 2, one line, no traceback."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def read_coords(path: Path) -> list[tuple[float, float]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(float(row["x"]), float(row["y"])) for row in csv.DictReader(handle)]


# -- real multilingual data ------------------------------------------------------------------

# Real sentences in several scripts: accented Latin, Cyrillic, Greek, CJK, Arabic, Hebrew,
# Devanagari, and emoji. Combined with real English docstring paragraphs from the standard
# library (the demo dataset), each row a distinct text.
SENTENCES = (
    ("fr", "Le café est fermé le dimanche, mais la boulangerie ouvre dès sept heures."),
    ("fr", "Où se trouve la gare la plus proche, s'il vous plaît ?"),
    ("es", "El niño comió una manzana debajo del árbol antes de la tormenta."),
    ("es", "¿Cuántos años tenía tu abuela cuando llegó a Barcelona?"),
    ("de", "Die Straßenbahn fährt heute wegen Bauarbeiten nur bis zum Hauptbahnhof."),
    ("de", "Könnten Sie mir bitte erklären, wie diese Übung funktioniert?"),
    ("pt", "A reunião foi adiada para amanhã porque o diretor está doente."),
    ("pl", "Zażółć gęślą jaźń, powiedział nauczyciel, pokazując polskie litery."),
    ("cs", "Příliš žluťoučký kůň úpěl ďábelské ódy na kraji lesa."),
    ("tr", "Yarın sabah erkenden İstanbul'a gitmek için otobüse bineceğim."),
    ("ru", "Москва — столица России и крупнейший город страны."),
    ("ru", "Я давно не читал такой интересной книги о путешествиях."),
    ("uk", "Київ розташований на березі Дніпра і має багату історію."),
    ("el", "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας και μία από τις αρχαιότερες πόλεις."),
    ("el", "Το καλοκαίρι πηγαίνουμε στη θάλασσα κάθε μέρα."),
    ("zh", "我今天早上在公园里散步，看到很多人在打太极拳。"),
    ("zh", "这本书的作者是一位非常有名的历史学家。"),
    ("ja", "東京の桜は三月の終わりごろに咲き始めます。"),
    ("ja", "昨日は雨が降ったので、家で映画を見ました。"),
    ("ko", "서울은 한국의 수도이며 인구가 가장 많은 도시입니다."),
    ("ar", "القاهرة هي عاصمة مصر وأكبر مدينة في العالم العربي."),
    ("ar", "أحب أن أقرأ الكتب في المساء بعد العمل."),
    ("he", "ירושלים היא עיר עתיקה עם היסטוריה ארוכה ומרתקת."),
    ("hi", "दिल्ली भारत की राजधानी है और यहाँ बहुत सारे ऐतिहासिक स्मारक हैं।"),
    ("emoji", "Happy birthday! 🎉🎂 Hope your day is full of sunshine ☀️ and friends 👫"),
    ("emoji", "Le train est en retard encore une fois 😤🚆 — on arrive vers 20 h."),
    ("emoji", "今日はラーメンを食べた 🍜😋 とても美味しかった！"),
    ("vi", "Hà Nội là thủ đô của Việt Nam, nổi tiếng với phở và hồ Hoàn Kiếm."),
)


def multilingual_rows(rows: int) -> list[tuple[str, str]]:
    """``rows`` distinct (text, label) pairs: the sentences above, then demo docstrings.

    Docstring paragraphs are real English; every tenth is given a real sentence from another
    script in front, so the whole set mixes scripts throughout, not only at the start. Past the
    docstrings there are (about 4,000), each is used again after another sentence.
    """
    from engine.data.demo_data import build_stdlib_dataset

    out = [(text, language) for language, text in SENTENCES]
    seen = {text for text, _ in out}
    demo = build_stdlib_dataset(max_rows=max(rows, 4000))
    for round_number in range(len(SENTENCES)):
        for index, (text, label) in enumerate(zip(demo.texts, demo.labels, strict=True)):
            if len(out) >= rows:
                break
            if round_number == 0 and index % 10:
                row = (text, label)
            else:
                language, sentence = SENTENCES[(index // 10 + round_number) % len(SENTENCES)]
                row = (f"{sentence} {text}", language)
            if row[0] not in seen:
                seen.add(row[0])
                out.append(row)
    assert len(out) == rows, f"only {len(out)} distinct rows"
    return out


@dataclass(frozen=True)
class DatasetFiles:
    csv: Path
    jsonl: Path
    parquet: Path
    parquet_folder: Path
    rows: int


def write_dataset_files(folder: Path, rows: int, name: str = "docs") -> DatasetFiles:
    """The same rows (columns ``text``, ``label``) as CSV, JSONL, Parquet and a folder of Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pairs = multilingual_rows(rows)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"{name}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(pairs)
    jsonl_path = folder / f"{name}.jsonl"
    with jsonl_path.open("w", encoding="utf-8") as handle:
        for text, label in pairs:
            handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    table = pa.table({"text": [t for t, _ in pairs], "label": [label for _, label in pairs]})
    parquet_path = folder / f"{name}.parquet"
    pq.write_table(table, parquet_path)
    parts = folder / f"{name}_parts"
    parts.mkdir(exist_ok=True)
    step = -(-rows // 4)
    for part, start in enumerate(range(0, rows, step)):
        pq.write_table(table.slice(start, step), parts / f"part-{part:02d}.parquet")
    return DatasetFiles(csv_path, jsonl_path, parquet_path, parts, rows)
