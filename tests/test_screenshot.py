"""A real screenshot under Xvfb (tests/screenshot.py) is not blank: the window, the map in
its label colours and the attention heatmap are on it."""

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


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="Xvfb is not installed (./dev installs it)")
def test_screenshot_under_xvfb_is_not_blank(tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env["LOUPE_HOME"] = str(tmp_path / "home")
    command = [
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 1600x1000x24",
        sys.executable,
        "tests/screenshot.py",
        str(out),
    ]
    done = subprocess.run(
        [*command, "--rows", "200"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=500
    )
    assert done.returncode == 0, done.stdout + done.stderr
    image = QImage(str(out)).convertToFormat(QImage.Format.Format_RGB32)
    assert (image.width(), image.height()) == (1600, 1000)
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    pixels = buffer.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width(), :3]
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 200, "a blank or flat screenshot has few colours"
    black = float((pixels.max(axis=2) < 10).mean())
    assert black < 0.5, "most of the screen is black: the window did not paint"
