"""The architecture's rules, checked: the import contracts in pyproject.toml (layers for both
trees, the engine without Qt, the application model without Qt, no circle among siblings), no
module over 500 lines, few top-level rooms, and no import circle between any two modules."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "desktop")
MAX_LINES = 500
# engine: 13 since the cluster room (issue 18), a capability of its own with its own import rule.
MAX_TOP_LEVEL = {"engine": 13, "desktop": 10}


def test_import_contracts_hold() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(contracts)} kept, 0 broken" in done.stdout


def test_engine_and_cli_help_load_without_qt_or_torch() -> None:
    code = (
        "import sys, engine.core.engine, engine.cli.main; engine.cli.main.build_parser();"
        "heavy = {'PySide6', 'pyqtgraph', 'torch', 'transformers', 'umap'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_module_is_over_500_lines() -> None:
    """A module past 500 lines holds more than one job: split it by job (house style)."""
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert sizes, "no modules found"
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not too_long, f"over {MAX_LINES} lines: {too_long}"


def top_level_rooms(package: str) -> list[str]:
    """The modules and packages directly in ``package`` (not ``__init__.py`` or ``py.typed``)."""
    folder = ROOT / package
    modules = [path.stem for path in folder.glob("*.py") if path.name != "__init__.py"]
    packages = [path.name for path in folder.iterdir() if (path / "__init__.py").is_file()]
    return sorted(modules + packages)


def test_few_top_level_modules_and_packages() -> None:
    """The top level names the rooms; everything else lives in one of them."""
    for package, most in MAX_TOP_LEVEL.items():
        rooms = top_level_rooms(package)
        assert len(rooms) <= most, f"{package}/ has {len(rooms)} top-level modules, at most {most}: {rooms}"


def module_cycles(graph: grimp.ImportGraph, packages: tuple[str, ...] = PACKAGES) -> list[list[str]]:
    """The import circles among the modules of ``packages``: each strongly connected group of
    two or more modules (or a module importing itself), found with Tarjan's algorithm."""
    modules = sorted(m for m in graph.modules if m.split(".")[0] in packages)
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] in packages)
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a long chain of imports cannot reach Python's recursion limit.
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            module, following = work[-1]
            for imported in following:
                if imported not in index:
                    index[imported] = low[imported] = len(index)
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append((imported, iter(edges[imported])))
                    break
                if imported in on_stack:
                    low[module] = min(low[module], index[imported])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == module:
                            break
                    if len(group) > 1 or module in edges[module]:
                        groups.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return sorted(groups)


def test_the_cycle_finder_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    """grimp reads every import statement, those inside functions and ``if TYPE_CHECKING:``
    blocks too, so both kinds of circle are found (the check below relies on it)."""
    package = tmp_path / "circles"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from circles import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import circles.a\n"
    )
    (package / "c.py").write_text("import circles.a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("circles", exclude_type_checking_imports=False, cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    assert module_cycles(graph, ("circles",)) == [["circles.a", "circles.b"]]


def test_no_import_circle_between_modules() -> None:
    """No module imports itself through others, counting imports made inside functions
    (lazy) and under ``if TYPE_CHECKING:``: a circle means two jobs that cannot be read or
    tested apart."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False, cache_dir=None)
    cycles = module_cycles(graph)
    shown = "\n".join(" <-> ".join(group) for group in cycles)
    assert not cycles, f"import circles:\n{shown}"
