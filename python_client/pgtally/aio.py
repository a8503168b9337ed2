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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from ._query import RETRYABLE, AsyncRunner, CopyIn, Query, Rows, Scalar, owns_transaction, retry_delay, text_decoder
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
            repeatable = True
            try:
                async with self.connection() as conn:
                    with translated():
                        repeatable = owns_transaction(conn, pooled)
                        return await work(conn)
            except RETRYABLE as exc:
                attempt += 1
                if not repeatable or attempt > self._retries:
                    raise
                await self._recover(exc)
                await asyncio.sleep(retry_delay(attempt))

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
                    async with conn.cursor() as cur, cur.copy(query.copy) as copy:
                        for values in query.rows:
                            await copy.write_row(values)
                    found = await (await conn.execute(query.finish)).fetchone()
                    return found[0] if found else None
            decoder = text_decoder(query.out)
            async with conn.cursor() as cur:
                async with cur.copy(query.sql, query.params) as copy:
                    async for chunk in copy:
                        query.out.write(decoder.decode(chunk) if decoder else chunk)
                if decoder:
                    query.out.write(decoder.decode(b"", final=True))
                return max(cur.rowcount, 0)

        return await self._run(work)
