"""The check every command makes on its output paths before any work starts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def check_out(path: Path, suffixes: str | tuple[str, ...], inputs: Sequence[Path] = ()) -> None:
    """Refuse, before any work starts, an output path that cannot be written or that is one of
    the command's ``inputs`` (under any spelling: a link, ``./x/../data.csv``)."""
    from engine.data.datasets import check_writable
    from engine.runtime.atomic import refuse_overwriting_inputs

    check_writable(path, (suffixes,) if isinstance(suffixes, str) else suffixes)
    refuse_overwriting_inputs(path, inputs)
