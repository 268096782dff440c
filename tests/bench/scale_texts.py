"""Real prose for the scale benchmarks, gathered offline: first paragraphs of docstrings.

The Python files of the standard library and of the installed site-packages are parsed with
``ast`` (never imported, so no module's code runs) and each module's, class's and function's
docstring gives its first paragraph, whitespace collapsed. Files are read in sorted order and
repeats dropped, so the same installation gives the same rows. Then the rows are embedded with
all-MiniLM-L6-v2 (every layer from one forward pass) and two layers kept.

    .venv/bin/python tests/bench/scale_texts.py --rows 50000 --save /tmp/scale_vectors.npy
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SPACES = re.compile(r"\s+")
_LARGEST_FILE = 2_000_000  # bytes; generated tables, not prose


def _python_files() -> Iterator[Path]:
    paths = sysconfig.get_paths()
    for folder in sorted({paths["stdlib"], paths["purelib"], paths["platlib"]}):
        yield from sorted(Path(folder).rglob("*.py"))


def _first_paragraphs(source: str) -> Iterator[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=True)
            if docstring:
                yield _SPACES.sub(" ", docstring.split("\n\n", 1)[0]).strip()


def gather_texts(rows: int) -> list[str]:
    """``rows`` distinct first paragraphs of at least five words (and at most 1,000 characters)."""
    seen: set[str] = set()
    texts: list[str] = []
    for path in _python_files():
        try:
            if path.stat().st_size > _LARGEST_FILE:
                continue
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for text in _first_paragraphs(source):
            if len(text.split()) >= 5 and len(text) <= 1000 and text not in seen:
                seen.add(text)
                texts.append(text)
                if len(texts) == rows:
                    return texts
    raise SystemExit(f"only {len(texts)} docstring paragraphs on this machine, not {rows}")


def embed(texts: list[str], layers: tuple[int, ...]) -> object:
    """``[len(layers), rows, 384]`` float32: the chosen hidden states of all-MiniLM-L6-v2, mean-pooled."""
    import numpy as np

    from engine.model.inference import embed_texts
    from engine.model.models import load_model, resolve_model

    model = load_model(resolve_model("minilm"), device="cpu")
    began = time.perf_counter()

    def report(done: int, total: int, message: str = "") -> None:
        if done % 2000 < 64 or done == total:
            print(f"  {message} {done}/{total} ({time.perf_counter() - began:.0f} s)", file=sys.stderr)

    every_layer = embed_texts(model, texts, all_layers=True, report=report).vectors  # [rows, L+1, d]
    return np.ascontiguousarray(np.stack([every_layer[:, layer] for layer in layers]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--save", type=Path, required=True, help=".npy for [2, rows, 384]; texts beside it")
    args = parser.parse_args()
    import numpy as np

    sys.path.insert(0, str(ROOT))
    began = time.perf_counter()
    texts = gather_texts(args.rows)
    print(f"{len(texts)} texts in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    args.save.with_suffix(".texts.json").write_text(json.dumps(texts))
    began = time.perf_counter()
    vectors = embed(texts, (1, -1))
    print(f"embedded in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    np.save(args.save, vectors)


if __name__ == "__main__":
    main()
