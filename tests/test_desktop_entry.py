"""Loupe in the application menu (issue 17): the shipped .desktop entry, AppStream metainfo and
icons pass the freedesktop validators, and ``loupe install-desktop`` installs them under a
prefix, with ``Exec`` at an existing program, and ``--uninstall`` takes exactly that away.

The validators come from Debian's desktop-file-utils and appstream, which ``./dev`` installs:
a test skips (saying so) only where they are missing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.cli.install_desktop import add_parser, install_desktop_command
from engine.user.desktop_entry import (
    APP_ID,
    ICON_SIZES,
    install,
    loupe_executable,
    placements,
    quote_exec_argument,
    render_desktop_entry,
    resources_folder,
    uninstall,
)

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
DESKTOP_FILE = RESOURCES / f"{APP_ID}.desktop"
METAINFO = RESOURCES / f"{APP_ID}.metainfo.xml"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; ./dev installs it)")
    return path


def _validate_desktop(path: Path) -> None:
    tool = _tool("desktop-file-validate", "desktop-file-utils")
    done = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    # Not even a hint (the old entry's "two main categories"): the output must be empty.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


def _validate_metainfo(path: Path) -> None:
    tool = _tool("appstreamcli", "appstream")
    done = subprocess.run(
        [tool, "validate", "--no-net", "--explain", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not re.search(r"^[EW]:", done.stdout, re.MULTILINE), done.stdout


def _entry(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if "=" in line)


def exec_arguments(value: str) -> list[str]:
    """Split an ``Exec`` value the way the Desktop Entry spec tells a launcher to."""
    string_escapes = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    text = re.sub(r"\\(.)", lambda m: string_escapes.get(m[1], "\\" + m[1]), value)
    arguments: list[str] = []
    current: list[str] | None = None
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if quoted and char == "\\" and text[index + 1 : index + 2] in ('"', "`", "$", "\\"):
            assert current is not None
            current.append(text[index + 1])
            index += 1
        elif char == '"':
            quoted = not quoted
            current = current if current is not None else []
        elif char == " " and not quoted:
            if current is not None:
                arguments.append("".join(current))
            current = None
        else:
            current = [*(current or []), char]
        index += 1
    assert not quoted, f"unterminated quote in {value!r}"
    if current is not None:
        arguments.append("".join(current))
    return [argument.replace("%%", "%") if argument != "%f" else argument for argument in arguments]


def test_shipped_desktop_entry_validates() -> None:
    _validate_desktop(DESKTOP_FILE)
    entry = _entry(DESKTOP_FILE)
    assert entry["Categories"] == "Science;DataVisualization;"
    assert entry["Exec"] == "loupe open %f" and entry["Icon"] == APP_ID
    assert {"text/csv", "application/vnd.apache.parquet", "application/json"} <= set(
        entry["MimeType"].split(";")
    )


def test_shipped_metainfo_validates_and_agrees_with_pyproject() -> None:
    _validate_metainfo(METAINFO)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    component = ET.parse(METAINFO).getroot()
    assert component.findtext("id") == APP_ID
    assert component.findtext("project_license") == project["license"]
    assert component.findtext("launchable") == f"{APP_ID}.desktop"
    release = component.find("releases/release")
    assert release is not None and release.get("version") == project["version"]
    screenshot = component.findtext("screenshots/screenshot/image") or ""
    assert screenshot.startswith("https://") and screenshot.endswith("docs/images/compare-window.png")
    assert (ROOT / "docs/images/compare-window.png").is_file()


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.mark.parametrize("size", ICON_SIZES)
def test_png_icons_have_their_sizes(size: int) -> None:
    assert _png_size(RESOURCES / f"icons/hicolor/{size}x{size}/apps/{APP_ID}.png") == (size, size)


def test_every_placed_file_is_shipped() -> None:
    assert all((RESOURCES / placement.source).is_file() for placement in placements())


def _files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def test_install_then_uninstall_leaves_nothing(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    result = install(prefix)
    assert {prefix / placement.target for placement in placements()} == set(result.files)
    assert all(path.is_file() for path in result.files)
    installed = prefix / f"share/applications/{APP_ID}.desktop"
    _validate_desktop(installed)
    program = exec_arguments(_entry(installed)["Exec"])
    assert program[1:] == ["open", "%f"]
    assert Path(program[0]).is_absolute() and os.access(program[0], os.X_OK), program
    assert Path(program[0]) == loupe_executable()
    if shutil.which("update-mime-database"):  # the Parquet type is known once installed
        assert "application/vnd.apache.parquet:*.parquet" in (prefix / "share/mime/globs2").read_text()

    removed = uninstall(prefix)
    assert set(removed.files) == set(result.files)
    assert _files_under(prefix) == set()
    assert uninstall(prefix).files == ()  # a second uninstall finds nothing to remove


def test_uninstall_keeps_what_others_installed(tmp_path: Path) -> None:
    other = tmp_path / "share/applications/other.desktop"
    other.parent.mkdir(parents=True)
    other.write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n", encoding="utf-8")
    install(tmp_path)
    uninstall(tmp_path)
    assert other.is_file()
    assert not list(tmp_path.rglob(f"{APP_ID}*"))


def test_spaces_and_non_ascii_in_prefix_and_program(tmp_path: Path) -> None:
    prefix = tmp_path / "Données à voir" / "mon préfixe"
    folder = tmp_path / "bin with $pace & 'quotes' 100%"
    folder.mkdir()
    program = folder / "lóupe"
    program.write_text("#!/bin/sh\n", encoding="utf-8")
    program.chmod(0o755)
    install(prefix, executable=program)
    installed = prefix / f"share/applications/{APP_ID}.desktop"
    _validate_desktop(installed)
    entry = _entry(installed)
    assert exec_arguments(entry["Exec"]) == [str(program), "open", "%f"]
    assert entry["TryExec"] == str(program)
    _validate_metainfo(prefix / f"share/metainfo/{APP_ID}.metainfo.xml")
    uninstall(prefix)
    assert _files_under(prefix) == set()


@pytest.mark.parametrize("path", ["/opt/loupe/loupe", "/a b/c", '/q"uo`te$/x\\y', "/per%cent/loupe"])
def test_exec_quoting_round_trips(path: str) -> None:
    line = render_desktop_entry("[Desktop Entry]\nExec=loupe open %f\n", Path(path)).splitlines()[1]
    assert exec_arguments(line.removeprefix("Exec=")) == [path, "open", "%f"]
    assert quote_exec_argument("plain") == "plain"


def _run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="loupe")
    add_parser(parser.add_subparsers(dest="command"))
    return install_desktop_command(parser.parse_args(["install-desktop", *argv]))


def test_command_installs_and_uninstalls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_command("--prefix", str(tmp_path)) == 0
    assert (tmp_path / f"share/applications/{APP_ID}.desktop").is_file()
    assert "Installed Loupe's menu entry" in capsys.readouterr().out
    assert _run_command("--prefix", str(tmp_path), "--uninstall") == 0
    assert _files_under(tmp_path) == set()


def test_command_error_is_one_sentence_in_a_subprocess(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x", encoding="utf-8")
    code = (
        "import sys, argparse\n"
        "from engine.cli.install_desktop import add_parser, install_desktop_command\n"
        "p = argparse.ArgumentParser(prog='loupe'); add_parser(p.add_subparsers(dest='command'))\n"
        "sys.exit(install_desktop_command(p.parse_args(sys.argv[1:])))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, "install-desktop", "--prefix", str(not_a_folder)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr.count("\n") == 1 and done.stderr.startswith("loupe: ") and "Traceback" not in done.stderr
    )


def test_frozen_bundle_points_at_its_own_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the one-folder bundle, Exec is the bundle's executable and the files come from its
    data folder (PyInstaller's ``sys._MEIPASS``), whatever Python or PATH hold."""
    bundle = tmp_path / "dist dossier" / "loupe"
    shutil.copytree(RESOURCES, bundle / "_internal" / "resources")
    executable = bundle / "loupe"
    executable.write_text("#!/bin/sh\n", encoding="utf-8")
    executable.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle / "_internal"), raising=False)
    monkeypatch.setattr(sys, "executable", str(executable))
    assert resources_folder() == bundle / "_internal" / "resources"
    prefix = tmp_path / "prefix"
    install(prefix)
    installed = prefix / f"share/applications/{APP_ID}.desktop"
    assert exec_arguments(_entry(installed)["Exec"]) == [str(executable), "open", "%f"]
    _validate_desktop(installed)
