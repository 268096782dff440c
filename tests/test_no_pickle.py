"""DESIGN §6: nothing in engine/ or desktop/ reads data back with a pickle-based format.

The scan parses each file (so a module name inside a string, like the stdlib names in the demo
data, is not an import) and also greps the text for the two keyword arguments that switch
pickling on. Ruff's S301 (pickle calls) and S403 (pickle imports) guard the same line at lint
time; the last tests check that the project's configuration really enables them.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_MODULES = frozenset({"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal"})
FORBIDDEN_MODULES |= {"msgpack_numpy", "joblib"}
TEXT_PATTERNS = {
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "weights_only=False": re.compile(r"weights_only\s*=\s*False"),
    "read_pickle": re.compile(r"\bread_pickle\s*\("),
}
NP_NAMES = {"np", "numpy"}


def _root_module(name: str) -> str:
    return name.split(".")[0]


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Every pickle-ish import or use in ``source``, as 'file:line: what'."""
    found: list[str] = []
    for label, pattern in TEXT_PATTERNS.items():
        for match in pattern.finditer(source):
            found.append(f"{filename}:{source.count(chr(10), 0, match.start()) + 1}: {label}")
    tree = ast.parse(source, filename)
    numpy_load_aliases: set[str] = set()  # names bound by `from numpy import load [as x]`
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _root_module(node.module) == "numpy":
            numpy_load_aliases |= {alias.asname or alias.name for alias in node.names if alias.name == "load"}
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _root_module(alias.name) in FORBIDDEN_MODULES:
                    found.append(f"{filename}:{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if _root_module(node.module) in FORBIDDEN_MODULES:
                found.append(f"{filename}:{line}: from {node.module} import ...")
            for alias in node.names:
                if f"{node.module}.{alias.name}" in FORBIDDEN_MODULES or alias.name in FORBIDDEN_MODULES:
                    found.append(f"{filename}:{line}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Call):
            func = node.func
            # __import__("pickle"), importlib.import_module("pickle")
            dynamic = (isinstance(func, ast.Name) and func.id == "__import__") or (
                isinstance(func, ast.Attribute) and func.attr == "import_module"
            )
            target = node.args[0] if node.args else None
            if (
                dynamic
                and isinstance(target, ast.Constant)
                and _root_module(str(target.value)) in FORBIDDEN_MODULES
            ):
                found.append(f"{filename}:{line}: dynamic import of {target.value!r}")
            # np.load(...) / numpy.load(...) / load(...) from numpy: must say allow_pickle=False
            is_np_load = (
                isinstance(func, ast.Attribute)
                and func.attr == "load"
                and isinstance(func.value, ast.Name)
                and func.value.id in NP_NAMES
            ) or (isinstance(func, ast.Name) and func.id in numpy_load_aliases)
            if is_np_load and not _is_constant(_keyword(node, "allow_pickle"), False):
                found.append(f"{filename}:{line}: np.load without allow_pickle=False")
            # torch.load(...) must say weights_only=True (its default changed across versions)
            is_torch_load = (
                isinstance(func, ast.Attribute)
                and func.attr == "load"
                and isinstance(func.value, ast.Name)
                and func.value.id == "torch"
            )
            if is_torch_load and not _is_constant(_keyword(node, "weights_only"), True):
                found.append(f"{filename}:{line}: torch.load without weights_only=True")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in FORBIDDEN_MODULES  # pickle.loads even without a visible import
        ):
            found.append(f"{filename}:{line}: {node.value.id}.{node.attr}")
    return found


def source_files() -> list[Path]:
    files = sorted(p for folder in ("engine", "desktop") for p in (ROOT / folder).rglob("*.py"))
    return [p for p in files if "__pycache__" not in p.parts]


def test_the_scan_covers_the_packages() -> None:
    files = source_files()
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert {"engine/cache/codec.py", "engine/cache/store.py", "engine/core/engine.py"} <= names
    assert any(name.startswith("desktop/") for name in names)


def test_no_pickle_in_engine_or_desktop() -> None:
    found = []
    for path in source_files():
        found += violations(path.read_text("utf-8"), str(path.relative_to(ROOT)))
    assert found == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle",
        "import os, pickle as p",
        "import _pickle",
        "from pickle import loads",
        "import dill",
        "import cloudpickle",
        "import shelve",
        "import marshal",
        "import msgpack_numpy",
        "import joblib",
        "from joblib import load",
        "from sklearn.externals import joblib",
        "m = __import__('pickle')",
        "import importlib\nm = importlib.import_module('dill')",
        "x = pickle.loads(b'')",
        "import numpy as np\nnp.load('f.npy')",
        "import numpy as np\nnp.load('f.npy', allow_pickle=True)",
        "import numpy\nnumpy.load('f.npz', mmap_mode='r')",
        "from numpy import load\nload('f.npy')",
        "from numpy import load as np_load\nnp_load('f.npy')",
        "import torch\ntorch.load('w.pt')",
        "import torch\ntorch.load('w.pt', weights_only=False)",
        "import pandas as pd\npd.read_pickle('f.pkl')",
        "import numpy as np\nnp.save('f.npy', x, allow_pickle=True)",
    ],
)
def test_the_scan_catches_each_pattern(snippet: str) -> None:
    assert violations(snippet) != []


@pytest.mark.parametrize(
    "snippet",
    [
        "import numpy as np\nnp.load('f.npy', allow_pickle=False)",
        "import numpy as np\nnp.save('f.npy', x, allow_pickle=False)",
        "import torch\ntorch.load('w.pt', weights_only=True)",
        "MODULES = ['pickle', 'shelve', 'marshal']",
        "import json\njson.loads('{}')",
        "from safetensors.torch import load_file",
    ],
)
def test_the_scan_allows_safe_code(snippet: str) -> None:
    assert violations(snippet) == []


def _lint_config() -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    lint = config["tool"]["ruff"].get("lint", {})
    assert isinstance(lint, dict)
    return lint


def _covers(selector: str, rule: str) -> bool:
    """Whether a ruff selector (ALL, S, S3, S30, S301) covers ``rule``."""
    return selector == "ALL" or rule.startswith(selector)


@pytest.mark.parametrize("rule", ["S301", "S403"])
def test_ruff_pickle_rules_are_enabled(rule: str) -> None:
    lint = _lint_config()
    selected = [*lint.get("select", []), *lint.get("extend-select", [])]
    ignored = [*lint.get("ignore", []), *lint.get("extend-ignore", [])]
    assert any(_covers(s, rule) for s in selected), f"{rule} is not selected"
    assert not any(_covers(s, rule) for s in ignored), f"{rule} is ignored"
    per_file = lint.get("per-file-ignores", {})
    assert isinstance(per_file, dict)
    for pattern, rules in per_file.items():
        if any(_covers(s, rule) for s in rules):
            # Only tests may be exempt; engine/ and desktop/ must stay covered.
            assert pattern.startswith("tests/"), f"{rule} ignored for {pattern}"


@pytest.mark.parametrize(
    "rule",
    [
        "S301",
        "S403",
    ],
)
def test_ruff_reports_pickle_in_engine_code(rule: str) -> None:
    """The configuration, as ruff reads it, flags the rule in a file under engine/."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        pytest.skip("ruff is not installed in this environment")
    probe = "import pickle\n\n\ndef read(data: bytes) -> object:\n    return pickle.loads(data)\n"
    done = subprocess.run(
        [str(ruff), "check", "--no-cache", "--output-format", "json", "--stdin-filename",
         str(ROOT / "engine" / "probe_pickle.py"), "-"],
        input=probe, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    codes = {finding["code"] for finding in json.loads(done.stdout)}
    assert rule in codes, codes
