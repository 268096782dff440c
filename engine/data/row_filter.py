"""Filters over one column of a dataset, written the way a person types them.

A condition is one short phrase:

- numbers: ``> 3``, ``>= 0.5``, ``< 10``, ``<= 2``, ``= 4``, ``!= 4``, or a range ``2..10``
  (both ends included);
- anything else: a value (``positive``), several (``positive, neutral``), or their opposite
  (``!= negative`` or ``!= a, b``).

:func:`parse_condition` turns the phrase into a :class:`Condition` (one plain sentence on a
bad phrase), :func:`matching_rows` applies it to a column's values. Empty cells (None, NaN)
never match a numeric comparison.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.data.column_codes import as_numbers, is_numeric, text_codes
from engine.errors import BadInputError

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
# One end of a range: what a number is made of. Matched against each side of the last "..",
# never across it: a pattern spanning both ends backtracked for 8 s on "1" + 20,000 dots.
_RANGE_END = re.compile(r"[\d.eE+-]+")
_SHOWN_CHARS = 40  # of a phrase quoted back in a message


@dataclass(frozen=True)
class Condition:
    """A parsed condition: a numeric comparison or range, or a set of values (maybe negated)."""

    text: str
    low: float | None = None  # numeric: the lower bound (range) or the compared value
    high: float | None = None  # numeric range only
    comparison: str | None = None  # one of _COMPARISONS, or ".." for a range
    values: frozenset[str] = frozenset()  # text: the values asked for
    negated: bool = False

    @property
    def numeric(self) -> bool:
        return self.comparison is not None


def is_numeric_column(values: Sequence[object]) -> bool:
    """True when every non-empty value is a number (booleans count as text: yes/no categories)."""
    return is_numeric(values)


def parse_condition(text: str, *, numeric: bool) -> Condition:
    """The condition ``text`` means for a numeric or a text column; BadInputError if it means nothing."""
    phrase = text.strip()
    if not phrase:
        raise BadInputError("Type a condition, for example '> 3' or 'positive, neutral'.")
    if numeric:
        return _numeric_condition(phrase)
    negated = phrase.startswith("!=")
    body = phrase[2:] if negated else phrase.removeprefix("=")
    values = frozenset(part.strip() for part in body.split(",") if part.strip())
    if not values:
        raise BadInputError(f"{_quoted(phrase)} names no value: type one or more, separated by commas.")
    return Condition(phrase, values=values, negated=negated)


def matching_rows(values: Sequence[object], condition: Condition) -> npt.NDArray[np.intp]:
    """The rows (ascending) whose value meets ``condition``.

    Vectorised (:mod:`engine.data.column_codes`): each distinct text is compared once, not each row.
    """
    if condition.numeric:
        numbers = as_numbers(values)
        with np.errstate(invalid="ignore"):
            keep = _numeric_mask(numbers, condition)
        return np.flatnonzero(keep & np.isfinite(numbers)).astype(np.intp)
    texts, codes = text_codes(values)
    wanted = np.fromiter((text in condition.values for text in texts), bool, len(texts))
    keep = wanted[codes]
    return np.flatnonzero(~keep if condition.negated else keep).astype(np.intp)


def _numeric_condition(phrase: str) -> Condition:
    start, dots, end = phrase.rpartition("..")
    if dots and _RANGE_END.fullmatch(start.strip()) and _RANGE_END.fullmatch(end.strip()):
        low, high = _number(start, phrase), _number(end, phrase)
        if low > high:
            raise BadInputError(f"The range {_quoted(phrase)} is empty: its start is above its end.")
        return Condition(phrase, low=low, high=high, comparison="..")
    for symbol in _COMPARISONS:  # two-character symbols are listed (and tried) first
        if phrase.startswith(symbol):
            return Condition(phrase, low=_number(phrase[len(symbol) :], phrase), comparison=symbol)
    return Condition(phrase, low=_number(phrase, phrase), comparison="=")


def _numeric_mask(numbers: npt.NDArray[np.float64], condition: Condition) -> npt.NDArray[np.bool_]:
    assert condition.low is not None
    if condition.comparison == "..":
        assert condition.high is not None
        return (numbers >= condition.low) & (numbers <= condition.high)
    compare = _COMPARISONS[str(condition.comparison)]
    return np.asarray(compare(numbers, condition.low), dtype=bool)  # type: ignore[arg-type]


def _number(text: str, phrase: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise BadInputError(
            f"{_quoted(phrase)} is not a condition on numbers: use > 3, <= 0.5, = 4, != 4 or 2..10."
        ) from None
    if math.isnan(value):
        raise BadInputError(f"{_quoted(phrase)} compares with NaN, which matches nothing.")
    return value


def _quoted(phrase: str) -> str:
    """``phrase`` quoted for a message: control characters escaped, a long one shortened."""
    shown = phrase if len(phrase) <= _SHOWN_CHARS else phrase[: _SHOWN_CHARS - 1] + "…"
    return repr(shown)
