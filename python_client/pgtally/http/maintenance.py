"""What the server does with the maintenance DSN: read the backlog for /metrics, and merge on a schedule.

The maintenance DSN is a role that may read ``tally.pending_deltas`` and run ``tally.merge_pending`` (a member
of tally_owner, or the owner itself). One connection, opened on first use and reopened after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import psycopg

from .metrics import Metrics, read_backlog

log = logging.getLogger("pgtally.http")

#: Deltas merged per tally.merge_pending call of the background merge.
MERGE_BATCH = 50_000


class Maintenance:
    """A connection as the maintenance role, shared by the backlog gauges and the background merge."""

    def __init__(self, dsn: str, metrics: Metrics) -> None:
        self.dsn = dsn
        self.metrics = metrics
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, application_name="pgtally-http-maintenance"
            )
        return self._conn

    async def backlog(self) -> tuple[int, float | None]:
        """Pending deltas and the age of the oldest (seconds)."""
        async with self._lock:
            return await read_backlog(await self._connection())

    async def merge(self, max_calls: int = 100) -> int:
        """Merge pending deltas until none are left (or another merge holds the lock); returns how many."""
        total = 0
        async with self._lock:
            conn = await self._connection()
            for _ in range(max_calls):
                started = time.perf_counter()
                cur = await conn.execute("select tally.merge_pending(%s)", (MERGE_BATCH,))
                row = await cur.fetchone()
                merged = int(row[0]) if row and row[0] else 0
                self.metrics.observe_merge(merged, time.perf_counter() - started)
                total += merged
                if merged < MERGE_BATCH:
                    break
        return total

    def start(self, interval_s: float) -> None:
        """Merge every ``interval_s`` seconds in the background until :meth:`close`."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    merged = await self.merge()
                    if merged:
                        log.info("merged %d pending deltas", merged)
                except psycopg.Error as exc:
                    self.metrics.merge_errors.inc()
                    log.warning("background merge failed: %s", exc)

        self._task = asyncio.get_running_loop().create_task(loop(), name="pgtally-merge")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
