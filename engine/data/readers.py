"""Readers that turn a file or folder into one pyarrow table, or a one-sentence BadInputError.

:func:`read_table` picks the reader for a path. It lives here, not beside the datasets, because
the dataset probe's child (:mod:`engine.data.probe`) runs it too, and the datasets module starts
that child. Each reader returns a :class:`RawTable`; :mod:`engine.data.datasets` then picks the text and label
columns, skips blank texts and builds the :class:`~engine.data.datasets.Dataset`. Text formats
(CSV, TSV, plain text) yield string columns only (``textual``), so numbers are inferred later
for the columns that are not text or label; JSON, Parquet and Arrow keep their own types.

Binary tables (Parquet, Arrow, a saved Hugging Face folder) are checked with pyarrow's
``validate(full=True)`` before anything reads a value: a crafted offset in an Arrow file
otherwise makes the first read of a string touch memory past the file (SIGBUS).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import BadInputError

if TYPE_CHECKING:
    import pyarrow as pa

_SNIFF_CHARS = 65_536  # how much of a text file decides its delimiter and whether it is binary
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A \uD800-\uDFFF escape not preceded by an escaping backslash: a UTF-16 surrogate, which is
# valid in a pair (an emoji written as two escapes) and cannot be stored as text when alone.
_SURROGATE_ESCAPE = re.compile(
    r"(?<!\\)((?:\\\\)*)(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2})"
)
_PAIR_ESCAPE_LENGTH = 12  # \uD83D\uDE00
# Deeper values are refused: no dataset row needs them, and code that walks a value recursively
# (conversion to Python, display, export) must not meet one a thousand levels deep.
MAX_JSON_DEPTH = 32


@dataclass(frozen=True)
class RawTable:
    """A file's rows before any is skipped; ``sources[i]`` names where row ``i`` came from."""

    data: pa.Table
    textual: bool
    sources: tuple[str, ...] = ()
    added_columns: tuple[str, ...] = ()  # columns the reader made, not the file (never a guessed label)


def read_csv(path: Path, delimiter: str | None = None) -> RawTable:
    """CSV/TSV with a header row; ``delimiter`` None guesses it from the header (, ; tab |)."""
    import pyarrow as pa

    content = read_text(path)
    if not content.strip():
        raise BadInputError(f"{path} is empty.")
    if delimiter is None:
        header_line = content[: content.find("\n")] if "\n" in content else content
        delimiter = max(",;\t|", key=lambda d: (header_line.count(d), d == ","))
    # A 3 MB cell is a text, not an attack: the tokenizer truncates it later.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    try:
        header = next(reader, [])
        cells: list[list[str]] = [[] for _ in header]
        for row in reader:
            if not row:
                continue  # a blank line is not a record
            for position, column in enumerate(cells):
                column.append(row[position] if position < len(row) else "")
    except csv.Error as exc:
        raise BadInputError(f"Cannot read {path} as CSV (line {reader.line_num}): {exc}.") from exc
    if not header or not cells[0]:
        raise BadInputError(f"{path} has no rows below its header.")
    names = unique_names(header)
    return RawTable(
        pa.table({name: pa.array(c, pa.string()) for name, c in zip(names, cells, strict=True)}), True
    )


def read_lines(path: Path) -> RawTable:
    """Plain text: one row per line, in a column ``text`` (blank lines are skipped later)."""
    import pyarrow as pa

    lines = _LINE_BREAK.split(read_text(path))
    if lines and lines[-1] == "":
        lines.pop()  # the final line break ends the last row; it does not start one
    return RawTable(pa.table({"text": pa.array(lines, pa.string())}), True)


def read_text_folder(folder: Path) -> RawTable:
    """One row per ``*.txt`` file directly in ``folder`` (sorted by name); sources are the names."""
    import pyarrow as pa

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt" and p.is_file())
    texts = [read_text(file) for file in files]
    return RawTable(pa.table({"text": pa.array(texts, pa.string())}), True, tuple(f.name for f in files))


def read_json(path: Path) -> RawTable:
    """A JSON list of objects (or of strings), or an object holding one under "data"/"rows"."""
    data = _parse_json(path, read_text(path))
    if isinstance(data, dict):
        data = next((data[key] for key in ("data", "rows") if isinstance(data.get(key), list)), data)
    if not isinstance(data, list):
        raise BadInputError(f'{path} must hold a list of objects, or an object with "data" or "rows".')
    return _records_table(path, data)


def read_json_lines(path: Path) -> RawTable:
    """JSON Lines / NDJSON: one object (or string) per non-blank line."""
    records = []
    for number, line in enumerate(_LINE_BREAK.split(read_text(path)), start=1):
        if line.strip():
            records.append(_parse_json(path, line, line=number))
    return _records_table(path, records)


def read_parquet(path: Path) -> RawTable:
    """A Parquet file through pyarrow: the texts stay in Arrow buffers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return RawTable(validated(pq.read_table(path)), False)
    except (OSError, pa.ArrowException) as exc:
        raise BadInputError(f"Cannot read {path} as Parquet: {_first_line(exc)}.") from exc


def read_parquet_folder(path: Path) -> RawTable:
    """A folder of Parquet files (how large datasets are kept, and what a Ray cluster reads in
    parallel), as one table: the files in name order, their schemas unified."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".parquet" and p.is_file())
    try:
        tables = [validated(pq.read_table(file)) for file in files]
        return RawTable(pa.concat_tables(tables, promote_options="permissive"), False)
    except (OSError, pa.ArrowException) as exc:
        raise BadInputError(f"Cannot read the Parquet files in {path}: {_first_line(exc)}.") from exc


def read_arrow(path: Path) -> RawTable:
    """An Arrow IPC file or stream (``.arrow``), memory-mapped."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            try:
                table = pa.ipc.open_file(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                table = pa.ipc.open_stream(source).read_all()
            return RawTable(validated(table), False)
    except (OSError, pa.ArrowException) as exc:
        raise BadInputError(f"Cannot read {path} as Arrow: {_first_line(exc)}.") from exc


def read_hf_folder(folder: Path) -> RawTable:
    """A Hugging Face ``datasets`` folder from ``save_to_disk``, without the ``datasets`` library.

    A ``DatasetDict`` folder (``dataset_dict.json``) becomes all its splits in order, with a
    ``split`` column. ``ClassLabel`` columns hold their names instead of their numbers.
    """
    import pyarrow as pa

    try:
        if (folder / "dataset_dict.json").is_file():
            splits = json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
            tables = [_hf_split(_inside(folder, split)) for split in splits]
            tables = [
                t.append_column("split", pa.array([s] * t.num_rows, pa.string()))
                for s, t in zip(splits, tables, strict=True)
            ]
            return RawTable(
                pa.concat_tables(tables, promote_options="default"), False, added_columns=("split",)
            )
        return RawTable(_hf_split(folder), False)
    except (OSError, KeyError, TypeError, ValueError, RecursionError, pa.ArrowException) as exc:
        raise BadInputError(
            f"Cannot read {folder} as a saved Hugging Face dataset: {_first_line(exc)}."
        ) from exc


def _hf_split(folder: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    tables = []
    for entry in state["_data_files"]:
        with pa.memory_map(str(_inside(folder, entry["filename"]))) as source:
            tables.append(validated(pa.ipc.open_stream(source).read_all()))
    table = pa.concat_tables(tables)
    info = folder / "dataset_info.json"
    features = (json.loads(info.read_text(encoding="utf-8")).get("features") or {}) if info.is_file() else {}
    for name, feature in features.items():
        if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and name in table.column_names:
            numbers = table[name]
            known = pc.if_else(
                pc.less(numbers, pa.scalar(0, numbers.type)), pa.scalar(None, numbers.type), numbers
            )  # -1: no label
            names = pa.array(feature["names"], pa.string())
            table = table.set_column(table.column_names.index(name), name, pc.take(names, known))
    return table


def read_text(path: Path) -> str:
    """The file decoded: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252.

    Why not a detector such as charset-normalizer: on short Western texts it guesses wrong
    (cp1250 for Spanish "niño"), while a file that decodes as UTF-8 almost surely is UTF-8 and
    the usual other one, a spreadsheet's export, is Windows-1252 (a superset of Latin-1).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"Cannot read {path}: {exc.strerror}.") from exc
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    elif b"\x00" in raw[:_SNIFF_CHARS]:
        raise BadInputError(f"{path} does not look like a text file (it holds binary data).")
    else:
        encodings = ("utf-8-sig", "cp1252")
    for encoding in encodings:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            pass
        try:  # UTF whose only flaw is an encoded UTF-16 half (CESU-8, a lone surrogate): still UTF
            text = without_lone_surrogates(raw.decode(encoding, "surrogatepass"))
            break
        except UnicodeDecodeError:
            continue
    else:
        raise BadInputError(f"{path} is not UTF-8 or Windows-1252 text; save it as UTF-8.")
    sample = text[:_SNIFF_CHARS]
    controls = sum(1 for c in sample if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f\v")
    if controls > len(sample) // 100:
        raise BadInputError(f"{path} does not look like a text file (it holds binary data).")
    return text


def without_lone_surrogates(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate as U+FFFD, and each adjacent pair as its character."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def validated(table: pa.Table) -> pa.Table:
    """``table`` once pyarrow's full validation (offsets, UTF-8) passed and no column nests
    deeper than :data:`MAX_JSON_DEPTH`; else ArrowInvalid."""
    import pyarrow as pa

    table.validate(full=True)
    for field in table.schema:
        if _depth(field.type) > MAX_JSON_DEPTH:
            deep = f"column {field.name!r} nests values more than {MAX_JSON_DEPTH} levels deep"
            raise pa.ArrowInvalid(deep)
    return table


def unique_names(names: list[str]) -> list[str]:
    """Header names made unique and non-empty (``column_3``, ``name_2``) so each can be chosen."""
    seen: set[str] = set()
    out = []
    for position, name in enumerate(names, start=1):
        base = name.strip() or f"column_{position}"
        candidate, n = base, 1
        while candidate in seen:
            n += 1
            candidate = f"{base}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _inside(folder: Path, name: object) -> Path:
    """``folder / name`` for a plain file or folder name from a JSON index, never a path elsewhere."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a file name inside {folder.name}")
    return folder / name


def _parse_json(path: Path, text: str, line: int | None = None) -> Any:
    """The JSON value; lone surrogate escapes become U+FFFD (text cannot hold them)."""
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        text = _SURROGATE_ESCAPE.sub(_lone_surrogate_replaced, text)
    at = f" at line {line}" if line is not None else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = at or f" at line {exc.lineno}, column {exc.colno}"
        raise BadInputError(f"{path} is not valid JSON{where}: {exc.msg}.") from exc
    except RecursionError:
        raise BadInputError(
            f"{path} nests JSON values too deeply{at}: Loupe reads at most {MAX_JSON_DEPTH} levels."
        ) from None
    except ValueError as exc:  # the only other ValueError: an integer Python will not convert
        raise BadInputError(f"Cannot read {path}{at}: it holds a number of more than 4,300 digits.") from exc


def _lone_surrogate_replaced(match: re.Match[str]) -> str:
    escaped_backslashes, escape = match.groups()
    return match.group(0) if len(escape) == _PAIR_ESCAPE_LENGTH else escaped_backslashes + "\\ufffd"


def _records_table(path: Path, records: list[Any]) -> RawTable:
    import pyarrow as pa

    if all(isinstance(record, str) for record in records):
        records = [{"text": record} for record in records]
    if not all(isinstance(record, dict) for record in records):
        raise BadInputError(f"{path} must hold JSON objects (or strings), one per row.")
    if not records:
        raise BadInputError(f"{path} has no rows.")
    names = list(dict.fromkeys(key for record in records for key in record))
    columns = {}
    for name in names:
        values = [record.get(name) for record in records]
        too_deep = BadInputError(
            f"Column {name!r} of {path} nests values too deeply: Loupe reads at most {MAX_JSON_DEPTH} levels."
        )
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowException, OverflowError):  # mixed types: keep them all, as text
            try:
                columns[name] = pa.array([_as_text(v) for v in values], pa.string())
            except RecursionError:
                raise too_deep from None
        if _depth(columns[name].type) > MAX_JSON_DEPTH:
            raise too_deep
    return RawTable(pa.table(columns), False)


def _depth(kind: pa.DataType) -> int:
    """How many levels of lists and structs ``kind`` nests (0 for a plain value); no recursion."""
    deepest, level = 0, [(kind, 0)]
    while level:
        current, depth = level.pop()
        deepest = max(deepest, depth)
        level.extend((current.field(i).type, depth + 1) for i in range(current.num_fields))
    return deepest


def _as_text(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")


READERS: dict[str, Callable[[Path], RawTable]] = {
    ".csv": read_csv,
    ".tsv": lambda path: read_csv(path, "\t"),
    ".tab": lambda path: read_csv(path, "\t"),
    ".json": read_json,
    ".jsonl": read_json_lines,
    ".ndjson": read_json_lines,
    ".parquet": read_parquet,
    ".arrow": read_arrow,
    ".txt": read_lines,
}

SUPPORTED = (
    ".csv, .tsv, .tab, .json, .jsonl, .ndjson, .parquet, .arrow, .txt, a folder of .txt or "
    ".parquet files, or a folder saved by Hugging Face datasets"
)


def is_hf_folder(path: Path) -> bool:
    """Whether ``path`` is a folder saved by Hugging Face ``datasets`` (Arrow files inside)."""
    return path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file())


def read_table(path: Path, *, csv: bool = False) -> RawTable:
    """The file's or folder's rows as one table (binary ones validated); BadInputError if unreadable."""
    path = Path(path)
    if path.is_dir():
        if is_hf_folder(path):
            return read_hf_folder(path)
        if any(p.suffix.lower() == ".txt" for p in path.iterdir()):
            return read_text_folder(path)
        if any(p.suffix.lower() == ".parquet" for p in path.iterdir()):
            return read_parquet_folder(path)
        raise BadInputError(
            f"{path} is a folder without .txt or .parquet files, nor a saved Hugging Face dataset."
        )
    if not path.is_file():
        raise BadInputError(f"No such file or folder: {path}")
    reader = read_csv if csv else READERS.get(path.suffix.lower())
    if reader is None:
        raise BadInputError(f"Cannot read {path.suffix or 'files without a suffix'}: use {SUPPORTED}.")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path} is empty.")
    return reader(path)
