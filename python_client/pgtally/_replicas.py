"""Reads on hot standbys: the routing state :class:`pgtally.Client` and :class:`pgtally.AsyncClient` share.

A client given replicas runs the API methods of
:data:`pgtally._query.REPLICA_READS` on one of them (in turn) and every other
method on the primary. Read-your-writes: after a call on the primary, the
client's next read first asks the primary for its WAL position (one short
query) and reads on a replica only once that replica has replayed up to it,
waiting at most ``replica_wait`` seconds; otherwise it reads on the primary.
A read inside the caller's open transaction on the primary connection stays
there. A replica that cannot be reached is left out for
``replica_retry_after`` seconds and the read goes to another one or to the
primary.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Any

import psycopg

#: The primary's WAL position that covers every transaction committed so far: the flush position when commits
#: wait for the flush (then a commit's record is flushed before the client hears of it), otherwise the insert
#: position (a commit with synchronous_commit=off returns before its record is flushed).
WAL_POSITION_SQL = (
    "select case when pg_catalog.current_setting('synchronous_commit') = 'off'"
    " then pg_catalog.pg_current_wal_insert_lsn() else pg_catalog.pg_current_wal_flush_lsn() end::text"
)
#: Whether the server is a standby, and how far it has replayed the WAL.
REPLAY_SQL = "select pg_catalog.pg_is_in_recovery(), pg_catalog.pg_last_wal_replay_lsn()::text"

#: A replica that is not a standby (promoted) has every transaction it knows of.
NOT_A_STANDBY = 1 << 64


def parse_lsn(text: str | None) -> int:
    """A WAL position ``"16/B374D848"`` as an integer (0 for None)."""
    if not text:
        return 0
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def replica_conninfo(dsn: str) -> str:
    """A replica's DSN with a short ``connect_timeout`` unless it sets one: a replica that is down is skipped."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    if "connect_timeout" in params:
        return dsn
    return psycopg.conninfo.make_conninfo(dsn, connect_timeout=3)


def replica_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the replica cannot serve at all (down, unreachable, shutting down), not one query."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    if state is None:  # no server answer: could not connect, or the connection is gone
        return True
    return state.startswith("08") or state in ("57P01", "57P02", "57P03")


@dataclasses.dataclass(frozen=True)
class RoutingStats:
    """Where a client with replicas ran its queries (``client.routing_stats``); a method may run several."""

    #: Queries of reads a replica answered.
    replica_reads: int = 0
    #: Queries of reads the primary answered: no replica had caught up with the client's writes in time, none
    #: was up, or the read ran inside the caller's open transaction.
    primary_reads: int = 0
    #: Queries of methods that run on the primary (writes, quota checks, refreshes).
    primary_calls: int = 0
    #: Read queries sent to the primary because no replica replayed the client's last write in ``replica_wait``.
    lagging: int = 0
    #: Times a replica could not be reached and was left out for ``replica_retry_after`` seconds.
    replica_failures: int = 0


class Replica:
    """One replica: a DSN (the client opens and re-opens its own connection), a connection or a pool."""

    def __init__(self, source: Any) -> None:
        self.source = replica_conninfo(source) if isinstance(source, str) else source
        self.conn: Any = None
        self.replayed = 0
        self.down_until = 0.0


class Routing:
    """The replicas of one client, its read-your-writes position and its counters (thread-safe)."""

    def __init__(self, sources: Any, wait: float, retry_after: float) -> None:
        if wait < 0:
            raise ValueError("replica_wait must be 0 or more seconds")
        if retry_after < 0:
            raise ValueError("replica_retry_after must be 0 or more seconds")
        if isinstance(sources, str):
            raise TypeError("replicas must be a list of DSNs, connections or pools, not one string")
        self.replicas = [Replica(s) for s in sources or ()]
        self.wait = wait
        self.retry_after = retry_after
        self.target = 0
        self._wrote = False
        self._turn = 0
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def __bool__(self) -> bool:
        return bool(self.replicas)

    def wrote(self) -> None:
        """A call ran on the primary: the next read must see what it committed."""
        with self._lock:
            self._wrote = True
            self._counts["primary_calls"] += 1

    def take_write(self) -> bool:
        """Whether a call ran on the primary since the last time the WAL position was taken (and forget it)."""
        with self._lock:
            wrote, self._wrote = self._wrote, False
            return wrote

    def forget_position(self) -> None:
        """The next read must take the WAL position (again): it could not be taken, or a call on the primary
        failed in a way that may have committed."""
        with self._lock:
            self._wrote = True

    def require(self, position: int) -> None:
        """Reads must come from replicas that have replayed up to ``position``."""
        with self._lock:
            self.target = max(self.target, position)

    def candidates(self) -> list[Replica]:
        """The replicas not left out, starting with the next in turn."""
        now = time.monotonic()
        with self._lock:
            up = [r for r in self.replicas if r.down_until <= now]
            if not up:
                return []
            self._turn = (self._turn + 1) % len(up)
            return up[self._turn :] + up[: self._turn]

    def caught_up(self, replica: Replica) -> bool:
        return replica.replayed >= self.target

    def saw(self, replica: Replica, in_recovery: bool | None, replayed: str | None) -> bool:
        """Note what the replica answered to REPLAY_SQL; whether it has caught up."""
        position = parse_lsn(replayed) if in_recovery else NOT_A_STANDBY
        with self._lock:
            replica.replayed = max(replica.replayed, position)
        return self.caught_up(replica)

    def mark_down(self, replica: Replica) -> None:
        with self._lock:
            replica.down_until = time.monotonic() + self.retry_after
            self._counts["replica_failures"] += 1

    def count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def stats(self) -> RoutingStats:
        with self._lock:
            return RoutingStats(**self._counts)
