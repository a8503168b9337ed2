"""The thin Python client: one method per SQL function, typed results.

``Client`` accepts a psycopg connection or a ``psycopg_pool.ConnectionPool``;
with a pool every call borrows one connection. Errors of class PT are raised as
the exceptions in :mod:`pgtally.errors`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .admin import AdminClient
from ._query import Call, Query, QueryBuilder, Rows, Scalar, synchronous, text_decoder
from .errors import translated
from .models import DailyTotal, DimensionTotal, PeriodTotal, UsageEvent
from .user_reads import UserReadsMixin

try:  # optional dependency
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover
    ConnectionPool = None  # type: ignore[assignment,misc]

T = TypeVar("T")

RECORD_SQL = """
select tally.record_usage(
  event_id => %(event_id)s, user_id => %(user_id)s, kind => %(kind)s, quantity => %(quantity)s,
  occurred_at => coalesce(%(occurred_at)s::timestamptz, now()), duration_ms => %(duration_ms)s,
  cost => %(cost)s::numeric, status => %(status)s, error_code => %(error_code)s, billable => %(billable)s,
  attributes => %(attributes)s::jsonb, corrects_event_id => %(corrects_event_id)s)
"""

STAGING_COLUMNS = ("event_id", "user_id", "kind", "quantity", "occurred_at", "duration_ms", "cost", "status",
                   "error_code", "billable", "attributes", "corrects_event_id")
STAGING_COPY = f"copy pg_temp.tally_staging ({', '.join(STAGING_COLUMNS)}) from stdin"


def staging_row(e: UsageEvent) -> tuple[Any, ...]:
    """One event as a row of STAGING_COLUMNS, for COPY into the staging table (sync and async clients)."""
    return (e.event_id, e.user_id, e.kind, e.quantity, e.occurred_at, e.duration_ms, e.cost, e.status,
            e.error_code, e.billable, Jsonb(dict(e.attributes)), e.corrects_event_id)

Connectable = Any  # psycopg.Connection | psycopg_pool.ConnectionPool


class CoreApi(QueryBuilder):
    """Writes and the core reads, written once for the sync and the async client."""

    # ------------------------------------------------------------------ writes

    def record(self, event_id: str, user_id: str, kind: str, quantity: int = 0, *,
               occurred_at: dt.datetime | None = None, duration_ms: int | None = None,
               cost: Decimal | int | str = 0, status: str = "succeeded", error_code: str | None = None,
               billable: bool = True, attributes: Mapping[str, Any] | None = None,
               corrects_event_id: str | None = None) -> bool:
        """Record one usage event; True when new, False when ``event_id`` was already recorded.

        Runs in the connection's current transaction, so it commits or rolls
        back with the caller's own writes. Example::

            tally.record("ocr-page-9", "user-42", "ocr", 1, cost="0.0015", attributes={"model": "tesseract"})
        """
        params = dict(event_id=event_id, user_id=user_id, kind=kind, quantity=quantity, occurred_at=occurred_at,
                      duration_ms=duration_ms, cost=str(cost), status=status, error_code=error_code,
                      billable=billable, attributes=Jsonb(dict(attributes or {})),
                      corrects_event_id=corrects_event_id)
        return bool((yield self._scalar(RECORD_SQL, params)))

    def reverse(self, original_event_id: str, event_id: str) -> bool:
        """Reverse a succeeded event (booked in its own buckets); True when the reversal is new.

        Example: ``tally.reverse("tts-job-1", "tts-job-1:refund")``
        """
        return bool((yield self._scalar("select tally.reverse_usage(%s, %s)", (original_event_id, event_id))))

    def amend(self, original_event_id: str, event_id: str, *, quantity_delta: int = 0,
              duration_ms_delta: int | None = None, cost_delta: Decimal | int | str = 0) -> bool:
        """Amend an event by signed deltas booked in its own buckets; True when the amendment is new.

        Example: ``tally.amend("tts-job-1", "tts-job-1:recount", quantity_delta=-12)``
        """
        return bool((yield self._scalar("select tally.amend_usage(%s, %s, %s, %s, %s::numeric)",
                                 (original_event_id, event_id, quantity_delta, duration_ms_delta, str(cost_delta)))))

    def set_user_settings(self, user_id: str, *, time_zone: str = "UTC", billing_anchor_day: int = 1) -> None:
        """Set a user's time zone and billing anchor day. Example: ``tally.set_user_settings("u1", time_zone="Europe/Berlin")``"""
        (yield self._scalar("select tally.set_user_settings(%s, %s, %s)", (user_id, time_zone, billing_anchor_day)))

    def declare_dimension(self, name: str, keys: Sequence[str], description: str | None = None) -> None:
        """Declare a dimension from attribute keys. Example: ``tally.declare_dimension("voice_model", ["model", "voice"])``"""
        (yield self._scalar("select tally.declare_dimension(%s, %s, %s)", (name, list(keys), description)))

    def merge_pending(self, max_rows: int = 100_000) -> int:
        """Fold pending deltas into the rollups; returns how many merged (0 when another merge runs)."""
        return int((yield self._scalar("select tally.merge_pending(%s)", (max_rows,))) or 0)

    # ------------------------------------------------------------------- reads

    def lifetime_totals(self, user_id: str, dimension: str = "kind") -> list[DimensionTotal]:
        """Lifetime totals of a user per value of ``dimension``, largest quantity first.

        Example: ``[t.value for t in tally.lifetime_totals("user-42", "voice")]``
        """
        return (yield self._rows("select * from tally.lifetime_totals(%s, %s)", (user_id, dimension), DimensionTotal.from_row))

    def daily_totals(self, user_id: str, dimension: str, from_day: dt.date, to_day: dt.date) -> list[DailyTotal]:
        """Totals of a user per local day and value of ``dimension`` (days with activity only).

        Example: ``tally.daily_totals("user-42", "kind", date(2026, 11, 1), date(2026, 11, 30))``
        """
        return (yield self._rows("select * from tally.daily_totals(%s, %s, %s, %s)", (user_id, dimension, from_day, to_day),
                          DailyTotal.from_row))

    def period_totals(self, user_id: str, at: dt.datetime | None = None) -> list[PeriodTotal]:
        """Billing-period counters per kind for the period containing ``at`` (default now).

        Example: ``{p.kind: p.quantity for p in tally.period_totals("user-42")}``
        """
        return (yield self._rows("select * from tally.period_totals(%s, coalesce(%s::timestamptz, now()))", (user_id, at),
                          PeriodTotal.from_row))


@synchronous
class Client(CoreApi, UserReadsMixin):
    """Synchronous pgtally client.

    Example::

        with psycopg.connect(dsn, autocommit=True) as conn:
            tally = Client(conn)
            tally.record("tts-job-1", "user-42", "tts", 180, attributes={"voice": "af_alloy"})
            for row in tally.lifetime_totals("user-42", "voice"):
                print(row.value, row.duration_text)
    """

    def __init__(self, conn: Connectable, *, retries: int = 3, dsn: str | None = None) -> None:
        """Wrap a psycopg connection or pool.

        ``retries``: how often a call that owns its transaction is repeated
        after a lost connection, a serialization failure or a deadlock (with
        a short backoff). ``dsn``: lets a plain connection be re-opened after
        it was lost (``Client.connect`` passes it).
        """
        self._conn = conn
        self._retries = retries
        self._dsn = dsn

    @classmethod
    def connect(cls, dsn: str, *, retries: int = 3) -> Client:
        """A client on a new autocommit connection (close it with ``client.close()``)."""
        return cls(psycopg.connect(dsn, autocommit=True), retries=retries, dsn=dsn)

    @property
    def admin(self) -> AdminClient:
        """Admin and analyst reads (platform analytics over the materialized views)."""
        return AdminClient(self)

    def close(self) -> None:
        """Close the underlying connection or pool."""
        self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """The connection to use for one call (borrowed from the pool when there is one)."""
        if ConnectionPool is not None and isinstance(self._conn, ConnectionPool):
            with self._conn.connection() as conn:
                yield conn
        else:
            yield self._conn

    def _run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """Run ``work`` on a connection, repeating it when that is safe.

        A call that owns its transaction (autocommit connection, or a pool) is
        repeated after a lost connection, a serialization failure or a
        deadlock: every write is idempotent by event_id, so a repeat never
        counts twice (a repeated ``record`` may return False for an event the
        lost attempt did commit). Inside the caller's transaction nothing is
        repeated: the caller must retry the whole transaction.
        """
        attempt = 0
        pooled = ConnectionPool is not None and isinstance(self._conn, ConnectionPool)
        while True:
            owns_transaction = True
            try:
                with self.connection() as conn, translated():
                    owns_transaction = pooled or (
                        conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE)
                    return work(conn)
            except (psycopg.OperationalError, psycopg.errors.SerializationFailure,
                    psycopg.errors.DeadlockDetected) as exc:
                attempt += 1
                if not owns_transaction or attempt > self._retries:
                    raise
                self._recover(exc)
                time.sleep(min(0.05 * 2 ** attempt, 1.0))

    def _recover(self, exc: Exception) -> None:
        """Re-open a lost plain connection (a pool replaces broken ones itself)."""
        if isinstance(exc, psycopg.OperationalError) and isinstance(self._conn, psycopg.Connection) and self._conn.broken:
            if not self._dsn:
                raise exc
            self._conn = psycopg.connect(self._dsn, autocommit=True)

    def _execute(self, query: Query) -> Any:
        """Run one query of an API method (with the retries of ``_run``)."""
        def work(conn: psycopg.Connection) -> Any:
            if isinstance(query, Rows):
                with conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(query.sql, query.params)
                    return [query.build(r) for r in cur.fetchall()]
            if isinstance(query, Scalar):
                row = conn.execute(query.sql, query.params).fetchone()
                return row[0] if row else None
            decoder = text_decoder(query.out)
            with conn.cursor() as cur:
                with cur.copy(query.sql, query.params) as copy:
                    for chunk in copy:
                        query.out.write(decoder.decode(chunk) if decoder else chunk)
                if decoder:
                    query.out.write(decoder.decode(b"", final=True))
                return max(cur.rowcount, 0)

        return self._run(work)

    def _drive(self, call: Call[T]) -> T:
        """Run an API method's queries one after the other and return its result."""
        try:
            query = next(call)
            while True:
                try:
                    result = self._execute(query)
                except Exception as exc:  # noqa: BLE001 - the method may handle it (try/except around a yield)
                    query = call.throw(exc)
                    continue
                query = call.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def record_many(self, events: Iterable[UsageEvent | Mapping[str, Any]], *, chunk_size: int = 5000,
                    progress: Callable[[int], None] | None = None) -> int:
        """Record many events set-wise; returns how many were new (duplicates are skipped).

        Each chunk of ``chunk_size`` events is COPYed into the session's
        staging table and recorded set-wise by ``tally.record_usage_staged``
        (validation all-or-nothing per chunk, keys inserted in event_id order
        so concurrent overlapping batches cannot deadlock; a sequence is
        sorted as a whole). Each chunk is its own transaction in autocommit
        mode, a savepoint inside the caller's transaction. ``progress`` is called with
        the number of events sent after each chunk. Example::

            n = tally.record_many(UsageEvent(f"job-{i}", "user-42", "tts", 120) for i in range(100_000))
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        if isinstance(events, Sequence):
            events = sorted((UsageEvent.from_mapping(e) for e in events), key=lambda e: e.event_id)
        added = 0
        iterator = iter(events)
        while chunk := [UsageEvent.from_mapping(e) for e in itertools.islice(iterator, chunk_size)]:
            chunk.sort(key=lambda e: e.event_id)

            def work(conn: psycopg.Connection, chunk: list[UsageEvent] = chunk) -> Any:
                with conn.transaction():
                    conn.execute("select tally.begin_staging()")
                    with conn.cursor() as cur, cur.copy(STAGING_COPY) as copy:
                        for e in chunk:
                            copy.write_row(staging_row(e))
                    return conn.execute("select tally.record_usage_staged()").fetchone()

            row = self._run(work)
            added += int(row[0]) if row else 0
            if progress:
                progress(len(chunk))
        return added

