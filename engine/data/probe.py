"""Read a binary dataset in a short child process first, so that a reader's crash is a sentence.

pyarrow reads Parquet and Arrow in native code. A damaged or crafted file that its checks miss
can end the reading process with a signal (an Arrow file with one corrupted string offset ended
it with SIGBUS before :mod:`engine.data.readers` validated tables), and no ``except`` runs.
The window reads datasets in its own process, so :func:`check_in_child_process` lets the same
read (and the full validation) happen first in a child, ``python -P -m engine.data.probe
PATH``: a crash there becomes a :class:`BadInputError`, and only a file the child read cleanly
is then read again in this process. Text formats are parsed by Python code and need no child.

The child starts like the engine's other children: the code of *this* engine package
(:func:`engine.runtime.isolated.child_env`), ``-P`` so that nothing in the working folder is imported,
and a private empty working folder. A frozen build (no separate Python to start) skips the
child and says so in the log; the in-process validation still runs.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from engine.errors import BadInputError
from engine.runtime.isolated import child_env, python_command

log = logging.getLogger(__name__)

BINARY_SUFFIXES = frozenset({".parquet", ".arrow"})
_REFUSED = 3  # the child's exit code when the file is bad input; its sentence is on stdout
_TAIL_BYTES = 4_000


def is_hf_folder(path: Path) -> bool:
    """Whether ``path`` is a folder saved by Hugging Face ``datasets`` (Arrow files inside)."""
    return path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file())


def check_in_child_process(path: Path) -> None:
    """Read and validate ``path`` in a child process; BadInputError if it fails or crashes there.

    Blocks until the child ends (about as long as reading the file; the child's start costs
    about half a second). Call it from a worker thread, never the GUI thread.
    """
    if getattr(sys, "frozen", False) or not sys.executable:
        log.info("reading %s without a child check: a frozen build has no separate Python", path.name)
        return
    start = time.perf_counter()
    folder = tempfile.mkdtemp(prefix="loupe-probe-")  # mode 0700, empty: the child's working folder
    try:
        done = subprocess.run(
            python_command("engine.data.probe", str(Path(path).resolve())),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=folder,
            env=child_env(),
            check=False,
        )
    except OSError as exc:
        log.warning("could not start the dataset check (%s); reading %s without it", exc, path.name)
        return
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log.info("checked %s in a child process", path.name, extra={"duration_s": time.perf_counter() - start})
    if done.returncode == 0:
        return
    stdout = done.stdout[-_TAIL_BYTES:].decode("utf-8", "replace").strip()
    stderr = done.stderr[-_TAIL_BYTES:].decode("utf-8", "replace").strip()
    if done.returncode == _REFUSED and stdout:
        raise BadInputError(stdout.splitlines()[-1])
    log.warning("the check of %s failed (exit %d); its standard error:\n%s", path, done.returncode, stderr)
    if done.returncode < 0:
        raise BadInputError(
            f"Cannot read {path}: the reader crashed on it ({_signal_name(-done.returncode)}), "
            "so the file is damaged or not what its name says."
        )
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    raise BadInputError(f"Cannot read {path}: the reader failed ({last or f'exit code {done.returncode}'}).")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def main(argv: Sequence[str] | None = None) -> int:
    """The child: read and validate ``PATH``. 0 if it reads, 3 with the sentence on stdout if not."""
    from engine.data.datasets import read_table

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m engine.data.probe PATH", file=sys.stderr)
        return 2
    try:
        read_table(Path(args[0]))
    except BadInputError as exc:
        print(" ".join(str(exc).split()))
        return _REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
