"""Settings: typed, versioned, forgiving on load, and never holding a password."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import numpy as np
import pytest

from engine.maps.projection import ProjectionParams
from engine.user.settings import (
    SCHEMA_VERSION,
    Settings,
    default_projection,
    load_settings,
    open_configured_cache,
    save_settings,
    settings_path,
)

# A settings file exactly as Loupe 0.1 (schema version 1) wrote it.
V1_FILE = """{
  "version": 1,
  "model": "/models/mine",
  "device": "cpu",
  "redis_url": "redis://loupe@cache.example.test:6379/0",
  "cache_maxmemory": "256mb",
  "gelf_url": "",
  "recent_files": ["/data/a.csv", "/data/b.parquet"],
  "window_geometry": "AdnQywADAAA=",
  "window_state": ""
}"""


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
    path.write_text(json.dumps({"version": 2, "layer": True, "theme": "purple", "pooling": "median"}))
    assert load_settings() == Settings()  # a bool is no layer; values outside their set replaced


def test_a_version_1_file_is_migrated_and_keeps_its_values() -> None:
    settings_path().write_text(V1_FILE)
    loaded = load_settings()
    assert loaded == Settings(
        model="/models/mine",
        device="cpu",
        redis_url="redis://loupe@cache.example.test:6379/0",
        cache_maxmemory="256mb",
        recent_files=["/data/a.csv", "/data/b.parquet"],
    )  # the window's layout is the desktop's now: tests/test_settings_layout.py
    # What version 1 always did: UMAP with its defaults, seed 42, last layer, the model's pooling.
    assert (loaded.pooling, loaded.layer, loaded.theme) == ("", -1, "system")
    assert default_projection(loaded) == ProjectionParams(method="umap", seed=42)
    assert loaded.projection_params == {"n_neighbors": 15, "min_dist": 0.1, "spread": 1.0, "metric": "cosine"}
    save_settings(loaded)
    saved = json.loads(settings_path().read_text())
    assert saved["version"] == 3 and "window_geometry" not in saved and "window_state" not in saved
    assert load_settings() == loaded


def test_version_2_fields_round_trip() -> None:
    chosen = Settings(
        pooling="cls",
        layer=3,
        projection_method="tsne",
        projection_params={"perplexity": 12.0, "learning_rate": "auto"},
        projection_seed=7,
        theme="dark",
    )
    save_settings(chosen)
    assert load_settings() == chosen
    assert default_projection(chosen) == ProjectionParams.from_options("tsne", {"perplexity": 12.0}, seed=7)


def test_bad_stored_projection_values_fall_back_to_defaults_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings_path().write_text(
        json.dumps({"version": 2, "projection_params": {"n_neighbors": "many", "min_dist": 0.3, "bogus": 1}})
    )
    with caplog.at_level(logging.WARNING, logger="engine.user.settings"):
        params = default_projection(load_settings())
    assert params == ProjectionParams.from_options("umap", {"min_dist": 0.3})  # the good one is kept
    assert "n_neighbors must be a number" in caplog.text and "bogus" in caplog.text
    # Each fine alone, impossible together: the method's defaults.
    assert (
        default_projection(Settings(projection_params={"min_dist": 0.9, "spread": 0.5})) == ProjectionParams()
    )
    # A bad seed or method never raises either.
    assert default_projection(Settings(projection_seed=-1)) == ProjectionParams()
    assert default_projection(Settings(projection_method="mds")) == ProjectionParams()


def test_the_embedded_cache_takes_its_memory_limit_from_the_settings(loupe_home: Path) -> None:
    save_settings(Settings(cache_maxmemory="64mb"))
    cache = open_configured_cache()
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
