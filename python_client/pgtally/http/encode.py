"""JSON responses serialized by pydantic-core straight from the library's dataclasses.

FastAPI's ``response_model`` path turns a dataclass into a dict with ``dataclasses.asdict`` (a deep copy, about
25 ms for a year of daily buckets) and validates it again; the routes declare their ``response_model`` for the
OpenAPI document but answer with these bytes, made by a cached ``TypeAdapter`` of the same type.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from starlette.responses import Response

_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def adapter(model: Any) -> TypeAdapter[Any]:
    """The (cached) TypeAdapter of a type."""
    found = _ADAPTERS.get(model)
    if found is None:
        found = _ADAPTERS[model] = TypeAdapter(model)
    return found


def dump(model: Any, value: Any, **options: Any) -> bytes:
    """``value`` (of type ``model``) as JSON bytes; ``options`` as for ``TypeAdapter.dump_json`` (exclude, ...)."""
    return adapter(model).dump_json(value, **options)


def respond(model: Any, value: Any, *, headers: dict[str, str] | None = None, **options: Any) -> Response:
    """A JSON response of ``value`` serialized as ``model``."""
    return Response(dump(model, value, **options), media_type="application/json", headers=headers)
