"""``loupe self-test`` and ``loupe --version`` (issue 17), run as real subprocesses.

The command runs as ``python -m desktop.launcher`` from a folder outside the source tree, with no
display variables, the test's private Loupe home and the suite's numba cache (conftest), so
only the first run on a machine compiles UMAP's kernels.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.cli.self_test import CHECKS, VECTORS_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "resources" / "self_test_vectors.json"
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
LINE = re.compile(
    r"^(?P<name>[a-z ]+?) +(?P<verdict>ok|skip|FAIL) +(?P<seconds>\d+\.\d\d) s  (?P<detail>.+)$"
)


def run_loupe(*args: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in NO_DISPLAY}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-m", "desktop.launcher", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def check_lines(stdout: str) -> dict[str, re.Match[str]]:
    lines = stdout.strip().splitlines()
    assert len(lines) == len(CHECKS) + 1, stdout
    matched = {}
    for line in lines[:-1]:
        match = LINE.match(line)
        assert match, f"not a check line: {line!r}"
        matched[match["name"]] = match
    assert list(matched) == [name for name, _ in CHECKS]
    return matched


def test_self_test_passes_every_check_in_one_line_each(loupe_home: Path, tmp_path: Path) -> None:
    result = run_loupe("self-test", cwd=tmp_path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    lines = check_lines(result.stdout)
    assert all(match["verdict"] == "ok" for match in lines.values()), result.stdout
    assert re.fullmatch(r"self-test passed: 5 checks in \d+\.\d s", result.stdout.strip().splitlines()[-1])
    assert "max |difference|" in lines["embeddings"]["detail"]
    # The kernels went to (or came from) the numba cache the suite configures, not somewhere else.
    assert os.environ["NUMBA_CACHE_DIR"] in lines["umap"]["detail"]
    assert "answered identify" in lines["engine process"]["detail"]
    # The server ran in the self-test's own temporary folder and is gone: the home holds none.
    assert not (loupe_home / "cache" / "valkey.sock").exists()


def test_a_wrong_reference_vector_fails_the_embedding_check_alone(loupe_home: Path, tmp_path: Path) -> None:
    reference = json.loads(VECTORS.read_text(encoding="utf-8"))
    reference["vectors"][2][7] += 2e-5  # just past the 1e-5 the check allows
    broken = tmp_path / "vectors.json"
    broken.write_text(json.dumps(reference, ensure_ascii=False), encoding="utf-8")

    result = run_loupe("self-test", cwd=tmp_path, **{VECTORS_VARIABLE: str(broken)})

    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    lines = check_lines(result.stdout)
    failed = [name for name, match in lines.items() if match["verdict"] == "FAIL"]
    assert failed == ["embeddings"], result.stdout
    assert "on text 3" in lines["embeddings"]["detail"]
    assert result.stdout.strip().splitlines()[-1].startswith("self-test FAILED in ")
    assert result.stdout.strip().endswith(": embeddings")


def test_an_unreadable_reference_is_one_sentence(loupe_home: Path, tmp_path: Path) -> None:
    """Only the embedding check runs here (in this process): the others are the tests above."""
    from engine.cli.self_test import check_embeddings, run_check

    missing = tmp_path / "absent.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(VECTORS_VARIABLE, str(missing))
        result = run_check("embeddings", check_embeddings, tmp_path)
    assert not result.passed
    assert result.detail.startswith(f"The reference vectors {missing} cannot be read")


def test_the_cache_server_check_is_skipped_off_linux(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """macOS and Windows cache in memory (no /proc, no fcntl): a skip, which fails nothing."""
    from engine.cli.self_test import check_cache_server, run_check

    monkeypatch.setattr(sys, "platform", "darwin")
    result = run_check("cache server", check_cache_server, tmp_path)
    assert result.passed and result.skipped
    assert result.line().split()[2] == "skip"
    assert "darwin the cache is in memory" in result.detail


def test_version_prints_the_projects_version(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    result = run_loupe("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"loupe {version}\n"


def test_the_reference_vectors_were_made_by_sentence_transformers() -> None:
    """The file says what made it, and holds what the script that makes it would write."""
    reference = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert reference["made_by"].startswith("sentence-transformers ")
    from tests.make_self_test_vectors import TEXTS

    assert reference["texts"] == list(TEXTS)
    assert [len(vector) for vector in reference["vectors"]] == [384, 384, 384]
