"""The query layer shared by the sync and the async client.

Every API method is written once, as a generator decorated with
:class:`api_method`: it ``yield from``s what it needs from the database
(:func:`rows`, :func:`scalar`, :func:`copy_out`, :func:`copy_in`) and gets
each result back. Reached on a :class:`Runner` (``Client``, ``client.admin``)
the method runs at once and returns its result; on an :class:`AsyncRunner`
(``AsyncClient``) it returns a coroutine. Type checkers see the same thing:
``client.record(...)`` is a ``bool`` and so is ``await aclient.record(...)``.
Both clients send the same SQL text and build the same frozen dataclasses.
Each method is a read a hot standby may answer (:data:`REPLICA_READS`) or
runs on the primary (:data:`PRIMARY_ONLY`); a client with replicas routes
its queries accordingly.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import inspect
import io
import types
from collections.abc import Callable, Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, cast, overload

import psycopg
from psycopg import pq

if TYPE_CHECKING:
    from typing_extensions import Self

from .models import build

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
Params = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True)
class Rows:
    """All rows of a query, each turned into a value by ``build``."""

    sql: str
    params: Params
    build: Callable[[dict[str, Any]], Any]
    on_replica: bool = False


@dataclass(frozen=True)
class Scalar:
    """The first column of the first row (None when there is no row)."""

    sql: str
    params: Params
    on_replica: bool = False


@dataclass(frozen=True)
class CopyOut:
    """``COPY ... TO STDOUT`` streamed chunk by chunk into ``out``; the result is the row count."""

    sql: str
    params: Params
    out: IO[Any]
    on_replica: bool = False


@dataclass(frozen=True)
class CopyIn:
    """In one transaction (a savepoint inside the caller's): ``setup``, ``COPY ... FROM STDIN`` of ``rows``, then
    the first column of ``finish`` as the result."""

    setup: str
    copy: str
    rows: Sequence[tuple[Any, ...]]
    finish: str
    on_replica: bool = False
    #: The rows already formatted as COPY text in UTF-8 (by a helper thread, while the previous chunk was
    #: recorded); a driver whose connection uses another encoding writes ``rows`` instead.
    text: bytes | None = None


Query = Rows | Scalar | CopyOut | CopyIn
# ``on_replica``: a client with replicas may run the query on a hot standby (set from REPLICA_READS when the
# query's API method runs, never by the method itself).
#: What an API method is: a generator that yields queries, gets their results and returns a T.
Call = Generator[Query, Any, T]


def rows(sql: str, params: Params, cls: type[R]) -> Call[list[R]]:
    """Every row of ``sql`` as the result dataclass ``cls`` (see :func:`pgtally.models.build`)."""
    return cast("list[R]", (yield Rows(sql, params, functools.partial(build, cls))))


def dict_rows(sql: str, params: Params) -> Call[list[dict[str, Any]]]:
    """Every row of ``sql`` as a dict (for results assembled from several rows)."""
    return cast("list[dict[str, Any]]", (yield Rows(sql, params, dict)))


def first_row(sql: str, params: Params, cls: type[R]) -> Call[R | None]:
    """The first row of ``sql`` as ``cls``, None without a row."""
    found = yield from rows(sql, params, cls)
    return found[0] if found else None


def scalar(sql: str, params: Params) -> Call[Any]:
    """The first column of the first row of ``sql`` (None without a row)."""
    return (yield Scalar(sql, params))


def copy_out(sql: str, params: Params, out: IO[Any]) -> Call[int]:
    """Stream ``COPY (...) TO STDOUT`` into ``out``; the number of rows."""
    return int((yield CopyOut(sql, params, out)))


def copy_in(
    setup: str, copy: str, rows: Sequence[tuple[Any, ...]], finish: str, text: bytes | None = None
) -> Call[Any]:
    """Run ``setup``, COPY ``rows`` (or ``text``, the same rows formatted) in, and return the first column of
    ``finish``, in one transaction."""
    return (yield CopyIn(setup, copy, rows, finish, text=text))


def check_copied(query: CopyIn, copied: int) -> None:
    """Refuses (rolling the chunk back) a COPY whose row count is not the number of rows sent."""
    if copied != len(query.rows):
        raise RuntimeError(f"COPY stored {copied} rows of the {len(query.rows)} sent (a pgtally bug: please report)")


def preformatted(query: CopyIn, encoding: str) -> bytes | None:
    """The COPY text of ``query`` prepared ahead, when it suits a connection with this ``encoding``, else None
    (the driver then writes the rows one by one)."""
    return query.text if encoding == "utf-8" else None


# --------------------------------------------------------------------- routing

#: The API methods (``Class.method``) a client with replicas runs on a hot standby: reads, which a standby
#: answers like the primary (as of its replay). Reached from one of these, a nested method runs there too.
REPLICA_READS = frozenset(
    {
        "CoreApi.lifetime_totals",
        "CoreApi.daily_totals",
        "CoreApi.period_totals",
        "UserReadsMixin.plan_at",
        "UserReadsMixin.subscription_summary",
        "UserReadsMixin.engagement_profile",
        "UserReadsMixin.summary_card",
        "UserReadsMixin.usage_history",
        "UserReadsMixin.compare_usage",
        "UserReadsMixin.usage_peak",
        "UserReadsMixin.weekday_distribution",
        "UserReadsMixin.hour_of_week_heatmap",
        "UserReadsMixin.calendar_heatmap",
        "UserReadsMixin.monthly_summaries",
        "UserReadsMixin.quota_forecast",
        "UserReadsMixin.recommended_plan",
        "UserReadsMixin.usage_anomalies",
        "UserReadsMixin.peer_percentile",
        "UserReadsMixin.usage_insights",
        "UserReadsMixin.export_events_csv",
        "UserReadsMixin.export_rollups_csv",
        "AdminApi.freshness",
        "AdminApi.min_group_size",
        "AdminApi.overview",
        "AdminApi.totals",
        "AdminApi.cost_breakdown",
        "AdminApi.leaderboard",
        "AdminApi.trend",
        "AdminApi.active_users",
        "AdminApi.week_over_week",
        "AdminApi.funnel",
        "AdminApi.reliability",
        "AdminApi.error_codes",
        "AdminApi.cohorts",
        "AdminApi.dashboard",
    }
)

#: The API methods that always run on the primary, and why. A method in neither table runs on the primary
#: too (the safe side); tests/test_standby.py fails until it is put in one of them.
PRIMARY_ONLY: Mapping[str, str] = {
    "CoreApi.record": "writes the log",
    "CoreApi.reverse": "writes the log",
    "CoreApi.amend": "writes the log",
    "CoreApi.record_many": "writes the log (COPY into a temporary staging table)",
    "CoreApi.set_user_settings": "writes the user's settings",
    "CoreApi.declare_dimension": "writes the dimension registry",
    "CoreApi.declare_kind": "writes the kind registry",
    "CoreApi.merge_pending": "folds pending deltas into the rollups",
    "UserReadsMixin.upsert_plan": "writes the plans",
    "UserReadsMixin.start_subscription": "writes the subscriptions",
    "UserReadsMixin.end_subscription": "writes the subscriptions",
    "UserReadsMixin.check_quota": "locks (user, kind) in the caller's transaction and must see the latest usage",
    "AdminApi.refresh": "refreshes the materialized views (and merges first)",
    "AdminApi.schedule_refresh": "writes the pg_cron schedule",
    "AdminApi.set_min_group_size": "writes the analytics settings",
}


# --------------------------------------------------------------------- running


#: Errors after which a call that owns its transaction is repeated. A hot standby cancels a query that
#: conflicts with the WAL it replays with a serialization failure ("conflict with recovery"): repeated too.
RETRYABLE = (psycopg.OperationalError, psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)


def owns_transaction(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], pooled: bool) -> bool:
    """True when a call may be repeated: the connection is borrowed from a pool, or idle in autocommit mode."""
    return pooled or (conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE)


def retry_delay(attempt: int) -> float:
    """Seconds to wait before the ``attempt``-th repeat (exponential, at most 1 s)."""
    return min(0.05 * 2.0**attempt, 1.0)


def is_text_sink(out: Any) -> bool:
    """Text sinks (sys.stdout, StringIO, files opened "w") get str, anything else bytes."""
    if isinstance(out, io.TextIOBase):
        return True
    mode = getattr(out, "mode", None)
    return isinstance(mode, str) and "b" not in mode


def text_decoder(out: Any) -> codecs.IncrementalDecoder | None:
    """An incremental UTF-8 decoder for text sinks (COPY chunks may split a character)."""
    return codecs.getincrementaldecoder("utf-8")() if is_text_sink(out) else None


class Runner:
    """Runs API methods synchronously: each query of a method through ``_execute``, one after the other."""

    def _execute(self, query: Query) -> Any:
        raise NotImplementedError

    def _drive(self, call: Call[T], on_replica: bool = False) -> T:
        """Run an API method's queries one after the other and return its result (on a replica if allowed)."""
        try:
            query = next(call)
            while True:
                try:
                    result = self._execute(dataclasses.replace(query, on_replica=on_replica))
                except Exception as exc:  # the method may handle it (try/except around a yield)
                    query = call.throw(exc)
                    continue
                query = call.send(result)
        except StopIteration as done:
            return cast("T", done.value)


class AsyncRunner:
    """Runs API methods as coroutines: each query of a method through ``await _execute``."""

    async def _execute(self, query: Query) -> Any:
        raise NotImplementedError

    async def _drive(self, call: Call[T], on_replica: bool = False) -> T:
        """Run an API method's queries one after the other and return its result (on a replica if allowed)."""
        try:
            query = next(call)
            while True:
                try:
                    result = await self._execute(dataclasses.replace(query, on_replica=on_replica))
                except Exception as exc:  # the method may handle it (try/except around a yield)
                    query = call.throw(exc)
                    continue
                query = call.send(result)
        except StopIteration as done:
            return cast("T", done.value)


class api_method(Generic[P, T]):
    """Decorator of an API method written once as a generator (``def m(self, ...) -> Call[T]``).

    On a :class:`Runner` instance ``obj.m(...)`` returns the ``T``; on an
    :class:`AsyncRunner` instance it returns a coroutine of the ``T``. Inside
    another API method, ``yield from Class.m.call(self, ...)`` runs it as
    part of that method.
    """

    def __init__(self, fn: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__module__ = fn.__module__
        #: Whether a client with replicas may run this method on a hot standby (see REPLICA_READS).
        self.on_replica = fn.__qualname__ in REPLICA_READS
        on_replica = self.on_replica

        def run(runner: Runner, /, *args: Any, **kwargs: Any) -> Any:
            return runner._drive(fn(runner, *args, **kwargs), on_replica)

        async def run_async(runner: AsyncRunner, /, *args: Any, **kwargs: Any) -> Any:
            return await runner._drive(fn(runner, *args, **kwargs), on_replica)

        self._run = functools.wraps(fn)(run)
        self._run_async = functools.wraps(fn)(run_async)
        # help() and IDEs show the value a call returns, not the generator.
        signature = inspect.signature(fn)
        returns = signature.return_annotation
        if isinstance(returns, str) and returns.startswith("Call[") and returns.endswith("]"):
            signature = signature.replace(return_annotation=returns[len("Call[") : -1])
        for wrapper in (self._run, self._run_async):
            setattr(wrapper, "__signature__", signature)  # noqa: B010 - functions have no typed __signature__

    @overload
    def __get__(self, obj: None, owner: type[AsyncRunner]) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, obj: None, owner: type[Runner]) -> Callable[Concatenate[Any, P], T]: ...

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: AsyncRunner, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, obj: Runner, owner: type[Any]) -> Callable[P, T]: ...

    def __get__(self, obj: object, owner: type[Any]) -> Any:
        """On a client: the bound method (sync or async); on a client class: its function; on an API class: itself."""
        if obj is None:
            if issubclass(owner, AsyncRunner):
                return self._run_async
            if issubclass(owner, Runner):
                return self._run
            return self
        if isinstance(obj, AsyncRunner):
            return types.MethodType(self._run_async, obj)
        if isinstance(obj, Runner):
            return types.MethodType(self._run, obj)
        raise TypeError(f"{self.__qualname__} runs on a Runner or an AsyncRunner, not on {type(obj).__name__}")

    def call(self, obj: Any, /, *args: P.args, **kwargs: P.kwargs) -> Call[T]:
        """The method's generator, to ``yield from`` inside another API method."""
        return self.fn(obj, *args, **kwargs)
