"""Sessions: what a user was looking at (dataset, model, map, view, selection, bookmarks) in
one small versioned JSON file, ``*.loupe.json``, to reopen later or hand to a colleague.

A session holds no results: reopening recomputes nothing that the cache already has, because
the dataset, model, layer, pooling and projection it names are exactly what the cache keys
are made of. The file is plain JSON, read with :func:`json.loads` and checked field by field;
anything unusable is a :class:`BadInputError` with one sentence, never a traceback.

Format (``"format": "loupe-session"``, ``"version": 2``)::

    {"format", "version", "loupe": "0.1.0", "created": ISO time,
     "dataset": {"path": absolute path, "fingerprint": str, "text_column"?: str,
                 "label_column"?: str ("" for none)} | {"demo_rows": int, "fingerprint"?: str},
     "model": str, "pooling": str | null, "layer": int,
     "projection": {"method": str, "params": {name: value}, "seed": int},
     "view": {"x_range": [a, b] | null, "y_range": [c, d] | null, "colouring": str,
              "size_by": str | null, "density": bool, "layer_slider": int | null,
              "search": str, "filter": {"column": str, "condition": str} | null},
     "selection": [row, ...], "bookmarks": [{"row": int, "note": str}, ...],
     "comparison"?: {"model": str | null, "layer": int, "pooling": str | null, "k": int}}

``comparison`` (the other side of a comparison shown beside the map, and k for its overlaps)
is written only when one was on show, so a session without one stays readable by a Loupe that
predates comparisons; reopening recomputes it, or reads it from the cache.

Version 1 wrote the filter as one text, ``"column: condition"``, which cannot say where a column
named ``a: b`` ends; version 2 keeps the two apart. A version 1 file still opens: its text is
split at the first ``": "`` and marked, so that the split can be made again against the columns
of the data (:meth:`SavedFilter.for_columns`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from engine.data.datasets import Dataset
from engine.errors import BadInputError
from engine.maps.projection import ProjectionParams, Value
from engine.runtime.atomic import refuse_overwriting_inputs, write_text_atomic
from engine.user.settings import without_defaults

FORMAT = "loupe-session"
VERSION = 2
SUFFIX = ".loupe.json"
T = TypeVar("T")


@dataclass(frozen=True)
class DatasetRef:
    """Which data: a file or folder (absolute path) or the demo of ``demo_rows`` rows.

    ``text_column`` and ``label_column`` are the columns the user chose (``loupe open
    --text-column/--label-column``, Dataset ▸ Columns…), as :func:`engine.data.datasets.load_dataset`
    takes them: None lets Loupe guess (what sessions saved before they were recorded mean), and a
    label column of :data:`engine.data.datasets.NO_LABEL` ("") asks for no label.
    """

    path: str | None = None
    demo_rows: int | None = None
    fingerprint: str | None = None  # Dataset.fingerprint when saved; None if unknown
    text_column: str | None = None
    label_column: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.demo_rows is None):
            raise ValueError("a session's dataset is a path or the demo, exactly one of them")


@dataclass(frozen=True)
class SavedFilter:
    """The filter as the user typed it: a column and a condition (:mod:`engine.data.row_filter`).

    ``joined`` marks a filter read from a version 1 file, where the two were one text."""

    column: str
    condition: str
    joined: bool = field(default=False, compare=False)

    def for_columns(self, columns: Iterable[str]) -> SavedFilter | None:
        """This filter on one of ``columns``, or None when none of them is its column.

        A version 1 text was split at its first ``": "``; a column whose own name holds ``": "``
        (the longest that fits) is found by splitting it again where that name ends."""
        names = set(columns)
        if self.column in names:
            return self
        if not self.joined:
            return None
        text = f"{self.column}: {self.condition}"
        fitting = [name for name in names if text.startswith(f"{name}: ")]
        if not fitting:
            return None
        column = max(fitting, key=len)
        return SavedFilter(column, text[len(column) + 2 :])


@dataclass(frozen=True)
class ViewState:
    """How the map was shown. Ranges are the plot's visible data ranges (None: fit the map)."""

    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    colouring: str = "label"
    size_by: str | None = None
    density: bool = False
    layer_slider: int | None = None
    search: str = ""
    filter: SavedFilter | None = None


@dataclass(frozen=True)
class Bookmark:
    row: int
    note: str = ""


@dataclass(frozen=True)
class SavedComparison:
    """The other side of a comparison: a model (None: the session's own), layer, pooling, k."""

    model: str | None = None
    layer: int = -1
    pooling: str | None = None
    k: int = 10


@dataclass(frozen=True)
class Session:
    dataset: DatasetRef
    model: str = "minilm"
    pooling: str | None = None  # None: the model's own
    layer: int = -1
    projection: ProjectionParams = field(default_factory=ProjectionParams)
    view: ViewState = field(default_factory=ViewState)
    selection: tuple[int, ...] = ()
    bookmarks: tuple[Bookmark, ...] = ()
    comparison: SavedComparison | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    loupe_version: str = field(default_factory=lambda: _loupe_version())


def _loupe_version() -> str:
    import engine

    return engine.__version__


# -- writing ------------------------------------------------------------------------------


def session_to_json(session: Session) -> dict[str, Any]:
    """The session as the plain JSON object that :func:`save_session` writes."""
    ref = session.dataset
    dataset: dict[str, Any] = (
        {"path": ref.path, "fingerprint": ref.fingerprint}
        if ref.path is not None
        else {"demo_rows": ref.demo_rows}
    )
    if ref.path is None and ref.fingerprint is not None:
        dataset["fingerprint"] = ref.fingerprint
    # Written only when chosen: a session that guessed stays readable by a Loupe that predates them.
    for key, column in (("text_column", ref.text_column), ("label_column", ref.label_column)):
        if ref.path is not None and column is not None:
            dataset[key] = column
    view = session.view
    written: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "loupe": session.loupe_version,
        "created": session.created,
        "dataset": dataset,
        "model": session.model,
        "pooling": session.pooling,
        "layer": session.layer,
        "projection": {
            "method": session.projection.method,
            "params": session.projection.settings(),
            "seed": session.projection.seed,
        },
        "view": {
            "x_range": list(view.x_range) if view.x_range else None,
            "y_range": list(view.y_range) if view.y_range else None,
            "colouring": view.colouring,
            "size_by": view.size_by,
            "density": view.density,
            "layer_slider": view.layer_slider,
            "search": view.search,
            "filter": (
                {"column": view.filter.column, "condition": view.filter.condition} if view.filter else None
            ),
        },
        "selection": list(session.selection),
        "bookmarks": [{"row": mark.row, "note": mark.note} for mark in session.bookmarks],
    }
    compared = session.comparison
    if compared is not None:
        written["comparison"] = {
            "model": compared.model,
            "layer": compared.layer,
            "pooling": compared.pooling,
            "k": compared.k,
        }
    return written


def save_session(path: Path, session: Session) -> Path:
    """Write ``session`` to ``path`` atomically (a reader never sees half a file); returns ``path``.

    Raises :class:`BadInputError` when the folder cannot be written or ``path`` is the dataset.
    """
    text = json.dumps(session_to_json(session), indent=2, allow_nan=False) + "\n"
    refuse_overwriting_inputs(path, [Path(session.dataset.path) if session.dataset.path else None], "session")
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise BadInputError(f"Cannot write the session {path}: {exc.strerror or exc}.") from None
    return path


# -- reading ------------------------------------------------------------------------------


def load_session(path: Path) -> Session:
    """The session saved in ``path``; :class:`BadInputError` (one sentence) when it is not usable:
    unreadable, not JSON, not a Loupe session, from a newer Loupe, or a field missing or of the
    wrong type."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(
            f"Cannot read the session {path}: {getattr(exc, 'strerror', None) or exc}."
        ) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise BadInputError(f"{path.name} is not a Loupe session: it is not JSON.") from None
    except RecursionError:  # JSON nested deeper than Python's stack
        raise BadInputError(f"{path.name} is not a Loupe session: it is nested too deeply.") from None
    return session_from_json(data, path.name)


def session_from_json(data: object, name: str = "the session") -> Session:
    """Check and read a session's JSON object (see the module's docstring for the format)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInputError(f"{name} is not a Loupe session file.")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BadInputError(f"{name} has no valid session version.")
    if version > VERSION:
        raise BadInputError(
            f"{name} was saved by a newer Loupe (session version {version}); this Loupe reads "
            f"version {VERSION}, so update Loupe to open it."
        )
    fields = _Fields(data, name)
    view = _Fields(fields.get("view", dict), name, "view.")
    return Session(
        dataset=_dataset(fields.get("dataset", dict), name),
        model=fields.get("model", str),
        pooling=fields.optional("pooling", str),
        layer=fields.get("layer", int),
        projection=_projection(fields.get("projection", dict), name),
        view=_view(view, _filter(view) if version >= 2 else _joined_filter(view)),
        selection=tuple(_row(value, name, "selection") for value in fields.get("selection", list)),
        bookmarks=tuple(_bookmark(item, name) for item in fields.get("bookmarks", list)),
        comparison=_comparison(fields.optional("comparison", dict), name),
        created=fields.get("created", str),
        loupe_version=fields.get("loupe", str),
    )


class _Fields:
    """Typed access to one JSON object's fields, failing with one sentence naming the field."""

    def __init__(self, data: Mapping[str, Any], name: str, prefix: str = "") -> None:
        self.data, self.name, self.prefix = data, name, prefix

    def get(self, key: str, kind: type[T]) -> T:
        if key not in self.data:
            raise BadInputError(f"{self.name} is not a usable session: it has no {self.prefix}{key}.")
        return self._typed(key, self.data[key], kind)

    def optional(self, key: str, kind: type[T]) -> T | None:
        value = self.data.get(key)
        return None if value is None else self._typed(key, value, kind)

    def _typed(self, key: str, value: object, kind: type[T]) -> T:
        # JSON has one number type; a bool is never a number here, an int is also a float.
        fits = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
        if kind is float:
            fits = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not fits:
            raise BadInputError(
                f"{self.name} is not a usable session: {self.prefix}{key} should be {_KINDS[kind]}, "
                f"not {_shown(value)}."
            )
        return value  # type: ignore[return-value]


def _shown(value: object) -> str:
    """The start of ``value`` as JSON, for an error message (a short name when it cannot be)."""
    try:
        return json.dumps(value)[:40]
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"


_KINDS: dict[type, str] = {
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    dict: "an object",
    list: "a list",
}


def _dataset(data: dict[str, Any], name: str) -> DatasetRef:
    fields = _Fields(data, name, "dataset.")
    fingerprint = fields.optional("fingerprint", str)
    if "path" in data:
        path = fields.get("path", str)
        if not Path(path).is_absolute():
            raise BadInputError(f"{name} is not a usable session: dataset.path should be an absolute path.")
        text_column = fields.optional("text_column", str)
        if text_column == "":
            raise BadInputError(f"{name} is not a usable session: dataset.text_column should name a column.")
        label_column = fields.optional("label_column", str)
        return DatasetRef(
            path=path, fingerprint=fingerprint, text_column=text_column, label_column=label_column
        )
    if "demo_rows" in data:
        rows = fields.get("demo_rows", int)
        if rows < 1:
            raise BadInputError(f"{name} is not a usable session: dataset.demo_rows should be at least 1.")
        return DatasetRef(demo_rows=rows, fingerprint=fingerprint)
    raise BadInputError(f"{name} is not a usable session: its dataset has neither a path nor demo_rows.")


def _projection(data: dict[str, Any], name: str) -> ProjectionParams:
    fields = _Fields(data, name, "projection.")
    method, params, seed = fields.get("method", str), fields.get("params", dict), fields.get("seed", int)
    options: dict[str, Value] = {}
    for key, value in params.items():
        if isinstance(value, int | float | str | bool):
            options[key] = value
        else:
            raise BadInputError(f"{name} is not a usable session: projection parameter {key} is not a value.")
    try:
        return without_defaults(ProjectionParams.from_options(method, options, seed=seed))
    except BadInputError as exc:
        raise BadInputError(f"{name} has a projection this Loupe cannot use: {exc}") from None


def _view(fields: _Fields, saved_filter: SavedFilter | None) -> ViewState:
    return ViewState(
        x_range=_range(fields, "x_range"),
        y_range=_range(fields, "y_range"),
        colouring=fields.get("colouring", str),
        size_by=fields.optional("size_by", str),
        density=fields.get("density", bool),
        layer_slider=fields.optional("layer_slider", int),
        search=fields.get("search", str),
        filter=saved_filter,
    )


def _filter(view: _Fields) -> SavedFilter | None:
    data = view.optional("filter", dict)
    if data is None:
        return None
    fields = _Fields(data, view.name, "view.filter.")
    return SavedFilter(fields.get("column", str), fields.get("condition", str))


def _joined_filter(view: _Fields) -> SavedFilter | None:
    """A version 1 filter, ``"column: condition"`` in one text (see the module's docstring)."""
    text = view.optional("filter", str)
    if not text:
        return None
    column, _, condition = text.partition(": ")
    return SavedFilter(column, condition, joined=True)


def _range(fields: _Fields, key: str) -> tuple[float, float] | None:
    value = fields.optional(key, list)
    if value is None:
        return None
    numbers = [
        v for v in value if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    if len(value) != 2 or len(numbers) != 2 or not numbers[0] < numbers[1]:
        raise BadInputError(
            f"{fields.name} is not a usable session: view.{key} should be two numbers, low to high."
        )
    return float(numbers[0]), float(numbers[1])


def _row(value: object, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInputError(
            f"{name} is not a usable session: {where} should hold row numbers, not {value!r}."
        )
    return value


def _comparison(data: dict[str, Any] | None, name: str) -> SavedComparison | None:
    if data is None:
        return None
    fields = _Fields(data, name, "comparison.")
    k = fields.get("k", int)
    if k < 1:
        raise BadInputError(f"{name} is not a usable session: comparison.k should be at least 1.")
    model = fields.optional("model", str)
    return SavedComparison(
        model=model or None,
        layer=fields.get("layer", int),
        pooling=fields.optional("pooling", str),
        k=k,
    )


def _bookmark(item: object, name: str) -> Bookmark:
    if not isinstance(item, dict):
        raise BadInputError(f"{name} is not a usable session: each bookmark should be an object.")
    fields = _Fields(item, name, "bookmarks.")
    return Bookmark(_row(fields.get("row", int), name, "bookmarks"), fields.get("note", str))


# -- against the data ---------------------------------------------------------------------


def check_dataset(session: Session, dataset: Dataset) -> str | None:
    """One sentence when ``dataset`` is not the data the session was saved with, else None.

    A warning, not an error: the user may have fixed a typo in one row, and the map, the view
    and most of the selection still make sense, so the session opens and the window says this
    in the status bar. Rows past the end of the data are dropped by the caller.
    """
    saved = session.dataset.fingerprint
    if saved is None or saved == dataset.fingerprint:
        return None
    what = "the file" if session.dataset.path is not None else "the demo data"
    return (
        f"{what.capitalize()} changed since the session was saved, so the map, the selection and "
        f"the bookmarks may not match it ({len(dataset):,} rows now)."
    )


def dataset_location(session: Session, session_file: Path) -> Path | None:
    """Where the session's data is now: its saved path, or, when that is gone, a file of the same
    name beside the session file (a folder copied or sent as a whole). None for the demo."""
    if session.dataset.path is None:
        return None
    saved = Path(session.dataset.path)
    beside = session_file.resolve().parent / saved.name
    return saved if saved.exists() or not beside.exists() else beside
