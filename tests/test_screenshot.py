"""A real screenshot under Xvfb (tests/screenshot.py) is not blank: the window, the map in
its label colours and the attention heatmap are on it. So are the progressive map's
(tests/bench/progressive_screenshot.py): the sample's map, rows being placed, the final map."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[1]
NO_XVFB = shutil.which("xvfb-run") is None
XVFB = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"]


def _xvfb_environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env["LOUPE_HOME"] = str(tmp_path / "home")
    return env


def _pixels(path: Path) -> np.ndarray:
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    # A copy: the buffer is the image's memory, freed with it when this returns.
    return buffer.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width(), :3].copy()


def _assert_painted(pixels: np.ndarray) -> None:
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 200, "a blank or flat screenshot has few colours"
    black = float((pixels.max(axis=2) < 10).mean())
    assert black < 0.5, "most of the screen is black: the window did not paint"


@pytest.mark.skipif(NO_XVFB, reason="Xvfb is not installed (./dev installs it)")
def test_screenshot_under_xvfb_is_not_blank(tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    command = [*XVFB, sys.executable, "tests/screenshot.py", str(out), "--rows", "200"]
    done = subprocess.run(
        command, cwd=ROOT, env=_xvfb_environment(tmp_path), capture_output=True, text=True, timeout=500
    )
    assert done.returncode == 0, done.stdout + done.stderr
    pixels = _pixels(out)
    assert pixels.shape[:2] == (1000, 1600)
    _assert_painted(pixels)


@pytest.mark.skipif(NO_XVFB, reason="Xvfb is not installed (./dev installs it)")
def test_progressive_screenshots_under_xvfb_show_the_map_at_each_stage(tmp_path: Path) -> None:
    # 600 of the demo's rows, progressive above 200: a sample of 100 rows, the rest in ten steps.
    # PCA: UMAP's first fit in a fresh LOUPE_HOME compiles for a minute or more.
    command = [*XVFB, sys.executable, "tests/bench/progressive_screenshot.py", str(tmp_path / "shots")]
    options = ["--rows", "600", "--above", "200", "--method", "pca", "--home", str(tmp_path / "home")]
    done = subprocess.run(
        [*command, *options],
        cwd=ROOT,
        env=_xvfb_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Placing rows: 100 of 600" in done.stdout, done.stdout  # the sample's map, nothing placed
    for name in ("1-sample", "2-placing", "3-final"):
        _assert_painted(_pixels(tmp_path / "shots" / f"{name}.png"))
