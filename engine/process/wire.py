"""Values between the desktop and its engine process, in the runtime's one format.

The engine process (:mod:`engine.process.worker`) takes the requests of the engine's API
(:mod:`engine.api.types`) and returns its results. They cross as JSON plus ``.npy`` files
(:mod:`engine.runtime.exchange`, the format the isolated processes use too): arrays are saved
with ``allow_pickle=False``, long text lists in chunks, a dataset's Arrow text column as an
Arrow file, and only the dataclasses in :data:`TYPES` are rebuilt, through their constructors,
so a message can never make the other side run code of its choosing (DESIGN §6). The list is
read from the API itself, so a new request or result type cannot be forgotten here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.api.methods import wire_types
from engine.data.arrow import ArrowSequence
from engine.runtime.exchange import TEXTS_INLINE_MAX, Exchange
from engine.runtime.exchange import Encoder as _ExchangeEncoder
from engine.runtime.exchange import ExchangeError as WireError

# The only classes a message may rebuild, by name: the API's requests and results and the
# dataclasses their fields hold.
TYPES: Mapping[str, type] = wire_types()

WIRE = Exchange(TYPES.values(), arrow_texts=ArrowSequence, peer="the engine process")


class Encoder(_ExchangeEncoder):
    """Encodes values for one message, writing its arrays and long text lists into ``folder``."""

    def __init__(self, folder: Path) -> None:
        super().__init__(WIRE, folder)


def decode(data: Any, folder: Path) -> Any:
    """The value :class:`Encoder` wrote (arrays and texts read from ``folder``)."""
    return WIRE.decode(data, folder)


__all__ = ["TEXTS_INLINE_MAX", "TYPES", "WIRE", "Encoder", "WireError", "decode"]
