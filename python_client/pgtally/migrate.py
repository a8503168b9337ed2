"""Apply pgtally's Alembic migrations to a database (what `pgtally migrate` runs)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, cast

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import create_engine, pool

from ._resources import project_file
from .errors import PgTallyError

#: Tables an installation fills by itself (seeded dimensions, lock rows, default settings):
#: a downgrade may drop their rows without --drop-data.
#: Tables whose rows are not data a downgrade could lose: rows the install writes itself, lock rows
#: (tally.user_locks holds one row per user and scope that quota checks and subscription changes lock), and the
#: platform's daily totals with their marks (derived from the rollups: revision 0006's view is re-created from them).
INSTALL_TABLES = frozenset(
    {
        "tally.dimensions",
        "tally.kinds",
        "tally.locks",
        "tally.analytics_settings",
        "tally.user_locks",
        "tally.batch_tokens",
        "tally.dashboard_funnels",
        "tally.admin_daily",
        "tally.admin_daily_stale",
    }
)


class DataLossRefused(PgTallyError):
    """A downgrade would drop (or empty) tables that hold rows; it was rolled back, nothing changed.

    ``rows`` maps each such table (a partitioned table counts its partitions)
    to the rows it would lose; ``events`` is the usage events among them.
    """

    def __init__(self, revision: str, rows: dict[str, int]) -> None:
        self.revision = revision
        self.rows = rows
        self.events = rows.get("tally.usage_events", 0)
        others = sorted(((n, t) for t, n in rows.items() if t != "tally.usage_events"), reverse=True)
        listed = ", ".join(f"{t} {n:,}" for n, t in others[:4]) + (", ..." if len(others) > 4 else "")
        what = [f"{self.events:,} usage events (tally.usage_events)"] if self.events else []
        if others:
            tables = f"{len(others)} {'more ' if self.events else ''}table{'s' if len(others) > 1 else ''}"
            what.append(f"the rows of {tables} ({listed})")
        super().__init__(
            f"downgrading to {revision} would drop {' and '.join(what)}; nothing was changed. "
            "Back the data up, then downgrade with --drop-data (drop_data=True) to drop them."
        )


def alembic_config(dsn: str | None = None, output: io.StringIO | None = None) -> Config:
    """An Alembic Config pointing at pgtally's migrations (no alembic.ini needed)."""
    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(project_file("migrations")))
    if dsn:
        cfg.cmd_opts = None
        cfg.attributes["dsn"] = dsn
    return cfg


#: Wraps a migration command (given as a thunk) on the migration's connection, and may refuse it.
Guard = Callable[[psycopg.Connection[Any], Callable[[], object]], None]
#: An Alembic command: ``command.upgrade``, ``command.downgrade``, ``command.stamp``.
Command = Callable[[Config, str], object]


def _run(dsn: str, fn: Command, revision: str, guard: Guard | None = None) -> None:
    """Run an Alembic command in one transaction, inside ``guard`` when one is given."""
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=pool.NullPool)
    with engine.begin() as conn:
        cfg = alembic_config(dsn)
        cfg.attributes["connection"] = conn
        if guard is None:
            fn(cfg, revision)
        else:
            guard(cast("psycopg.Connection[Any]", conn.connection.driver_connection), lambda: fn(cfg, revision))


def upgrade(dsn: str, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the latest)."""
    _run(dsn, command.upgrade, revision)


def downgrade(dsn: str, revision: str = "base", *, drop_data: bool = False) -> None:
    """Downgrade the database to ``revision`` (default: remove pgtally).

    A downgrade that would drop or empty a table of schema ``tally`` holding
    rows (the usage log, rollups, plans, ...; not the rows an install creates
    itself, see INSTALL_TABLES) raises :class:`DataLossRefused` and changes
    nothing, unless ``drop_data`` is true. Downgrades that lose no rows run.
    """
    if drop_data:
        _run(dsn, command.downgrade, revision)
    else:
        _run(dsn, command.downgrade, revision, guard=lambda conn, run: _refuse_data_loss(conn, run, revision))


def _refuse_data_loss(conn: psycopg.Connection[Any], run: Callable[[], object], revision: str) -> None:
    """Run the downgrade after a savepoint; if a table that held rows is gone or empty, undo it and refuse.

    Trying the downgrade (inside the migration's transaction) tells exactly
    what it drops, whatever the revision's SQL does; only tables found to
    lose rows are counted, after rolling back to the savepoint.
    """
    held: list[tuple[str, str]] = []  # (table, the name it is reported under: its partitioned root or itself)
    # On Citus, counting rows of distributed tables in parallel would forbid the downgrade's function DDL later in
    # this transaction: one connection per worker instead.
    conn.execute(
        "select set_config('citus.multi_shard_modify_mode', 'sequential', true)"
        " where current_setting('citus.multi_shard_modify_mode', true) is not null"
    )
    for name, root in conn.execute(
        """select c.relname, r.relname
                 from pg_class c
                 join pg_class r on r.oid = coalesce(pg_partition_root(c.oid), c.oid)
                where c.relnamespace = (select oid from pg_namespace where nspname = 'tally') and c.relkind = 'r'
                order by 1"""
    ).fetchall():
        table = sql.Identifier("tally", name)
        if f"tally.{root}" not in INSTALL_TABLES and _rows(conn, table, exists=True):
            held.append((name, f"tally.{root}"))
    conn.execute("savepoint pgtally_downgrade_guard")
    run()
    gone = "select to_regclass(format('%%I.%%I', 'tally', %s::text)) is null"
    lost = [
        (name, root)
        for name, root in held
        if conn.execute(gone, (name,)).fetchone() == (True,)
        or not _rows(conn, sql.Identifier("tally", name), exists=True)
    ]
    if not lost:
        return
    conn.execute("rollback to savepoint pgtally_downgrade_guard")
    rows: dict[str, int] = {}
    for name, root in lost:
        rows[root] = rows.get(root, 0) + _rows(conn, sql.Identifier("tally", name), exists=False)
    raise DataLossRefused(revision, rows)


def _rows(conn: psycopg.Connection, table: sql.Identifier, *, exists: bool) -> int:
    """Whether ``table`` holds a row (1 or 0) or, with ``exists`` false, how many."""
    # (select 1: Citus cannot plan a subquery with no column over a distributed table)
    query = sql.SQL("select exists (select 1 from {})::int") if exists else sql.SQL("select count(*) from {}")
    found = conn.execute(query.format(table)).fetchone()
    return int(found[0]) if found else 0


def current_revision(dsn: str) -> str | None:
    """The revision the database is at, or None when pgtally is not installed."""
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("select to_regclass('public.alembic_version') is not null").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("select version_num from public.alembic_version").fetchone()
        return row[0] if row else None


def offline_sql(revision: str = "head") -> str:
    """The SQL an upgrade to ``revision`` would run, without connecting."""
    buf = io.StringIO()
    cfg = alembic_config(output=buf)
    command.upgrade(cfg, revision, sql=True)
    return buf.getvalue()
