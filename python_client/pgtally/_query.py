"""The query layer shared by the sync and the async client.

API methods are written once, as generators that ``yield`` what they need
from the database (:class:`Rows`, :class:`Scalar`, :class:`CopyOut`) and
receive the result back. ``Client`` runs them on a psycopg connection or pool,
``AsyncClient`` on an async connection or pool, so both clients send the same
SQL text and build the same frozen dataclasses.
"""

from __future__ import annotations

import codecs
import functools
import inspect
import io
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeVar

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True)
class Rows:
    """All rows of a query, each turned into a value by ``build`` (e.g. ``Model.from_row``)."""

    sql: str
    params: Params
    build: Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Scalar:
    """The first column of the first row (None when there is no row)."""

    sql: str
    params: Params


@dataclass(frozen=True)
class CopyOut:
    """``COPY ... TO STDOUT`` streamed chunk by chunk into ``out``; the result is the row count."""

    sql: str
    params: Params
    out: IO[Any]


Query = Rows | Scalar | CopyOut
Call = Generator[Query, Any, T]


class QueryBuilder:
    """Helpers API methods use to describe their queries (``return (yield self._rows(...))``)."""

    @staticmethod
    def _rows(sql: str, params: Params, build: Callable[[dict[str, Any]], T]) -> Rows:
        return Rows(sql, params, build)

    @staticmethod
    def _scalar(sql: str, params: Params) -> Scalar:
        return Scalar(sql, params)

    @staticmethod
    def _copy_out(sql: str, params: Params, out: IO[Any]) -> CopyOut:
        return CopyOut(sql, params, out)


def is_text_sink(out: Any) -> bool:
    """Text sinks (sys.stdout, StringIO, files opened "w") get str, anything else bytes."""
    if isinstance(out, io.TextIOBase):
        return True
    mode = getattr(out, "mode", None)
    return isinstance(mode, str) and "b" not in mode


def text_decoder(out: Any) -> codecs.IncrementalDecoder | None:
    """An incremental UTF-8 decoder for text sinks (COPY chunks may split a character)."""
    return codecs.getincrementaldecoder("utf-8")() if is_text_sink(out) else None


def api_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """Every generator method an API class and its bases define (the methods to drive)."""
    found: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if not name.startswith("_") and inspect.isgeneratorfunction(value):
                found[name] = value
    return found


def synchronous(cls: type[T]) -> type[T]:
    """Class decorator: expose each generator API method as a plain method driven by ``self._drive``."""
    for name, fn in api_methods(cls).items():
        def wrapper(self: Any, *args: Any, __fn: Callable[..., Any] = fn, **kwargs: Any) -> Any:
            return self._drive(__fn(self, *args, **kwargs))

        setattr(cls, name, functools.wraps(fn)(wrapper))
    return cls


def asynchronous(cls: type[T]) -> type[T]:
    """Class decorator: expose each generator API method as a coroutine driven by ``self._adrive``."""
    for name, fn in api_methods(cls).items():
        async def wrapper(self: Any, *args: Any, __fn: Callable[..., Any] = fn, **kwargs: Any) -> Any:
            return await self._adrive(__fn(self, *args, **kwargs))

        setattr(cls, name, functools.wraps(fn)(wrapper))
    return cls
