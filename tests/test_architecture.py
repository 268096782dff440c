"""The dependency rule: ``engine`` never imports Qt, pyqtgraph or ``desktop`` (import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_engine_and_cli_help_load_without_qt_or_torch() -> None:
    code = (
        "import sys, engine.core.engine, engine.cli.main; engine.cli.main.build_parser();"
        "heavy = {'PySide6', 'pyqtgraph', 'torch', 'transformers', 'umap'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
