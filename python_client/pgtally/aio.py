"""The async twin of :class:`pgtally.Client`: the same methods, awaited.

``AsyncClient`` accepts a ``psycopg.AsyncConnection`` or a
``psycopg_pool.AsyncConnectionPool``. Every API method is shared with the
sync client (see :mod:`pgtally._query`), so both send the same SQL and return
the same frozen dataclasses::

    async with await AsyncClient.connect(dsn) as tally:
        await tally.record("tts-job-1", "user-42", "tts", 180, attributes={"voice": "af_alloy"})
        card = await tally.summary_card("user-42")

Given ``replicas`` (hot standbys), it runs reads there and writes on the
primary, like :class:`pgtally.Client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from ._query import (
    RETRYABLE,
    AsyncRunner,
    CopyIn,
    Query,
    Rows,
    Scalar,
    check_copied,
    owns_transaction,
    preformatted,
    retry_delay,
    text_decoder,
)
from ._replicas import REPLAY_SQL, WAL_POSITION_SQL, Replica, Routing, RoutingStats, parse_lsn, replica_lost
from .admin import AsyncAdminClient
from .core import CoreApi
from .errors import translated
from .user_reads import UserReadsMixin

try:  # optional dependency
    from psycopg_pool import AsyncConnectionPool
except ImportError:  # pragma: no cover
    AsyncConnectionPool = None  # type: ignore[assignment,misc]

T = TypeVar("T")


class AsyncClient(CoreApi, UserReadsMixin, AsyncRunner):
    """Asynchronous pgtally client (psycopg AsyncConnection or AsyncConnectionPool)."""

    def __init__(
        self,
        conn: Any,
        *,
        retries: int = 3,
        dsn: str | None = None,
        replicas: Sequence[Any] = (),
        replica_wait: float = 1.0,
        replica_retry_after: float = 5.0,
    ) -> None:
        """Wrap an async connection or pool (the primary); the arguments as for :class:`pgtally.Client`, the
        ``replicas`` as DSNs, async connections or async pools."""
        self._conn = conn
        self._retries = retries
        self._dsn = dsn
        self._routing = Routing(replicas, replica_wait, replica_retry_after)
        self._replica_lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        retries: int = 3,
        replicas: Sequence[Any] = (),
        replica_wait: float = 1.0,
        replica_retry_after: float = 5.0,
    ) -> AsyncClient:
        """A client on a new autocommit async connection (close it with ``await client.close()``); ``replicas`` and
        the rest as for the constructor."""
        return cls(
            await psycopg.AsyncConnection.connect(dsn, autocommit=True),
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
    def admin(self) -> AsyncAdminClient:
        """Admin and analyst reads, awaited (``await tally.admin.dashboard()``)."""
        return AsyncAdminClient(self)

    async def close(self) -> None:
        """Close the underlying connection or pool, and the replicas' connections or pools."""
        await self._conn.close()
        for replica in self._routing.replicas:
            target = replica.conn if isinstance(replica.source, str) else replica.source
            if target is not None:
                await target.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The connection for one call (borrowed from the pool when there is one)."""
        if AsyncConnectionPool is not None and isinstance(self._conn, AsyncConnectionPool):
            async with self._conn.connection() as conn:
                yield conn
        else:
            yield self._conn

    async def _run(
        self,
        work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
        on_replica: bool = False,
        repeatable: Callable[[], bool] = lambda: True,
    ) -> T:
        """Run ``work``, repeating it when that is safe, on a replica when allowed (same rules as ``Client._run``)."""
        attempt = lost = 0
        pooled = AsyncConnectionPool is not None and isinstance(self._conn, AsyncConnectionPool)
        while True:
            replica = None
            owned = True
            try:
                if on_replica and lost <= len(self._routing.replicas):
                    replica = await self._replica_for_read()
                if replica is not None:
                    async with self._replica_connection(replica) as conn:
                        with translated():
                            result = await work(conn)
                    self._routing.count("replica_reads")
                    return result
                async with self.connection() as conn:
                    with translated():
                        owned = owns_transaction(conn, pooled)
                        result = await work(conn)
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
                    await self._recover(exc)
                await asyncio.sleep(retry_delay(attempt))

    # ------------------------------------------------------------- replicas

    async def _replica_for_read(self) -> Replica | None:
        """The replica for a read, or None for the primary (same rules as ``Client._replica_for_read``)."""
        routing = self._routing
        if not routing or (
            isinstance(self._conn, psycopg.AsyncConnection)
            and self._conn.info.transaction_status != pq.TransactionStatus.IDLE
        ):
            return None
        if routing.take_write():
            try:
                routing.require(await self._wal_position())
            except psycopg.Error:
                routing.forget_position()
                return None
        deadline = time.monotonic() + routing.wait
        lagging = False
        for replica in routing.candidates():
            delay = 0.001
            while not routing.caught_up(replica):
                try:
                    async with self._replica_connection(replica) as conn:
                        row = await (await conn.execute(REPLAY_SQL)).fetchone()
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
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, 0.02)
            else:
                return replica
        if lagging:
            routing.count("lagging")
        return None

    async def _wal_position(self) -> int:
        """The primary's WAL position now, which covers everything committed through this client."""
        async with self.connection() as conn:
            opened = not conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE
            row = await (await conn.execute(WAL_POSITION_SQL)).fetchone()
            if opened:
                await conn.rollback()  # leave the caller's connection as it was
        return parse_lsn(row[0] if row else None)

    @contextlib.asynccontextmanager
    async def _replica_connection(self, replica: Replica) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection to ``replica``: borrowed from its pool, its own, or opened (again) from its DSN."""
        source = replica.source
        if AsyncConnectionPool is not None and isinstance(source, AsyncConnectionPool):
            async with source.connection() as conn:
                yield conn
            return
        if isinstance(source, str):
            async with self._replica_lock:
                if replica.conn is None or replica.conn.closed or replica.conn.broken:
                    replica.conn = await psycopg.AsyncConnection.connect(source, autocommit=True)
                conn = replica.conn
            yield conn
            return
        yield source

    async def _recover(self, exc: Exception) -> None:
        """Re-open a lost plain connection (a pool replaces broken ones itself)."""
        if (
            isinstance(exc, psycopg.OperationalError)
            and isinstance(self._conn, psycopg.AsyncConnection)
            and self._conn.broken
        ):
            if not self._dsn:
                raise exc
            self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)

    async def _execute(self, query: Query) -> Any:
        """Run one query of an API method (with the retries of ``_run``)."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> Any:
            if isinstance(query, Rows):
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(query.sql, query.params)
                    return [query.build(r) for r in await cur.fetchall()]
            if isinstance(query, Scalar):
                found = await (await conn.execute(query.sql, query.params)).fetchone()
                return found[0] if found else None
            if isinstance(query, CopyIn):
                async with conn.transaction():
                    await conn.execute(query.setup)
                    async with conn.cursor() as cur:
                        async with cur.copy(query.copy) as copy:
                            if (text := preformatted(query, conn.info.encoding)) is not None:
                                await copy.write(text)
                            else:
                                for values in query.rows:
                                    await copy.write_row(values)
                        check_copied(query, cur.rowcount)
                    found = await (await conn.execute(query.finish)).fetchone()
                    return found[0] if found else None
            decoder = text_decoder(query.out)
            async with conn.cursor() as cur:
                async with cur.copy(query.sql, query.params) as copy:
                    async for chunk in copy:
                        if not streamed:
                            streamed.append(True)
                        query.out.write(decoder.decode(chunk) if decoder else chunk)
                if decoder:
                    query.out.write(decoder.decode(b"", final=True))
                return max(cur.rowcount, 0)

        streamed: list[bool] = []  # an export that wrote to its sink cannot be repeated
        return await self._run(work, query.on_replica, lambda: not streamed)
