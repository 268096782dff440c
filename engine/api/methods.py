"""The API's method table, read from :class:`~engine.api.protocol.EngineAPI` itself.

A *call* is a method of the protocol whose first parameter is a request dataclass; each has one
request type and one result type, both read from the protocol's annotations. The process
proxy gets one remote method per call, the worker dispatches only these names and checks the
request's type, and the wire rebuilds only the dataclasses these types are made of.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from engine.api.protocol import EngineAPI


@dataclass(frozen=True)
class Call:
    name: str
    request: type
    result: type


@cache
def calls() -> Mapping[str, Call]:
    """Every call of :class:`EngineAPI`, by method name."""
    table: dict[str, Call] = {}
    namespace = vars(inspect.getmodule(EngineAPI))
    for name, member in inspect.getmembers(EngineAPI, inspect.isfunction):
        if name.startswith("_"):
            continue
        hints = typing.get_type_hints(member, globalns=namespace)
        parameters = list(inspect.signature(member).parameters)
        request = hints.get(parameters[1]) if len(parameters) > 1 else None
        if parameters[1:2] != ["request"] or not _is_dataclass_type(request):
            continue  # reconfigured, close: the engine's own life, not calls
        assert request is not None
        table[name] = Call(name, request, hints["return"])
    return table


def call_for(request: object) -> Call:
    """The call that takes ``request`` (each request type belongs to exactly one call)."""
    for call in calls().values():
        if type(request) is call.request:
            return call
    raise TypeError(f"{type(request).__name__} is not a request of the engine's API.")


@cache
def wire_types() -> Mapping[str, type]:
    """The dataclasses a message may carry: every request and result, and the dataclasses
    their fields hold (found by walking the annotations, so a new field type cannot be missed)."""
    found: dict[str, type] = {}
    for call in calls().values():
        for cls in (call.request, call.result):
            for each in _dataclasses_in(cls):
                found[each.__name__] = each
    return found


def _dataclasses_in(annotation: Any) -> Iterator[type]:
    seen: set[type] = set()
    pending = [annotation]
    while pending:
        current = pending.pop()
        if _is_dataclass_type(current):
            if current in seen:
                continue
            seen.add(current)
            yield current
            module = inspect.getmodule(current)
            hints = typing.get_type_hints(current, globalns=vars(module) if module else None)
            pending.extend(hints[f.name] for f in dataclasses.fields(current) if f.name in hints)
        else:
            pending.extend(a for a in typing.get_args(current) if not isinstance(a, types.EllipsisType))


def _is_dataclass_type(value: Any) -> bool:
    return isinstance(value, type) and dataclasses.is_dataclass(value)
