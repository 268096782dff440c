"""Values between Loupe's processes: JSON plus ``.npy`` files in a private folder, never a pickle.

The one temporary-file format of the runtime: the engine process's messages
(:mod:`engine.process.wire`) and the isolated processes' inputs and results
(:mod:`engine.runtime.isolated`) are both written by :class:`Exchange`. A value that is plain
data, a numpy array or one of the dataclasses the caller allows becomes JSON-able data, each
array written into the folder with ``np.save(allow_pickle=False)``; :meth:`Exchange.decode`
reads it back. Only the allowed dataclasses are rebuilt, by name, through their constructors,
so a message can never make the other side run code of its choosing (DESIGN §6).

Long lists of strings are written one JSON string per line, in chunks, so that neither side
holds the interpreter for one long call while it does it (the desktop's GUI thread shares that
interpreter). An Arrow text column (the caller names its sequence class, which has an
``arrow`` property and is built from a column) goes as an Arrow IPC file, written and read by
Arrow itself: no Python loop over 200,000 rows while the window paints.

The runtime knows no dataclass of the engine's: whoever exchanges values passes the classes
it allows (the engine process's list is derived from its API).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from engine.errors import LoupeError

if TYPE_CHECKING:
    import pyarrow as pa

# Lists of strings longer than this go to a file, one JSON string per line.
TEXTS_INLINE_MAX = 256
# They are written and read in chunks of about this size.
TEXTS_CHUNK_ROWS = 1000
TEXTS_CHUNK_BYTES = 1 << 16
# The names of the files a message refers to; nothing else is ever opened.
_FILE_NAME = re.compile(r"^v[0-9]{1,9}$")


class ExchangeError(LoupeError):
    """A value or message that does not follow this module's format (a bug, or a foreign sender)."""


class Exchange:
    """The format for one kind of conversation: which dataclasses may cross, and the words used.

    ``types``: the only dataclasses a message may rebuild (each by its class name, through its
    own constructor). ``arrow_texts``: the class of an Arrow-backed text sequence, sent as an
    Arrow file and rebuilt as ``arrow_texts(column)``; without it such a sequence goes as a
    plain list. ``peer`` names the other side in error messages ("the engine process").
    """

    def __init__(
        self, types: Iterable[type] = (), *, arrow_texts: type | None = None, peer: str = "the other process"
    ) -> None:
        self.types: Mapping[str, type] = {cls.__name__: cls for cls in types}
        self.arrow_texts = arrow_texts
        self.peer = peer

    def encoder(self, folder: Path) -> Encoder:
        """An encoder for one message, writing its files into ``folder``."""
        return Encoder(self, folder)

    def encode(self, value: Any, folder: Path) -> Any:
        """``value`` as JSON-able data, its arrays and long texts written into ``folder``."""
        return Encoder(self, folder).encode(value)

    def decode(self, data: Any, folder: Path) -> Any:
        """The value :meth:`encode` wrote (arrays and texts read from ``folder``)."""
        return _Decoder(self, folder).decode(data)


class Encoder:
    """Encodes values for one message; its files are numbered, so several values may share a folder."""

    def __init__(self, exchange: Exchange, folder: Path) -> None:
        self.exchange = exchange
        self.folder = folder
        self._files = 0

    def _file(self) -> str:
        self._files += 1
        return f"v{self._files}"

    def encode(self, value: Any) -> Any:
        peer = self.exchange.peer
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise ExchangeError(f"Object arrays cannot cross to {peer}; they would need a pickle.")
            name = self._file()
            np.save(self.folder / f"{name}.npy", value, allow_pickle=False)
            return {"$array": name}
        if isinstance(value, Path):
            return {"$path": str(value)}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            kind = type(value).__name__
            if self.exchange.types.get(kind) is not type(value):
                raise ExchangeError(f"{kind} cannot cross to {peer}.")
            fields = {
                f.name: self.encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
            }
            return {"$type": kind, "fields": fields}
        if isinstance(value, Mapping):
            return {"$dict": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(item) for item in value]}
        arrow_texts = self.exchange.arrow_texts
        if arrow_texts is not None and isinstance(value, arrow_texts):
            texts: Any = value  # the caller's Arrow-backed sequence: it has ``arrow``
            if len(texts) > TEXTS_INLINE_MAX and _is_text_column(texts.arrow):
                return {"$arrow": self._write_arrow(texts.arrow)}
        if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
            if len(value) > TEXTS_INLINE_MAX and all(isinstance(item, str) for item in value):
                return {"$texts": self._write_texts(value)}
            return [self.encode(item) for item in value]
        raise ExchangeError(f"A {type(value).__name__} cannot cross to {peer}.")

    def _write_texts(self, texts: Sequence[str]) -> str:
        name = self._file()
        with open(self.folder / f"{name}.jsonl", "w", encoding="utf-8") as out:
            for start in range(0, len(texts), TEXTS_CHUNK_ROWS):  # short calls: threads switch between them
                out.write(
                    "".join(json.dumps(text) + "\n" for text in texts[start : start + TEXTS_CHUNK_ROWS])
                )
        return name

    def _write_arrow(self, column: pa.ChunkedArray[Any]) -> str:
        """A text column as an Arrow IPC file: written by Arrow, no loop here."""
        import pyarrow as pa

        name = self._file()
        table = pa.table({"text": column})
        with (
            pa.OSFile(str(self.folder / f"{name}.arrow"), "wb") as sink,
            pa.ipc.new_file(sink, table.schema) as out,
        ):
            out.write_table(table)
        return name


def _is_text_column(column: pa.ChunkedArray[Any]) -> bool:
    import pyarrow as pa

    kind = column.type
    return bool((pa.types.is_string(kind) or pa.types.is_large_string(kind)) and column.null_count == 0)


class _Decoder:
    def __init__(self, exchange: Exchange, folder: Path) -> None:
        self.exchange = exchange
        self.folder = folder

    def decode(self, data: Any) -> Any:
        if data is None or isinstance(data, bool | int | float | str):
            return data
        if isinstance(data, list):
            return [self.decode(item) for item in data]
        if not isinstance(data, dict) or len(data) not in (1, 2):
            raise ExchangeError(f"Unexpected value in a message: {type(data).__name__}.")
        if "$array" in data:
            return np.load(self.folder / f"{_file_name(data['$array'])}.npy", allow_pickle=False)
        if "$texts" in data:
            return _read_texts(self.folder / f"{_file_name(data['$texts'])}.jsonl")
        if "$arrow" in data:
            return self._read_arrow(self.folder / f"{_file_name(data['$arrow'])}.arrow")
        if "$path" in data:
            return Path(str(data["$path"]))
        if "$tuple" in data:
            return tuple(self.decode(item) for item in data["$tuple"])
        if "$dict" in data:
            return {self.decode(k): self.decode(v) for k, v in data["$dict"]}
        if "$type" in data:
            cls = self.exchange.types.get(str(data["$type"]))
            if cls is None:
                raise ExchangeError(f"{data['$type']!r} is not a type {self.exchange.peer} may send.")
            fields = data.get("fields")
            if not isinstance(fields, dict):
                raise ExchangeError("A dataclass in a message has no fields.")
            return cls(**{str(name): self.decode(value) for name, value in fields.items()})
        raise ExchangeError(f"Unexpected keys in a message: {sorted(data)}.")

    def _read_arrow(self, path: Path) -> Any:
        """Texts from an Arrow IPC file (plain data: a string column, nothing to execute)."""
        import pyarrow as pa

        if self.exchange.arrow_texts is None:
            raise ExchangeError("A message holds an Arrow file where none may be.")
        with pa.OSFile(str(path), "rb") as source:
            table = pa.ipc.open_file(source).read_all()
        column = table.column(0) if table.num_columns == 1 else None
        if column is None or not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise ExchangeError("A text file in a message does not hold one column of text.")
        build = cast(Callable[[Any], Any], self.exchange.arrow_texts)
        return build(column)


def _read_texts(path: Path) -> list[str]:
    texts: list[str] = []
    with open(path, encoding="utf-8") as lines:
        # In chunks: iterating the file line by line held the interpreter for 160 ms at
        # 200,000 lines, where 64 KiB chunks never hold it for more than 7 ms.
        while chunk := lines.readlines(TEXTS_CHUNK_BYTES):
            texts.extend(str(json.loads(line)) for line in chunk)
    return texts


def _file_name(name: Any) -> str:
    if not isinstance(name, str) or not _FILE_NAME.match(name):
        raise ExchangeError("A file name in a message is not one this module writes.")
    return name
