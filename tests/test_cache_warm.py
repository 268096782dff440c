"""A fully cached ``loupe project`` finds its map from the texts alone: no torch, no model.

Each command runs as its own process under ``python -X importtime``, whose report on stderr
names every module the process imported. The first run of a CSV must import torch and
transformers (it embeds the rows; this is what keeps the test able to fail); the second run,
with the embeddings and the projection cached, must import neither — nor umap for a UMAP
map — and must write the very same CSV.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
ROWS = 40
MODEL_MODULES = {"torch", "transformers"}


def write_dataset(path: Path, rows: int) -> Path:
    """A CSV of ``rows`` real stdlib docstring paragraphs (column ``text``) with their categories."""
    from engine.data.demo_data import build_stdlib_dataset

    dataset = build_stdlib_dataset(max_rows=rows)
    assert len(dataset.texts) == rows
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(dataset.texts, dataset.labels, strict=True))
    return path


def project_with_importtime(data: Path, out: Path, method: str) -> set[str]:
    """Run ``loupe project`` headless under ``-X importtime``; the top-level packages it imported."""
    env = {name: value for name, value in os.environ.items() if name not in NO_DISPLAY}
    command = [sys.executable, "-X", "importtime", "-m", "desktop.launcher", "project", str(data)]
    command += ["--out", str(out), "--method", method, "--label-column", "label", "--device", "cpu"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}\nstderr:\n{done.stderr[-5000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-5000:]
    assert f"wrote {out}" in done.stderr, done.stderr[-5000:]
    modules = imported_packages(done.stderr)
    assert "engine" in modules, "no import-time report on stderr"
    return modules


def imported_packages(stderr: str) -> set[str]:
    """Top-level names from the ``import time: self | cumulative | module`` lines of ``stderr``."""
    packages = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "imported package":
                packages.add(name.split(".")[0])
    return packages


@pytest.mark.parametrize("method", ["pca", "umap"])
def test_cached_project_never_imports_the_model(tmp_path: Path, method: str) -> None:
    data = write_dataset(tmp_path / "docs.csv", ROWS)
    cold_out, warm_out = tmp_path / "cold.csv", tmp_path / "warm.csv"

    cold = project_with_importtime(data, cold_out, method)
    assert cold >= MODEL_MODULES, f"the first run did not embed: {sorted(MODEL_MODULES - cold)} not imported"
    if method == "umap":
        assert "umap" in cold

    warm = project_with_importtime(data, warm_out, method)
    assert not MODEL_MODULES & warm, f"the cached run imported {sorted(MODEL_MODULES & warm)}"
    if method == "umap":
        assert "umap" not in warm, "the cached run imported umap"
    assert warm_out.read_bytes() == cold_out.read_bytes()
    assert len(warm_out.read_text(encoding="utf-8").splitlines()) == ROWS + 1
