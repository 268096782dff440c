"""Build the one-folder bundle and measure it: build time, sizes, what takes the space, no CUDA
libraries, the bare bundle's map against the source install's, the numba cache's reuse, the
window under Xvfb with its engine in a child process, and ``self-test`` where it exists.

    .venv/bin/python tests/bench/bundle_build.py [--no-build --build-seconds S] [--rows 400]

Every run of the bundle is bare: ``env -i PATH=/usr/bin:/bin HOME=<empty folder>``, from a
working folder of its own, with no network needed (the model and valkey-server are in the
bundle). Writes a Markdown report; the screenshot goes next to it unless --no-window.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
APP = DIST / "loupe" / "loupe"
VENV_LOUPE = Path(sys.executable).parent / "loupe"
WORDS = ("river", "market", "violin", "protein", "orbit", "harvest", "glacier", "senate", "python", "opera")


def _dataset(rows: int, folder: Path) -> Path:
    rng = np.random.default_rng(0)
    path = folder / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(rows):
            topic = WORDS[i % len(WORDS)]
            extra = " ".join(rng.choice(WORDS, 3))
            writer.writerow([f"a note {i} about the {topic}, with {extra}", topic])
    return path


def _bare_env(home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), **extra}


def _run(command: list[str], env: dict[str, str] | None, cwd: Path, timeout: float = 900) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return took


def _coords(path: Path) -> np.ndarray:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return np.array([[float(r["x"]), float(r["y"])] for r in rows])


def _du(path: Path) -> int:
    return int(subprocess.check_output(["du", "-sb", str(path)], text=True).split()[0])


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _top_users(folder: Path, count: int = 12) -> list[tuple[int, str]]:
    internal = folder / "_internal"
    sizes = [(_du(p), p.name) for p in internal.iterdir()]
    return sorted(sizes, reverse=True)[:count]


def build() -> float:
    start = time.perf_counter()
    subprocess.run([str(ROOT / "packaging" / "build.sh")], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHON": sys.executable})  # fmt: skip
    return time.perf_counter() - start


def window(data: Path, work: Path, shot: Path) -> str:
    """Open the dataset in the bundle's window under Xvfb; screenshot; name the engine child."""
    home = work / "home-window"
    home.mkdir()
    grab = (
        "from PIL import ImageGrab; import os, sys; "
        "ImageGrab.grab(xdisplay=os.environ['DISPLAY']).save(sys.argv[1])"
    )
    script = (
        f'env -i PATH=/usr/bin:/bin HOME={home} DISPLAY="$DISPLAY" XAUTHORITY="$XAUTHORITY" '
        f"{APP} open {data} & app=$!; sleep 60; "
        'echo "children: $(ps -o args= --ppid $app | tr "\\n" ";")"; '
        f'{sys.executable} -c "{grab}" {shot}; kill $app; wait $app || true'
    )
    done = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "bash", "-c", script],
        cwd=work, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    found = re.search(r"children: (.*)", done.stdout)
    return found.group(1) if found else f"(no children line; stderr: {done.stderr[-500:]})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-build", action="store_true", help="measure dist/loupe as it is")
    parser.add_argument("--build-seconds", type=float, help="the build's time when --no-build")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--no-window", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "bench" / "results" / "bundle.md")
    args = parser.parse_args()

    seconds = args.build_seconds if args.no_build else build()
    archives = sorted(DIST.glob("loupe-*-linux-x86_64.tar.gz"))
    folder_size, archive_size = _du(DIST / "loupe"), _du(archives[-1])
    cuda = subprocess.check_output(
        ["find", str(DIST / "loupe"), "-name", "libcu*", "-o", "-name", "*nvidia*"], text=True
    ).split()
    lines = ["# The one-folder bundle, measured", ""]
    built = "" if not args.no_build else " (the build's time as given: built before this run)"
    lines += [f"- build: {seconds:.0f} s{built}" if seconds else "- build: not timed in this run"]
    lines += [f"- dist/loupe: {_mib(folder_size)} ({folder_size / 2**30:.2f} GiB; limit 2 GiB)"]
    lines += [f"- {archives[-1].name}: {_mib(archive_size)} (limit 700 MiB)"]
    lines += [f"- CUDA libraries (libcu*, *nvidia*): {len(cuda)} {'(none)' if not cuda else cuda[:5]}"]
    lines += ["", "What takes the space (dist/loupe/_internal, largest first):", ""]
    lines += ["| entry | size |", "|---|---|"]
    lines += [f"| {name} | {_mib(size)} |" for size, name in _top_users(DIST / "loupe")]

    with tempfile.TemporaryDirectory(prefix="loupe-bundle-bench-") as scratch:
        work = Path(scratch)
        data = _dataset(args.rows, work)
        version = subprocess.run([str(APP), "--version"], env=_bare_env(work), cwd=work,
                                 capture_output=True, text=True)  # fmt: skip
        lines += ["", f"- `loupe --version` (bare): exit {version.returncode}, "
                  f"`{(version.stdout or version.stderr).strip()[-200:]}`"]  # fmt: skip

        # The numba cache's reuse: two bare UMAP processes, one user folder (fresh for the
        # first), two working folders; --no-cache so both embed and fit: only numba differs.
        home = work / "home"
        first_cwd, second_cwd = work / "first", work / "second"
        for path in (home, first_cwd, second_cwd):
            path.mkdir()
        project = ["project", str(data), "--method", "umap", "--seed", "1", "--no-cache", "--quiet"]
        # Offline for sure where a network namespace can be made (root): no network at all.
        offline = ["unshare", "-n"] if os.geteuid() == 0 and shutil.which("unshare") else []
        bundle_project = [*offline, str(APP), *project, "--out"]
        first = _run([*bundle_project, str(work / "bundle.csv")], _bare_env(home), first_cwd)
        second = _run([*bundle_project, str(work / "bundle2.csv")], _bare_env(home), second_cwd)
        kernels = sum(1 for _ in (home / ".cache").rglob("*.nbi")) if (home / ".cache").exists() else 0
        lines += [
            f"- bare `project --method umap --seed 1`, {args.rows} rows, fresh user folder"
            f"{', no network (unshare -n)' if offline else ''}: {first:.1f} s",
            f"- the second process, another working folder, same user folder: {second:.1f} s "
            f"= {second / first:.2f}x the first (limit 0.6x); numba index files in the user's "
            f"cache folder: {kernels}",
        ]

        source_home = work / "home-source"
        source_home.mkdir()
        env = {**os.environ, "HOME": str(source_home), "PYTHONPATH": str(ROOT)}
        for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "LOUPE_HOME"):
            env.pop(name, None)
        _run([str(VENV_LOUPE), *project, "--out", str(work / "source.csv")], env, second_cwd)
        bundle_map, source_map = _coords(work / "bundle.csv"), _coords(work / "source.csv")
        gap = float(np.abs(bundle_map - source_map).max())
        same_twice = float(np.abs(_coords(work / "bundle2.csv") - bundle_map).max())
        lines += [
            f"- bundle map vs `.venv/bin/loupe project` (same data, seed 1): max |difference| "
            f"{gap:.2e} ({'equal' if gap <= 1e-5 else 'NOT equal'} to 1e-5); bundle run 1 vs run 2: "
            f"{same_twice:.2e}",
        ]

        # self-test twice: a fresh user folder (numba compiles and writes its kernels), then the
        # user folder the project runs warmed (its kernels are read back).
        fresh_home = work / "home-self-test"
        fresh_home.mkdir()
        for label, user in (("fresh user folder", fresh_home), ("after the project runs", home)):
            self_test = subprocess.run([str(APP), "self-test"], env=_bare_env(user), cwd=work,
                                       capture_output=True, text=True, timeout=600)  # fmt: skip
            lines += ["", f"`loupe self-test` (bare, {label}): exit {self_test.returncode}", "", "```",
                      (self_test.stdout + self_test.stderr).strip()[-2500:], "```"]  # fmt: skip

        if not args.no_window and shutil.which("xvfb-run"):
            shot = args.out.with_suffix(".png")
            children = window(data, work, shot)
            lines += ["", f"- window (`loupe open rows.csv` under Xvfb, bare): screenshot "
                      f"{shot.relative_to(ROOT)}; the window's child processes: `{children}`"]  # fmt: skip

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
