"""The parameters of a projection method, one :class:`ParamSpec` each: type, default, bounds or
choices and a line of help, so the command line (``--param k=v``) and the desktop's form parse
and check them the same way. The methods' specs themselves are
:data:`engine.maps.projection.PARAMETERS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from engine.errors import BadInputError

Value = int | float | str | bool
Kind = Literal["int", "float", "choice", "bool"]
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a method: its type, default, bounds or choices, and a line of help."""

    kind: Kind
    default: Value
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    words: tuple[str, ...] = ()  # accepted in place of a number, e.g. "auto"

    def parse(self, name: str, raw: object) -> Value:
        """``raw`` (a string from a form or command line, or a Python value) as this parameter's type.

        Raises :class:`BadInputError` with one sentence naming the parameter and the value.
        """
        word = raw.strip().lower() if isinstance(raw, str) else raw
        if word in self.words:
            return str(word)
        if self.kind == "bool":
            return _parse_bool(name, raw, word)
        if self.kind == "choice":
            if word not in self.choices:
                raise BadInputError(f"{name} must be one of {listed(self.choices, 'or')}, not {raw!r}.")
            return str(word)
        number = _parse_number(name, raw, self.kind, self.words)
        if self.minimum is not None and number < self.minimum:
            raise BadInputError(f"{name} must be at least {shown(self.minimum)}, not {shown(number)}.")
        if self.maximum is not None and number > self.maximum:
            raise BadInputError(f"{name} must be at most {shown(self.maximum)}, not {shown(number)}.")
        return number


def _parse_bool(name: str, raw: object, word: object) -> bool:
    if isinstance(word, bool):
        return word
    if isinstance(word, str) and word in _TRUE | _FALSE:
        return word in _TRUE
    raise BadInputError(f"{name} must be true or false, not {raw!r}.")


def _parse_number(name: str, value: object, kind: Kind, words: tuple[str, ...]) -> int | float:
    other = f", or {listed(words, 'or')}" if words else ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadInputError(f"{name} must be a number{other}, not {value!r}.")
    try:
        number = float(value)
    except ValueError:
        raise BadInputError(f"{name} must be a number{other}, not {value!r}.") from None
    if not math.isfinite(number):
        raise BadInputError(f"{name} must be a finite number, not {value!r}.")
    if kind == "float":
        return number
    if not number.is_integer():
        raise BadInputError(f"{name} must be a whole number{other}, not {value!r}.")
    return int(number)


def shown(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def listed(names: tuple[str, ...] | list[str], last: str) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"
