"""Output files are never lost: every file Loupe writes appears whole or not at all, a failing
command leaves an existing output as it was, and an output is never one of the inputs.

The commands run as real subprocesses (``tests.test_cli.run_loupe``), headless; the checks
that refuse a command run before any model is loaded, so these tests need none.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from engine.cli import parser
from engine.errors import BadInputError
from engine.runtime.atomic import atomic_path
from engine.user.data_files import write_coords_csv, write_data
from engine.user.export import write_sidecar
from engine.user.figures import MAX_DPI, MIN_DPI, save_map_figure
from engine.user.session import DatasetRef, Session, save_session
from tests.test_cli import CPU, data_csv, run_loupe  # noqa: F401  (data_csv: a fixture)

EXISTING = b"row,x,y,label\n0,1,2,precious\n" * 50


class InterruptedLabels(Sequence[str]):
    """Labels whose reading is interrupted (Ctrl-C) at row ``at``: a write stopped half-way."""

    def __init__(self, rows: int, at: int) -> None:
        self.rows, self.at = rows, at

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        if not 0 <= index < self.rows:
            raise IndexError(index)
        if index >= self.at:
            raise KeyboardInterrupt
        return f"label {index}"

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(self.rows))


def leftovers(folder: Path) -> list[str]:
    """Temporary files a write left behind (atomic_path's names start with a dot)."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def one_line_refusal(result: object) -> str:
    returncode, stderr = result.returncode, result.stderr  # type: ignore[attr-defined]
    assert returncode == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("loupe: cache:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return str(lines[0])


# -- the writers ---------------------------------------------------------------------------


def test_a_failing_csv_write_leaves_the_existing_file_byte_identical(tmp_path: Path) -> None:
    # A cached map of the wrong length once left 5 rows in place of an existing file.
    out = tmp_path / "map.csv"
    out.write_bytes(EXISTING)
    coords = np.zeros((8, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="label"):
        write_coords_csv(out, coords, ["a"] * 5)
    assert out.read_bytes() == EXISTING
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("exists", [False, True])
def test_an_interrupted_csv_write_leaves_no_partial_file(tmp_path: Path, exists: bool) -> None:
    out = tmp_path / "map.csv"
    if exists:
        out.write_bytes(EXISTING)
    coords = np.arange(2000, dtype=np.float32).reshape(1000, 2)
    with pytest.raises(KeyboardInterrupt):
        write_coords_csv(out, coords, InterruptedLabels(1000, at=600))
    assert (out.read_bytes() == EXISTING) if exists else not out.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["map.png", "map.svg", "map.parquet"])
def test_an_interrupted_figure_or_data_write_leaves_the_old_file(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer finishes its bytes and is then interrupted (as Ctrl-C or a full disk would be,
    before the file is closed): the destination still holds the old file."""
    out = tmp_path / name
    out.write_bytes(EXISTING)
    coords = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    labels = ["a", "b"] * 25

    def interrupt_after(write: object) -> object:
        def interrupted(*args: object, **kwargs: object) -> None:
            write(*args, **kwargs)  # type: ignore[operator]
            raise KeyboardInterrupt

        return interrupted

    import matplotlib.figure
    import pyarrow.parquet as pq

    figure = matplotlib.figure.Figure
    monkeypatch.setattr(figure, "savefig", interrupt_after(figure.savefig))
    monkeypatch.setattr(pq, "write_table", interrupt_after(pq.write_table))
    write = save_map_figure if name.endswith((".png", ".svg")) else write_data
    with pytest.raises(KeyboardInterrupt):
        write(out, coords, labels)
    assert out.read_bytes() == EXISTING
    assert leftovers(tmp_path) == []


def test_outputs_get_the_usual_permissions_and_a_private_file_is_private_from_the_start(
    tmp_path: Path,
) -> None:
    """Outputs are made as ``open()`` makes them (0o666 less the umask), not 0o600 as mkstemp
    would; ``mode`` applies before anything is written."""
    out = write_sidecar(tmp_path / "map.csv", {"method": "pca"})
    umask = _umask()
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    with atomic_path(tmp_path / "secret.json", mode=0o600) as tmp:
        assert stat.S_IMODE(tmp.stat().st_mode) & 0o077 == 0
        tmp.write_text("{}")
    assert stat.S_IMODE((tmp_path / "secret.json").stat().st_mode) == 0o600


def test_a_linked_file_is_written_where_the_link_points(tmp_path: Path) -> None:
    """A settings file kept with one's dotfiles is a link: saving must not replace the link."""
    from engine.user.settings import Settings, load_settings, save_settings, settings_path

    target = tmp_path / "dotfiles" / "loupe-settings.json"
    target.parent.mkdir()
    target.write_text("{}", encoding="utf-8")
    link = settings_path()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    save_settings(Settings(model="/models/mine"))
    assert link.is_symlink() and load_settings().model == "/models/mine"
    assert "/models/mine" in target.read_text(encoding="utf-8")
    assert leftovers(link.parent) == [] and leftovers(target.parent) == []


def _umask() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    pytest.skip("no /proc/self/status to read the umask from")


def test_a_session_is_never_saved_over_its_dataset(tmp_path: Path) -> None:
    data = tmp_path / "rows.json"
    data.write_bytes(b'[{"text": "a"}]')
    session = Session(dataset=DatasetRef(path=str(data)))
    (tmp_path / "x").mkdir()
    with pytest.raises(BadInputError, match="is the input"):
        save_session(tmp_path / "x" / ".." / "rows.json", session)
    assert data.read_bytes() == b'[{"text": "a"}]'
    assert save_session(tmp_path / "s.loupe.json", session).is_file()


# -- the commands --------------------------------------------------------------------------


def test_the_cli_and_the_figure_writer_agree_on_the_dpi_range() -> None:
    assert (parser.MIN_DPI, parser.MAX_DPI) == (MIN_DPI, MAX_DPI)


@pytest.mark.parametrize("spelling", ["same", "dotdot", "link"])
def test_project_refuses_to_write_over_its_input(tmp_path: Path, data_csv: Path, spelling: str) -> None:  # noqa: F811
    before = data_csv.read_bytes()
    (tmp_path / "x").mkdir()
    out = {"same": data_csv, "dotdot": tmp_path / "x" / ".." / "data.csv", "link": tmp_path / "link.csv"}[
        spelling
    ]
    if spelling == "link":
        out.symlink_to(data_csv)
    result = run_loupe("project", data_csv, "--out", out, "--method", "pca", "--no-cache", *CPU)
    assert "is the input" in one_line_refusal(result)
    assert data_csv.read_bytes() == before


def test_export_refuses_data_or_a_sidecar_over_its_inputs(tmp_path: Path, data_csv: Path) -> None:  # noqa: F811
    before = data_csv.read_bytes()
    (tmp_path / "x").mkdir()
    result = run_loupe("export", data_csv, "--data", tmp_path / "x" / ".." / "data.csv", "--no-cache")
    assert "is the input" in one_line_refusal(result)
    # data.csv.json is a JSON dataset here: the sidecar of --data data.csv would replace it.
    source = tmp_path / "rows.csv.json"
    source.write_text('[{"text": "one row"}, {"text": "another row"}]', encoding="utf-8")
    sidecar_input = source.read_bytes()
    result = run_loupe("export", source, "--data", tmp_path / "rows.csv", "--no-cache")
    assert "is the input" in one_line_refusal(result)
    assert data_csv.read_bytes() == before and source.read_bytes() == sidecar_input


@pytest.mark.parametrize(
    "args",
    [
        ("--dpi", "100000"),
        ("--dpi", "29"),
        ("--width", "100", "--height", "100", "--dpi", "1000"),
        ("--text-column", "no such column"),
    ],
)
def test_a_failing_export_leaves_the_existing_figure_byte_identical(
    tmp_path: Path,
    data_csv: Path,  # noqa: F811
    args: tuple[str, ...],
) -> None:
    figure = tmp_path / "map.png"
    figure.write_bytes(EXISTING)
    result = run_loupe("export", data_csv, "--figure", figure, "--method", "pca", *args, "--no-cache", *CPU)
    line = one_line_refusal(result)
    assert "dpi" in line or "column" in line or "pixels" in line, line
    assert figure.read_bytes() == EXISTING
    assert leftovers(tmp_path) == []


def test_a_private_file_written_again_stays_private(tmp_path: Path) -> None:
    """An export the user made 0600 (it holds every text) must not come back world-readable."""
    from engine.runtime.atomic import write_text_atomic

    private = tmp_path / "rows.csv"
    private.write_text("old", encoding="utf-8")
    private.chmod(0o600)
    write_text_atomic(private, "new")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_text(encoding="utf-8") == "new"


def test_a_name_near_the_length_limit_is_still_written_whole(tmp_path: Path) -> None:
    from engine.runtime.atomic import write_text_atomic

    long_name = tmp_path / ("ü" * 120 + ".csv")  # 244 bytes: its temporary twin would pass 255
    write_text_atomic(long_name, "rows")
    assert long_name.read_text(encoding="utf-8") == "rows" and leftovers(tmp_path) == []


def test_a_write_the_system_refuses_is_one_line_not_a_traceback(tmp_path: Path, data_csv: Path) -> None:  # noqa: F811
    """The checks before the work pass; the final rename fails (a name over 255 bytes)."""
    too_long = tmp_path / ("m" * 300 + ".csv")
    result = run_loupe("project", data_csv, "--out", too_long, "--method", "pca", *CPU)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith("loupe: File name too long"), result.stderr
    assert leftovers(tmp_path) == []
