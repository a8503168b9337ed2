"""The thin Python client: one method per SQL function, typed results.

``Client`` accepts a psycopg connection or a ``psycopg_pool.ConnectionPool``;
with a pool every call borrows one connection. Errors of class PT are raised as
the exceptions in :mod:`pgtally.errors`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from ._query import RETRYABLE, CopyIn, Query, Rows, Runner, Scalar, owns_transaction, retry_delay, text_decoder
from .admin import AdminClient
from .core import CoreApi
from .errors import translated
from .user_reads import UserReadsMixin

try:  # optional dependency
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover
    ConnectionPool = None  # type: ignore[assignment,misc]

T = TypeVar("T")

Connectable = Any  # psycopg.Connection | psycopg_pool.ConnectionPool


class Client(CoreApi, UserReadsMixin, Runner):
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
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection to use for one call (borrowed from the pool when there is one)."""
        if ConnectionPool is not None and isinstance(self._conn, ConnectionPool):
            with self._conn.connection() as conn:
                yield conn
        else:
            yield self._conn

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
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
            repeatable = True
            try:
                with self.connection() as conn, translated():
                    repeatable = owns_transaction(conn, pooled)
                    return work(conn)
            except RETRYABLE as exc:
                attempt += 1
                if not repeatable or attempt > self._retries:
                    raise
                self._recover(exc)
                time.sleep(retry_delay(attempt))

    def _recover(self, exc: Exception) -> None:
        """Re-open a lost plain connection (a pool replaces broken ones itself)."""
        if (
            isinstance(exc, psycopg.OperationalError)
            and isinstance(self._conn, psycopg.Connection)
            and self._conn.broken
        ):
            if not self._dsn:
                raise exc
            self._conn = psycopg.connect(self._dsn, autocommit=True)

    def _execute(self, query: Query) -> Any:
        """Run one query of an API method (with the retries of ``_run``)."""

        def work(conn: psycopg.Connection[Any]) -> Any:
            if isinstance(query, Rows):
                with conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(query.sql, query.params)
                    return [query.build(r) for r in cur.fetchall()]
            if isinstance(query, Scalar):
                row = conn.execute(query.sql, query.params).fetchone()
                return row[0] if row else None
            if isinstance(query, CopyIn):
                with conn.transaction():
                    conn.execute(query.setup)
                    with conn.cursor() as cur, cur.copy(query.copy) as copy:
                        for values in query.rows:
                            copy.write_row(values)
                    row = conn.execute(query.finish).fetchone()
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
