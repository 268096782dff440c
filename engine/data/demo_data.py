"""The demo dataset: first paragraphs of the installed Python standard library's docstrings.

Every machine that runs Loupe has this text offline, it is real prose written by many hands,
and its modules fall into human categories (the chapters of the Library Reference), which
gives the plot something to show. The source files are read and parsed with :mod:`ast`;
no standard-library module is ever imported, because some of them act on import
(``antigravity`` opens a browser, ``this`` prints, ``tkinter`` wants a display).
"""

from __future__ import annotations

import ast
import gc
import hashlib
import os
import re
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from engine.data.datasets import Dataset

DATASET_NAME = "python-stdlib-docstrings"
MIN_TEXT_LENGTH = 20
OTHER = "Other"

# Top-level modules grouped roughly by the chapters of the Python Library Reference.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Text processing": (
        "string", "re", "sre_compile", "sre_constants", "sre_parse", "difflib", "textwrap",
        "unicodedata", "stringprep", "codecs", "struct",
    ),
    "Data types": (
        "datetime", "calendar", "collections", "heapq", "bisect", "array", "weakref", "types", "copy",
        "pprint", "reprlib", "enum", "graphlib", "zoneinfo",
    ),
    "Numbers & math": ("numbers", "math", "cmath", "decimal", "fractions", "random", "statistics"),
    "Functional": ("itertools", "functools", "operator"),
    "Files & OS": (
        "pathlib", "os", "posixpath", "ntpath", "genericpath", "io", "shutil", "glob", "fnmatch",
        "tempfile", "stat", "filecmp", "fileinput", "linecache", "time", "platform", "errno", "ctypes",
        "pty", "tty", "pipes",
    ),
    "Persistence & formats": (
        "json", "csv", "configparser", "tomllib", "plistlib", "sqlite3", "dbm", "shelve", "pickle",
        "pickletools", "copyreg", "marshal", "netrc", "xdrlib",
    ),
    "Compression & archives": ("zlib", "gzip", "bz2", "lzma", "zipfile", "tarfile"),
    "Concurrency": (
        "threading", "multiprocessing", "concurrent", "subprocess", "sched", "queue", "asyncio",
        "contextvars",
    ),
    "Networking & internet": (
        "socket", "ssl", "select", "selectors", "signal", "mmap", "email", "mailbox", "mailcap", "http",
        "urllib", "nturl2path", "ftplib", "poplib", "imaplib", "smtplib", "smtpd", "nntplib", "telnetlib",
        "xmlrpc", "ipaddress", "socketserver", "asyncore", "asynchat", "wsgiref", "uuid", "webbrowser",
        "mimetypes", "base64", "binascii", "quopri", "uu", "html", "xml", "cgi", "cgitb",
    ),
    "Multimedia": ("wave", "aifc", "sunau", "chunk", "colorsys", "imghdr", "sndhdr"),
    "Development & debugging": (
        "typing", "pydoc", "pydoc_data", "doctest", "unittest", "pdb", "bdb", "cProfile", "profile",
        "pstats", "timeit", "trace", "tracemalloc", "faulthandler", "warnings", "traceback", "logging",
        "tabnanny", "pyclbr",
    ),
    "Python runtime": (
        "sys", "sysconfig", "builtins", "inspect", "importlib", "imp", "pkgutil", "modulefinder", "runpy",
        "zipimport", "ast", "dis", "opcode", "tokenize", "code", "codeop", "symtable", "keyword", "token",
        "compileall", "py_compile", "site", "abc", "contextlib", "dataclasses", "atexit", "gc",
        "distutils", "venv", "zipapp",
    ),
    "Crypto & security": ("hashlib", "hmac", "secrets", "crypt"),
    "Command line & UI": (
        "argparse", "optparse", "getopt", "getpass", "curses", "cmd", "shlex", "readline", "rlcompleter",
        "gettext", "locale",
    ),
}  # fmt: skip
_CATEGORY_OF: dict[str, str] = {module: label for label, modules in CATEGORIES.items() for module in modules}

# Directories never entered: installed third-party code, tests, GUI/demo code that is not
# library prose, and ``encodings``, whose ~120 generated codec modules carry near-identical
# boilerplate docstrings (and big tables that cost parse time for nothing).
_SKIPPED_DIRS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "ensurepip", "tkinter",
     "turtledemo", "__pycache__", "encodings"}
)  # fmt: skip
_SKIPPED_MODULES = frozenset({"this", "antigravity", "turtle", "__main__"})
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


class _Row(NamedTuple):
    text: str
    label: str
    source: str


def build_stdlib_dataset(max_rows: int = 4000) -> Dataset:
    """Build the demo dataset from the docstrings of this Python's standard library.

    One row per documented public module, top-level function or class, and method of a
    public class. Its text is the docstring's first paragraph on one line (at least
    ``MIN_TEXT_LENGTH`` characters and more than one word; exact duplicates dropped), its
    label the module's category in :data:`CATEGORIES` (else ``"Other"``), its source the
    qualified name, such as ``"json.dumps"``. The same Python always gives the same dataset.
    Beyond ``max_rows`` rows, a fixed hash-chosen subset is kept, in the original order, in
    which every category keeps some rows. Raises :class:`ValueError` if ``max_rows`` < 1.
    """
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    rows: list[_Row] = []
    seen_texts: set[str] = set()
    with _gc_paused():
        for module, path in _stdlib_modules(Path(sysconfig.get_paths()["stdlib"])):
            label = _CATEGORY_OF.get(module.partition(".")[0], OTHER)
            for source, text in _docstring_rows(module, path):
                if text not in seen_texts:
                    seen_texts.add(text)
                    rows.append(_Row(text, label, source))
    if len(rows) > max_rows:
        rows = _spread_subset(rows, max_rows)
    return Dataset(
        name=DATASET_NAME,
        texts=tuple(row.text for row in rows),
        labels=tuple(row.label for row in rows),
        sources=tuple(row.source for row in rows),
    )


def _stdlib_modules(root: Path) -> list[tuple[str, Path]]:
    """Public modules under ``root`` as (dotted name, file), sorted by name for determinism."""
    found: list[tuple[tuple[str, ...], Path]] = []
    for directory, subdirs, files in os.walk(root):
        # Only descend into public packages: this also leaves out lib-dynload and config-*.
        subdirs[:] = sorted(
            name
            for name in subdirs
            if name not in _SKIPPED_DIRS
            and not name.startswith(("_", "config-"))
            and os.path.isfile(os.path.join(directory, name, "__init__.py"))
        )
        package = Path(directory).relative_to(root).parts
        for file_name in files:
            stem, extension = os.path.splitext(file_name)
            if extension != ".py" or stem in _SKIPPED_MODULES or stem.startswith("test_"):
                continue
            if stem == "__init__":
                parts = package
            elif stem.startswith("_"):
                continue
            else:
                parts = (*package, stem)
            if parts:
                found.append((parts, Path(directory, file_name)))
    found.sort()
    return [(".".join(parts), path) for parts, path in found]


def _docstring_rows(module: str, path: Path) -> Iterator[tuple[str, str]]:
    """(qualified name, first paragraph) for the module and its public definitions."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return  # An unreadable or odd file costs its rows, never the dataset.
    yield from _first_paragraph_row(module, tree)
    for node in tree.body:
        if not isinstance(node, (*_FUNCTIONS, ast.ClassDef)) or node.name.startswith("_"):
            continue
        qualified = f"{module}.{node.name}"
        yield from _first_paragraph_row(qualified, node)
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, _FUNCTIONS) and not member.name.startswith("_"):
                    yield from _first_paragraph_row(f"{qualified}.{member.name}", member)


def _first_paragraph_row(
    source: str, node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
) -> Iterator[tuple[str, str]]:
    docstring = ast.get_docstring(node)
    if not docstring:
        return
    text = " ".join(_BLANK_LINE.split(docstring.strip(), maxsplit=1)[0].split())
    # A single token is a heading, not prose: distutils opens docstrings with the module's name.
    if len(text) >= MIN_TEXT_LENGTH and " " in text:
        yield source, text


def _spread_subset(rows: list[_Row], max_rows: int) -> list[_Row]:
    """``max_rows`` of ``rows`` in their original order, chosen by a hash of each row.

    A hash rather than every k-th row, so the choice does not follow file order; the first
    few rows of each category (in hash order) are taken before any other so that a small
    category is not lost to chance.
    """

    def rank(index: int) -> tuple[bytes, int]:
        row = rows[index]
        digest = hashlib.blake2b(f"{row.source}\x1f{row.text}".encode(), digest_size=8).digest()
        return digest, index

    labels = {row.label for row in rows}
    floor = max(1, max_rows // (4 * len(labels)))
    taken_per_label: dict[str, int] = dict.fromkeys(labels, 0)
    reserved: list[int] = []
    rest: list[int] = []
    for index in sorted(range(len(rows)), key=rank):
        label = rows[index].label
        if taken_per_label[label] < floor:
            taken_per_label[label] += 1
            reserved.append(index)
        else:
            rest.append(index)
    chosen = sorted((reserved + rest)[:max_rows])
    return [rows[index] for index in chosen]


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Parsing builds millions of short-lived, acyclic AST nodes; the cyclic collector
    # would scan them again and again for nothing (measured: about 20% of build time).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
