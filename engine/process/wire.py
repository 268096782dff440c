"""Values between the desktop and its engine process: JSON plus ``.npy`` files, never a pickle.

The engine process (:mod:`engine.process.worker`) takes the requests of the engine's API
(:mod:`engine.api.types`) and returns its results: plain values, numpy arrays and dataclasses.
:class:`Encoder` turns such a value into JSON-able data, writing each array into a folder with
``np.save(allow_pickle=False)``; :func:`decode` reads it back. Only the dataclasses named in
:data:`TYPES` are rebuilt, through their constructors, so a message can never make the other side
run code of its choosing (DESIGN §6). Long lists of strings are written one JSON string per line, in
chunks, so that neither side holds the interpreter for one long call while it does it: the desktop's
GUI thread shares that interpreter. A dataset's own Arrow text column goes as an Arrow IPC file,
written and read by Arrow itself (no Python loop over 200,000 rows while the window paints).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.api.methods import wire_types
from engine.data.arrow import ArrowSequence
from engine.errors import LoupeError

# Lists of strings longer than this go to a file, one JSON string per line.
TEXTS_INLINE_MAX = 256
# They are written and read in chunks of about this size.
TEXTS_CHUNK_ROWS = 1000
TEXTS_CHUNK_BYTES = 1 << 16
_NAME = re.compile(r"^v[0-9]{1,9}$")


# The only classes a message may rebuild, by name (each through its own constructor): the API's
# requests and results and the dataclasses their fields hold, read from the API itself.
TYPES: Mapping[str, type] = wire_types()


class WireError(LoupeError):
    """A message that does not follow this module's format (a bug, or a foreign sender)."""


class Encoder:
    """Encodes values for one message, writing its arrays and long text lists into ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files = 0

    def _file(self) -> str:
        self._files += 1
        return f"v{self._files}"

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise WireError("Object arrays cannot cross to the engine process; they would need a pickle.")
            name = self._file()
            np.save(self.folder / f"{name}.npy", value, allow_pickle=False)
            return {"$array": name}
        if isinstance(value, Path):
            return {"$path": str(value)}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            kind = type(value).__name__
            if TYPES.get(kind) is not type(value):
                raise WireError(f"{kind} cannot cross to the engine process.")
            fields = {
                f.name: self.encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
            }
            return {"$type": kind, "fields": fields}
        if isinstance(value, Mapping):
            return {"$dict": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(item) for item in value]}
        if isinstance(value, ArrowSequence) and len(value) > TEXTS_INLINE_MAX and _arrow_text(value):
            return {"$arrow": self._write_arrow(value)}
        if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
            if len(value) > TEXTS_INLINE_MAX and _all_strings(value):
                return {"$texts": self._write_texts(value)}
            return [self.encode(item) for item in value]
        raise WireError(f"A {type(value).__name__} cannot cross to the engine process.")

    def _write_texts(self, texts: Sequence[str]) -> str:
        name = self._file()
        with open(self.folder / f"{name}.jsonl", "w", encoding="utf-8") as out:
            for start in range(0, len(texts), TEXTS_CHUNK_ROWS):  # short calls: threads switch between them
                out.write(
                    "".join(json.dumps(text) + "\n" for text in texts[start : start + TEXTS_CHUNK_ROWS])
                )
        return name

    def _write_arrow(self, texts: ArrowSequence[str]) -> str:
        """A dataset's own Arrow column, as an Arrow IPC file: written by Arrow, no loop here."""
        import pyarrow as pa

        name = self._file()
        table = pa.table({"text": texts.arrow})
        with (
            pa.OSFile(str(self.folder / f"{name}.arrow"), "wb") as sink,
            pa.ipc.new_file(sink, table.schema) as out,
        ):
            out.write_table(table)
        return name


def _arrow_text(values: ArrowSequence[Any]) -> bool:
    import pyarrow as pa

    kind = values.arrow.type
    return bool((pa.types.is_string(kind) or pa.types.is_large_string(kind)) and values.arrow.null_count == 0)


def _all_strings(values: Sequence[Any]) -> bool:
    return all(isinstance(value, str) for value in values)


def decode(data: Any, folder: Path) -> Any:
    """The value :meth:`Encoder.encode` wrote (arrays and texts read from ``folder``)."""
    return _Decoder(folder).decode(data)


class _Decoder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def decode(self, data: Any) -> Any:
        if data is None or isinstance(data, bool | int | float | str):
            return data
        if isinstance(data, list):
            return [self.decode(item) for item in data]
        if not isinstance(data, dict) or len(data) not in (1, 2):
            raise WireError(f"Unexpected value in a message: {type(data).__name__}.")
        if "$array" in data:
            return np.load(self.folder / f"{self._name(data['$array'])}.npy", allow_pickle=False)
        if "$texts" in data:
            return self._read_texts(self.folder / f"{self._name(data['$texts'])}.jsonl")
        if "$arrow" in data:
            return self._read_arrow(self.folder / f"{self._name(data['$arrow'])}.arrow")
        if "$path" in data:
            return Path(str(data["$path"]))
        if "$tuple" in data:
            return tuple(self.decode(item) for item in data["$tuple"])
        if "$dict" in data:
            return {self.decode(k): self.decode(v) for k, v in data["$dict"]}
        if "$type" in data:
            cls = TYPES.get(str(data["$type"]))
            if cls is None:
                raise WireError(f"{data['$type']!r} is not a type the engine process may send.")
            fields = data.get("fields")
            if not isinstance(fields, dict):
                raise WireError("A dataclass in a message has no fields.")
            return cls(**{str(name): self.decode(value) for name, value in fields.items()})
        raise WireError(f"Unexpected keys in a message: {sorted(data)}.")

    @staticmethod
    def _read_arrow(path: Path) -> ArrowSequence[str]:
        """Texts from an Arrow IPC file (plain data: a string column, nothing to execute)."""
        import pyarrow as pa

        with pa.OSFile(str(path), "rb") as source:
            table = pa.ipc.open_file(source).read_all()
        column = table.column(0) if table.num_columns == 1 else None
        if column is None or not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise WireError("A text file in a message does not hold one column of text.")
        return ArrowSequence(column)

    @staticmethod
    def _read_texts(path: Path) -> list[str]:
        texts: list[str] = []
        with open(path, encoding="utf-8") as lines:
            # In chunks: iterating the file line by line held the interpreter for 160 ms at
            # 200,000 lines, where 64 KiB chunks never hold it for more than 7 ms.
            while chunk := lines.readlines(TEXTS_CHUNK_BYTES):
                texts.extend(str(json.loads(line)) for line in chunk)
        return texts

    @staticmethod
    def _name(name: Any) -> str:
        if not isinstance(name, str) or not _NAME.match(name):
            raise WireError("A file name in a message is not one this module writes.")
        return name
