"""The thin Python client: one method per SQL function, typed results.

``Client`` accepts a psycopg connection or a ``psycopg_pool.ConnectionPool``;
with a pool every call borrows one connection. Errors of class PT are raised as
the exceptions in :mod:`pgtally.errors`. Given ``replicas`` (hot standbys), it
runs reads there and writes on the primary (see :mod:`pgtally._replicas`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from ._query import (
    RETRYABLE,
    CopyIn,
    Query,
    Rows,
    Runner,
    Scalar,
    check_copied,
    owns_transaction,
    preformatted,
    retry_delay,
    text_decoder,
)
from ._replicas import REPLAY_SQL, WAL_POSITION_SQL, Replica, Routing, RoutingStats, parse_lsn, replica_lost
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

    def __init__(
        self,
        conn: Connectable,
        *,
        retries: int = 3,
        dsn: str | None = None,
        replicas: Sequence[str | Connectable] = (),
        replica_wait: float = 1.0,
        replica_retry_after: float = 5.0,
    ) -> None:
        """Wrap a psycopg connection or pool (the primary).

        ``retries``: how often a call that owns its transaction is repeated
        after a lost connection, a serialization failure (which includes a
        hot standby's "conflict with recovery") or a deadlock (with a short
        backoff). ``dsn``: lets a plain connection be re-opened after it was
        lost (``Client.connect`` passes it).

        ``replicas``: hot standbys of the primary, each a DSN (the client
        opens its own autocommit connection), a connection or a pool. Reads
        then go to a replica, in turn; writes, quota checks and refreshes to
        the primary. After a call on the primary the next read waits up to
        ``replica_wait`` seconds for the replica to replay it, then reads on
        the primary. A replica that cannot be reached is left out for
        ``replica_retry_after`` seconds.
        """
        self._conn = conn
        self._retries = retries
        self._dsn = dsn
        self._routing = Routing(replicas, replica_wait, replica_retry_after)
        self._replica_lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        dsn: str,
        *,
        retries: int = 3,
        replicas: Sequence[str | Connectable] = (),
        replica_wait: float = 1.0,
        replica_retry_after: float = 5.0,
    ) -> Client:
        """A client on a new autocommit connection to ``dsn`` (close it with ``client.close()``); ``replicas`` and
        the rest as for the constructor. Example: ``Client.connect(primary_dsn, replicas=[standby_dsn])``"""
        return cls(
            psycopg.connect(dsn, autocommit=True),
            retries=retries,
            dsn=dsn,
            replicas=replicas,
            replica_wait=replica_wait,
            replica_retry_after=replica_retry_after,
        )

    @property
    def routing_stats(self) -> RoutingStats:
        """Where this client's calls ran so far (all zero without replicas)."""
        return self._routing.stats()

    @property
    def admin(self) -> AdminClient:
        """Admin and analyst reads (platform analytics over the materialized views)."""
        return AdminClient(self)

    def close(self) -> None:
        """Close the underlying connection or pool, and the replicas' connections or pools."""
        self._conn.close()
        for replica in self._routing.replicas:
            target = replica.conn if isinstance(replica.source, str) else replica.source
            if target is not None:
                target.close()

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

    def _run(
        self,
        work: Callable[[psycopg.Connection[Any]], T],
        on_replica: bool = False,
        repeatable: Callable[[], bool] = lambda: True,
    ) -> T:
        """Run ``work`` on a connection, repeating it when that is safe.

        A call that owns its transaction (autocommit connection, or a pool) is
        repeated after a lost connection, a serialization failure or a
        deadlock: every write is idempotent by event_id, so a repeat never
        counts twice (a repeated ``record`` may return False for an event the
        lost attempt did commit). Inside the caller's transaction nothing is
        repeated: the caller must retry the whole transaction. ``on_replica``:
        the call may run on a replica (see ``_replica_for_read``); a replica
        found down is left out and the call runs again elsewhere at once.
        ``repeatable``: False once the call has done what it cannot undo
        (streamed part of an export).
        """
        attempt = lost = 0
        pooled = ConnectionPool is not None and isinstance(self._conn, ConnectionPool)
        while True:
            replica = None
            owned = True
            try:
                if on_replica and lost <= len(self._routing.replicas):
                    replica = self._replica_for_read()
                if replica is not None:
                    with self._replica_connection(replica) as conn, translated():
                        result = work(conn)
                    self._routing.count("replica_reads")
                    return result
                with self.connection() as conn, translated():
                    owned = owns_transaction(conn, pooled)
                    result = work(conn)
                if self._routing and on_replica:
                    self._routing.count("primary_reads")
                elif self._routing:
                    self._routing.wrote()
                return result
            except RETRYABLE as exc:
                if replica is not None and replica_lost(exc) and repeatable():
                    self._routing.mark_down(replica)
                    lost += 1
                    continue
                if replica is None and not on_replica and self._routing:
                    self._routing.forget_position()  # the lost attempt may have committed: reads must wait for it
                attempt += 1
                if not owned or not repeatable() or attempt > self._retries:
                    raise
                if replica is None:
                    self._recover(exc)
                time.sleep(retry_delay(attempt))

    # ------------------------------------------------------------- replicas

    def _replica_for_read(self) -> Replica | None:
        """The replica for a read, or None for the primary.

        None without replicas, inside the caller's open transaction on the
        primary connection (the read must see it), or when no replica that is
        up replays the client's last call on the primary within
        ``replica_wait`` seconds (read-your-writes).
        """
        routing = self._routing
        if not routing or (
            isinstance(self._conn, psycopg.Connection)
            and self._conn.info.transaction_status != pq.TransactionStatus.IDLE
        ):
            return None
        if routing.take_write():
            try:
                routing.require(self._wal_position())
            except psycopg.Error:
                routing.forget_position()
                return None
        deadline = time.monotonic() + routing.wait
        lagging = False
        for replica in routing.candidates():
            delay = 0.001
            while not routing.caught_up(replica):
                try:
                    with self._replica_connection(replica) as conn:
                        row = conn.execute(REPLAY_SQL).fetchone()
                except psycopg.Error as exc:
                    if not replica_lost(exc):
                        raise
                    routing.mark_down(replica)
                    break
                if row is not None and routing.saw(replica, row[0], row[1]):
                    return replica
                left = deadline - time.monotonic()
                if left <= 0:
                    lagging = True
                    break
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.02)
            else:
                return replica
        if lagging:
            routing.count("lagging")
        return None

    def _wal_position(self) -> int:
        """The primary's WAL position now, which covers everything committed through this client."""
        with self.connection() as conn:
            opened = not conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE
            row = conn.execute(WAL_POSITION_SQL).fetchone()
            if opened:
                conn.rollback()  # leave the caller's connection as it was
        return parse_lsn(row[0] if row else None)

    @contextlib.contextmanager
    def _replica_connection(self, replica: Replica) -> Iterator[psycopg.Connection[Any]]:
        """A connection to ``replica``: borrowed from its pool, its own, or opened (again) from its DSN."""
        source = replica.source
        if ConnectionPool is not None and isinstance(source, ConnectionPool):
            with source.connection() as conn:
                yield conn
            return
        if isinstance(source, str):
            with self._replica_lock:
                if replica.conn is None or replica.conn.closed or replica.conn.broken:
                    replica.conn = psycopg.connect(source, autocommit=True)
                conn = replica.conn
            yield conn
            return
        yield source

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
                    with conn.cursor() as cur:
                        with cur.copy(query.copy) as copy:
                            if (text := preformatted(query, conn.info.encoding)) is not None:
                                copy.write(text)
                            else:
                                for values in query.rows:
                                    copy.write_row(values)
                        check_copied(query, cur.rowcount)
                    row = conn.execute(query.finish).fetchone()
                    return row[0] if row else None
            decoder = text_decoder(query.out)
            with conn.cursor() as cur:
                with cur.copy(query.sql, query.params) as copy:
                    for chunk in copy:
                        if not streamed:
                            streamed.append(True)
                        query.out.write(decoder.decode(chunk) if decoder else chunk)
                if decoder:
                    query.out.write(decoder.decode(b"", final=True))
                return max(cur.rowcount, 0)

        streamed: list[bool] = []  # an export that wrote to its sink cannot be repeated
        return self._run(work, query.on_replica, lambda: not streamed)
