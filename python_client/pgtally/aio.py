"""The async twin of :class:`pgtally.Client`: the same methods, awaited.

``AsyncClient`` accepts a ``psycopg.AsyncConnection`` or a
``psycopg_pool.AsyncConnectionPool``. Every API method is shared with the
sync client (see :mod:`pgtally._query`), so both send the same SQL and return
the same frozen dataclasses::

    async with await AsyncClient.connect(dsn) as tally:
        await tally.record("tts-job-1", "user-42", "tts", 180, attributes={"voice": "af_alloy"})
        card = await tally.summary_card("user-42")
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Awaitable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from ._query import Call, Query, Rows, Scalar, asynchronous, text_decoder
from .admin import AsyncAdminClient
from .client import STAGING_COPY, CoreApi, staging_row
from .errors import translated
from .models import UsageEvent
from .user_reads import UserReadsMixin

try:  # optional dependency
    from psycopg_pool import AsyncConnectionPool
except ImportError:  # pragma: no cover
    AsyncConnectionPool = None  # type: ignore[assignment,misc]

T = TypeVar("T")


@asynchronous
class AsyncClient(CoreApi, UserReadsMixin):
    """Asynchronous pgtally client (psycopg AsyncConnection or AsyncConnectionPool)."""

    def __init__(self, conn: Any, *, retries: int = 3, dsn: str | None = None) -> None:
        """Wrap an async connection or pool; ``retries`` and ``dsn`` as for :class:`pgtally.Client`."""
        self._conn = conn
        self._retries = retries
        self._dsn = dsn

    @classmethod
    async def connect(cls, dsn: str, *, retries: int = 3) -> AsyncClient:
        """A client on a new autocommit async connection (close it with ``await client.close()``)."""
        return cls(await psycopg.AsyncConnection.connect(dsn, autocommit=True), retries=retries, dsn=dsn)

    @property
    def admin(self) -> AsyncAdminClient:
        """Admin and analyst reads, awaited (``await tally.admin.dashboard()``)."""
        return AsyncAdminClient(self)

    async def close(self) -> None:
        """Close the underlying connection or pool."""
        await self._conn.close()

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

    async def _run(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run ``work``, repeating it when that is safe (same rules as ``Client._run``)."""
        attempt = 0
        pooled = AsyncConnectionPool is not None and isinstance(self._conn, AsyncConnectionPool)
        while True:
            owns_transaction = True
            try:
                async with self.connection() as conn:
                    with translated():
                        owns_transaction = pooled or (
                            conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE)
                        return await work(conn)
            except (psycopg.OperationalError, psycopg.errors.SerializationFailure,
                    psycopg.errors.DeadlockDetected) as exc:
                attempt += 1
                if not owns_transaction or attempt > self._retries:
                    raise
                if (isinstance(exc, psycopg.OperationalError) and isinstance(self._conn, psycopg.AsyncConnection)
                        and self._conn.broken):
                    if not self._dsn:
                        raise
                    self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
                await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0))

    async def _execute(self, query: Query) -> Any:
        async def work(conn: psycopg.AsyncConnection[Any]) -> Any:
            if isinstance(query, Rows):
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(query.sql, query.params)
                    return [query.build(r) for r in await cur.fetchall()]
            if isinstance(query, Scalar):
                cur = await conn.execute(query.sql, query.params)
                row = await cur.fetchone()
                return row[0] if row else None
            decoder = text_decoder(query.out)
            async with conn.cursor() as cur:
                async with cur.copy(query.sql, query.params) as copy:
                    async for chunk in copy:
                        query.out.write(decoder.decode(chunk) if decoder else chunk)
                if decoder:
                    query.out.write(decoder.decode(b"", final=True))
                return max(cur.rowcount, 0)

        return await self._run(work)

    async def _adrive(self, call: Call[T]) -> T:
        """Run an API method's queries one after the other and return its result."""
        try:
            query = next(call)
            while True:
                try:
                    result = await self._execute(query)
                except Exception as exc:  # noqa: BLE001 - the method may handle it
                    query = call.throw(exc)
                    continue
                query = call.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def record_many(self, events: Iterable[UsageEvent | Mapping[str, Any]], *, chunk_size: int = 5000,
                          progress: Callable[[int], None] | None = None) -> int:
        """Record many events set-wise (COPY into the session's staging table); see :meth:`pgtally.Client.record_many`."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        if isinstance(events, Sequence):
            events = sorted((UsageEvent.from_mapping(e) for e in events), key=lambda e: e.event_id)
        added = 0
        iterator = iter(events)
        while chunk := [UsageEvent.from_mapping(e) for e in itertools.islice(iterator, chunk_size)]:
            chunk.sort(key=lambda e: e.event_id)

            async def work(conn: psycopg.AsyncConnection[Any], chunk: list[UsageEvent] = chunk) -> Any:
                async with conn.transaction():
                    await conn.execute("select tally.begin_staging()")
                    async with conn.cursor() as cur:
                        async with cur.copy(STAGING_COPY) as copy:
                            for e in chunk:
                                await copy.write_row(staging_row(e))
                    cur2 = await conn.execute("select tally.record_usage_staged()")
                    return await cur2.fetchone()

            row = await self._run(work)
            added += int(row[0]) if row else 0
            if progress:
                progress(len(chunk))
        return added
