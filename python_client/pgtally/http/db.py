"""The connection pool, and one transaction per request in the caller's database role.

Every request borrows a connection, opens a transaction and, in its first statement, switches to the
identity's role and user with ``set_config(..., true)`` (the same as ``SET LOCAL ROLE`` and ``SET LOCAL
tally.user_id``): both end with the transaction, so a pooled connection never carries them into another
request. Ids are always passed as query parameters, never written into SQL text, except on a Citus install
(below), where a reader's user is also set with ``SET LOCAL`` as a quoted literal.

On Citus the shard queries run on the workers, which ``set_config`` does not reach: ``SET LOCAL`` does (``pgtally
distribute`` sets ``citus.propagate_set_commands = local``). The role stays a ``set_config``: a propagated ``SET
LOCAL ROLE`` would also be sent to the connections the owner's SECURITY DEFINER functions open, and fail there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from .auth import Identity, Role
from .settings import Settings

log = logging.getLogger("pgtally.http")

#: The first statement of every request: role, user and statement timeout, local to the transaction.
_SESSION_SQL = (
    "select set_config('role', %s, true), set_config('tally.user_id', %s, true),"
    " set_config('statement_timeout', %s, true)"
)

#: Whether this database is a Citus coordinator (a catalog any login role may read; SET LOCAL is harmless where
#: the log is not distributed yet).
_DISTRIBUTED_SQL = "select exists (select from pg_catalog.pg_extension where extname = 'citus')"


def set_local_user(user: str) -> sql.Composed:
    """``SET LOCAL tally.user_id`` to ``user`` (a quoted literal): reaches the workers of a Citus transaction."""
    return sql.SQL("set local tally.user_id = {}").format(sql.Literal(user))


class Database:
    """The API's connection pool (opened lazily or by the app's lifespan) and request sessions."""

    def __init__(self, settings: Settings) -> None:
        if not settings.dsn:
            raise ValueError("no database: set Settings.dsn (pgtally serve --dsn, or PGTALLY_DSN / DATABASE_URL)")
        self.settings = settings
        self.dsn = settings.dsn
        self._pool: AsyncConnectionPool[Any] | None = None
        #: Whether the database is a Citus coordinator (checked when the pool opens).
        self.distributed = False
        self._lock = asyncio.Lock()

    async def open(self) -> AsyncConnectionPool[Any]:
        """Open the pool (once) and say which roles the login role may take."""
        async with self._lock:
            if self._pool is None:
                pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                    self.dsn,
                    min_size=self.settings.pool_min_size,
                    max_size=max(self.settings.pool_max_size, self.settings.pool_min_size),
                    timeout=self.settings.pool_timeout_s,
                    kwargs={"application_name": "pgtally-http"},
                    open=False,
                )
                await pool.open()
                self._pool = pool
                await self._check_roles(pool)
                self.distributed = await self._check_distributed(pool)
            return self._pool

    async def _check_roles(self, pool: AsyncConnectionPool[Any]) -> None:
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "select r, pg_has_role(session_user, r, 'MEMBER') from unnest(%s::text[]) r",
                    ([role.db_role for role in Role],),
                )
                missing = [r for r, member in await cur.fetchall() if not member]
        except psycopg.Error as exc:  # the roles do not exist: the schema is not installed yet
            log.warning("cannot check the login role's memberships: %s", exc)
            return
        if missing:
            log.warning(
                "the login role is not a member of %s: requests needing them get 403 (see docs/http.md)",
                ", ".join(missing),
            )

    async def _check_distributed(self, pool: AsyncConnectionPool[Any]) -> bool:
        try:
            async with pool.connection() as conn:
                row = await (await conn.execute(_DISTRIBUTED_SQL)).fetchone()
        except psycopg.Error as exc:  # the schema is not installed yet
            log.warning("cannot tell whether this is a Citus coordinator: %s", exc)
            return False
        return bool(row and row[0])

    async def close(self) -> None:
        async with self._lock:
            if self._pool is not None:
                await self._pool.close()
                self._pool = None

    @contextlib.asynccontextmanager
    async def session(
        self, identity: Identity | None, role: Role, *, timeout: bool = True
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection inside a transaction running as ``role`` (and, for readers, as the identity's user).

        The transaction commits when the block ends and rolls back when it raises. ``timeout=False`` lifts the
        statement timeout (streamed exports).
        """
        pool = self._pool or await self.open()
        async with pool.connection() as conn, conn.transaction():
            params = session_params(identity, role, self.settings, timeout)
            await conn.execute(_SESSION_SQL, params)
            if self.distributed and params[1]:
                await conn.execute(set_local_user(params[1]))
            yield conn


def session_params(identity: Identity | None, role: Role, settings: Settings, timeout: bool) -> tuple[str, str, str]:
    """Parameters of the per-request ``set_config`` statement."""
    user = identity.user_id if identity is not None and role is Role.reader else ""
    return (role.db_role, user, str(settings.statement_timeout_ms if timeout else 0))


@contextlib.contextmanager
def sync_session(dsn: str, identity: Identity, role: Role, settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """The same per-request session on a new synchronous connection (for sync renderers run in a thread)."""
    with psycopg.connect(dsn, application_name="pgtally-http") as conn:
        row = conn.execute(_DISTRIBUTED_SQL).fetchone()
        conn.commit()
        with conn.transaction():
            params = session_params(identity, role, settings, False)
            conn.execute(_SESSION_SQL, params)
            if row and row[0] and params[1]:
                conn.execute(set_local_user(params[1]))
            yield conn
