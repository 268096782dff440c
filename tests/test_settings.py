"""Settings: typed, versioned, forgiving on load, and never holding a password."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np

from engine.cache.connect import open_cache
from engine.settings import SCHEMA_VERSION, Settings, load_settings, save_settings, settings_path


def test_defaults_without_a_file() -> None:
    assert load_settings() == Settings()


def test_round_trip_with_version_and_private_mode() -> None:
    path = save_settings(Settings(model="/models/mine", cache_maxmemory="256mb"))
    assert load_settings() == Settings(model="/models/mine", cache_maxmemory="256mb")
    assert json.loads(path.read_text())["version"] == SCHEMA_VERSION
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_redis_password_is_never_written() -> None:
    path = save_settings(Settings(redis_url="rediss://loupe:s3cret-pass@cache.example.test:6380/0"))
    text = path.read_text()
    assert "s3cret-pass" not in text
    assert load_settings().redis_url == "rediss://loupe@cache.example.test:6380/0"


def test_a_broken_or_odd_file_falls_back_to_defaults() -> None:
    path = settings_path()
    path.write_text("{not json")
    assert load_settings() == Settings()
    path.write_text(json.dumps({"version": 1, "model": 42, "device": "cpu", "unknown": True}))
    assert load_settings() == Settings(device="cpu")  # wrong type replaced, unknown key ignored


def test_the_embedded_cache_takes_its_memory_limit_from_the_settings(loupe_home: Path) -> None:
    save_settings(Settings(cache_maxmemory="64mb"))
    cache = open_cache()
    try:
        cache.set("emb", "loupe:v1:emb:probe", np.ones(3, np.float32))
        memory = cache.memory()
        assert memory is not None and memory[1] == 64 * 2**20
    finally:
        cache.close()


def test_the_command_line_takes_its_model_from_the_settings(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    save_settings(Settings(model=str(tmp_path / "no-such-model")))
    (tmp_path / "t.csv").write_text("text\nhello there\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    command = ["embed", str(tmp_path / "t.csv"), "--out", str(tmp_path / "o.npy")]
    done = subprocess.run(
        [sys.executable, "-m", "desktop.launcher", *command],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"No model folder at {tmp_path / 'no-such-model'}" in done.stderr
