"""Writing files so that a crash, a full disk or a failed check never leaves half a file.

Every file Loupe writes (outputs, sidecars, sessions, settings, memos) goes to a unique
temporary name in the destination's folder and is renamed into place only once it is complete:
a reader sees the old file or the new one, never a mixture, and two processes writing the same
file cannot interleave (each has its own temporary name; the last rename wins).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.errors import BadInputError


@contextlib.contextmanager
def atomic_path(path: Path, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` if the block succeeds.

    The temporary name keeps ``path``'s suffix, so writers that pick a format from it
    (matplotlib's ``savefig``, ``np.save``) write the right one. ``mode`` sets the permission
    bits before the rename (for example 0o600 for a file that may hold a secret's name); without
    it a file written again keeps its permission bits, and a new one gets what ``open()`` would
    give it (0o666 less the umask), as outputs always had.
    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    if path.is_symlink():  # write where the link points (a settings file kept with dotfiles stays linked)
        path = Path(os.path.realpath(path))
    if mode is None and path.exists():  # a file made private stays private when written again
        mode = stat.S_IMODE(path.stat().st_mode)
    tmp = _new_file_beside(path, 0o666 if mode is None else mode)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _new_file_beside(path: Path, mode: int) -> Path:
    """A new, empty file with a unique name in ``path``'s folder, created with ``mode`` (the
    umask applies, so a private ``mode`` is private from the start; mkstemp would make every
    output 0o600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        name = f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}"
        if len(os.fsencode(name)) > 255:  # a long name's temporary twin would be too long a name
            name = f".loupe-{secrets.token_hex(6)}.tmp{path.suffix}"
        tmp = path.with_name(name)
        try:
            os.close(os.open(tmp, flags, mode))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")


def write_text_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path, mode) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


def refuse_overwriting_inputs(output: Path, inputs: Iterable[Path | None], what: str = "output") -> None:
    """Raise :class:`BadInputError` when ``output`` is one of ``inputs`` (same file, any spelling)."""
    target = Path(output)
    for source in inputs:
        if source is None:
            continue
        if _same_file(target, Path(source)):
            raise BadInputError(f"The {what} {target} is the input {source}: choose another file name.")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()
