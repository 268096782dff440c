"""Image-approval checks: a rendering compared with an approved PNG, within a tolerance.

The approved images live in ``tests/approved/``. A rendering passes when it has the same size
and differs from the approved one only as much as anti-aliasing and font hinting move pixels:
a small mean difference, and few pixels that changed a lot. A failure writes the rendering and
a difference image next to the test's temporary files and names them, so a person can look.

To approve a deliberate change, look at the new rendering, then rerun with ``LOUPE_APPROVE=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

APPROVED = Path(__file__).parent / "approved"
MEAN_TOLERANCE = 3.0  # mean absolute difference per channel, out of 255
CHANGED_TOLERANCE = 0.01  # share of pixels allowed to differ by more than CHANGED_LEVEL
CHANGED_LEVEL = 80


def read_png(path: Path) -> npt.NDArray[np.uint8]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def assert_looks_like(rendered: Path, name: str, scratch: Path) -> None:
    """``rendered`` (a PNG) matches ``tests/approved/<name>.png`` within the tolerances."""
    approved = APPROVED / f"{name}.png"
    if os.environ.get("LOUPE_APPROVE") == "1":
        approved.write_bytes(rendered.read_bytes())
        return
    assert approved.is_file(), f"no approved {approved}: look at {rendered}, then run with LOUPE_APPROVE=1"
    new, old = read_png(rendered), read_png(approved)
    assert new.shape == old.shape, f"{name}: {new.shape[1::-1]}, approved {old.shape[1::-1]} ({rendered})"
    difference = np.abs(new.astype(np.int16) - old.astype(np.int16))
    mean = float(difference.mean())
    changed = float((difference.max(axis=2) > CHANGED_LEVEL).mean())
    if mean > MEAN_TOLERANCE or changed > CHANGED_TOLERANCE:
        diff_path = scratch / f"{name}-difference.png"
        Image.fromarray((255 - np.minimum(difference * 4, 255)).astype(np.uint8)).save(diff_path)
        raise AssertionError(
            f"{name} looks different from the approved image: mean difference {mean:.2f} "
            f"(tolerance {MEAN_TOLERANCE}), {changed:.2%} of pixels changed a lot (tolerance "
            f"{CHANGED_TOLERANCE:.0%}). Rendering: {rendered}; difference: {diff_path}."
        )
