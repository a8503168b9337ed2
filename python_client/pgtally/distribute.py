"""Distributes an installed pgtally schema over a Citus cluster (run on the coordinator).

Every table of the ``tally`` schema is classified here, table by table:

* ``DISTRIBUTED``: per-user tables, distributed by ``user_id`` and co-located
  with the log ``tally.usage_events``, so every statement about one user (the
  insert trigger, the merge's upserts, a quota check) runs on that user's shard.
* ``REFERENCE``: small shared tables (settings of the ledger, plans, kinds,
  dimensions, lock rows), copied to every node so a worker can join them.
* ``LOCAL``: tables that stay on the coordinator only: operational logs and
  queues read and written by the owner's jobs on the coordinator, and tables
  whose keys cannot include ``user_id`` (a unique unsubscribe token, webhook ids).

``distribute`` is idempotent: a table already distributed as classified is left
alone, and a second run reports that nothing changed. Materialized views stay on
the coordinator (Citus keeps them local; ``tally.refresh_analytics`` reads the
distributed rollups through them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

#: Per-user tables, distributed by user_id and co-located with the log (the log first: the others follow it).
DISTRIBUTED: tuple[str, ...] = (
    "usage_events",
    "event_keys",
    "reversals",
    "pending_deltas",
    "user_totals",
    "user_daily",
    "user_periods",
    "user_sessions",
    "user_hours",
    "user_settings",
    "user_locks",
    "subscriptions",
    "user_kind_days",
    "user_daily_ops",
    "user_daily_durations",
    "user_daily_values",
    "quota_alerts",
    "report_outbox",
)

#: Small shared tables, copied to every node (referenced ones first: foreign keys point at them).
REFERENCE: tuple[str, ...] = (
    "dimensions",
    "kinds",
    "plans",
    "plan_limits",
    "locks",
    "analytics_settings",
)

#: Tables kept on the coordinator only, with the reason.
LOCAL: dict[str, str] = {
    "batch_tokens": "unlogged one-time tokens that live for part of one transaction on the coordinator",
    "retention_runs": "a log of retention runs, written by apply_retention on the coordinator",
    "erasures": "a log of erasures, written by forget_user on the coordinator",
    "refresh_log": "a log of analytics refreshes (the materialized views live on the coordinator)",
    "dashboard_funnels": "the funnels the refresh precomputes, read by a materialized view on the coordinator",
    "admin_daily": "platform totals per day, kept by the refresh on the coordinator beside the materialized views",
    "admin_daily_stale": "the days the refresh re-aggregates (on Citus it re-aggregates every day: see STATEMENT_TRIGGERS)",
    "report_subscriptions": "a unique unsubscribe token that cannot include user_id; owner jobs read it",
    "webhook_endpoints": "a handful of endpoints keyed by an identity column",
    "alert_deliveries": "delivery state keyed by alert and endpoint, not by user",
    "alert_delivery_attempts": "delivery log keyed by alert and endpoint, not by user",
}

#: Statement-level triggers: Citus refuses them on distributed and reference tables. Those of the log and its
#: partitions (the row triggers keep refusing changes), and those that mark the changed days of the platform's
#: daily totals (on Citus the refresh re-aggregates every day instead).
STATEMENT_TRIGGERS: tuple[str, ...] = (
    "usage_events_before_change_refuse_statement",
    "usage_events_before_truncate_refuse",
    "usage_events_before_insert_check_batch_token",
    "user_daily_values_after_insert_mark_days",
    "user_daily_values_after_update_mark_days",
    "user_daily_values_after_delete_mark_days",
    "user_daily_values_after_truncate_mark_days",
    "kinds_after_insert_mark_days",
    "kinds_after_update_mark_days",
    "kinds_after_delete_mark_days",
    "kinds_after_truncate_mark_days",
    "dimensions_after_change_mark_days",
)

#: Database-level settings a distributed install needs (see docs/scale-out.md).
DATABASE_SETTINGS: dict[str, str] = {
    # The log's row triggers stay: their bodies touch only co-located rows of the same user.
    "citus.enable_unsafe_triggers": "on",
    # SET LOCAL (a reader's tally.user_id, a batch token) reaches the workers of the transaction.
    "citus.propagate_set_commands": "local",
}


#: Roles whose sessions open Citus's connections to the workers (the owner of the SECURITY DEFINER functions).
#: The API's group roles too: a pooled login role switches to one of them per request (SET ROLE), and the
#: shard queries of that request then connect to the workers as it.
LOGIN_ROLES: tuple[str, ...] = ("tally_owner", "tally_reader", "tally_writer", "tally_analyst")

#: Readers may not read the log's shards (Citus runs a shard query as the current user): on a distributed
#: install their view of the log reads through a SECURITY DEFINER function that returns their rows only.
READER_VIEW = "my_usage_events"
READER_VIEW_FUNCTION = "tally._my_usage_events_distributed()"


class DistributeError(RuntimeError):
    """The database cannot be distributed (no Citus, no pgtally, an unclassified table)."""


@dataclass
class DistributeResult:
    """What a run of :func:`distribute` changed; empty lists mean nothing was left to do."""

    distributed: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    triggers_dropped: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.distributed or self.reference or self.triggers_dropped or self.settings or self.roles)


def classification() -> dict[str, str]:
    """Every classified table of the tally schema and its class: distributed, reference or local."""
    out = {t: "distributed" for t in DISTRIBUTED}
    out.update({t: "reference" for t in REFERENCE})
    out.update({t: "local" for t in LOCAL})
    return out


def schema_tables(conn: psycopg.Connection) -> list[str]:
    """The tables of the tally schema (partitions of the log excluded: they follow their parent)."""
    rows = conn.execute(
        "select c.relname from pg_catalog.pg_class c"
        " where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition"
        " order by c.relname"
    ).fetchall()
    return [r[0] for r in rows]


def unclassified(conn: psycopg.Connection) -> list[str]:
    """Tables of the installed schema this module does not classify."""
    known = classification()
    return [t for t in schema_tables(conn) if t not in known]


def has_citus(conn: psycopg.Connection) -> bool:
    return conn.execute("select exists (select from pg_catalog.pg_extension where extname = 'citus')").fetchone() == (
        True,
    )


def _current_classes(conn: psycopg.Connection) -> dict[str, str]:
    """How Citus holds each tally table now: 'h' hash-distributed, 'n' reference/local with metadata."""
    rows = conn.execute(
        "select c.relname, p.partmethod, p.repmodel from pg_catalog.pg_dist_partition p"
        " join pg_catalog.pg_class c on c.oid = p.logicalrelid"
        " where c.relnamespace = 'tally'::regnamespace and not c.relispartition"
    ).fetchall()
    out: dict[str, str] = {}
    for name, method, repmodel in rows:
        if method == "h":
            out[name] = "distributed"
        elif method == "n" and repmodel == "t":
            out[name] = "reference"
        else:
            out[name] = "local"
    return out


def undistributed_tables(dsn: str) -> list[str]:
    """On a distributed install, the tables of schema ``tally`` not laid out as classified here: a table a
    migration added (``pgtally migrate`` names them; ``pgtally distribute`` lays them out). Empty elsewhere."""
    with psycopg.connect(dsn) as conn:
        found = conn.execute("select to_regprocedure('tally._is_distributed()') is not null").fetchone()
        if not found or not found[0] or conn.execute("select tally._is_distributed()").fetchone() != (True,):
            return []
        known = classification()
        current = _current_classes(conn)
        return [t for t in schema_tables(conn) if current.get(t, "local") != known.get(t, "unclassified")]


def distribute(dsn: str) -> DistributeResult:
    """Distribute the pgtally schema of the database at ``dsn`` (a Citus coordinator, as a superuser)."""
    result = DistributeResult()
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not has_citus(conn):
            raise DistributeError("this server is not a Citus coordinator (the citus extension is not installed)")
        if conn.execute("select to_regclass('tally.usage_events')").fetchone() == (None,):
            raise DistributeError("pgtally is not installed in this database (run pgtally migrate first)")
        if missing := unclassified(conn):
            raise DistributeError(f"tables of the tally schema not classified for Citus: {', '.join(missing)}")
        dbname = conn.info.dbname
        for name, value in DATABASE_SETTINGS.items():
            now = conn.execute(
                "select exists (select from pg_catalog.pg_db_role_setting s join pg_catalog.pg_database d"
                " on d.oid = s.setdatabase where d.datname = current_database() and s.setrole = 0"
                " and %s = any (s.setconfig))",
                [f"{name}={value}"],
            ).fetchone()
            if now != (True,):
                conn.execute(
                    sql.SQL("alter database {} set {} = {}").format(
                        sql.Identifier(dbname), sql.SQL(name), sql.Literal(value)
                    )
                )
                result.settings.append(f"{name} = {value}")
            # This session needs them too (the database default applies to new sessions).
            conn.execute(sql.SQL("set {} = {}").format(sql.SQL(name), sql.Literal(value)))
        # SECURITY DEFINER functions run as tally_owner, and Citus opens its connections to the
        # workers as the current user: the owner must be able to log in (over the nodes' own
        # authentication, e.g. trust on a private network or certificates in citus.node_conninfo).
        for role in LOGIN_ROLES:
            if conn.execute("select rolcanlogin from pg_catalog.pg_roles where rolname = %s", [role]).fetchone() == (
                False,
            ):
                conn.execute(sql.SQL("alter role {} login").format(sql.Identifier(role)))
                result.roles.append(f"{role} login")
        current = _current_classes(conn)
        views = _materialized_views(conn)
        with conn.transaction():
            # First: a reference table may not have one either (tally.kinds). A second run finds none.
            result.triggers_dropped = _drop_statement_triggers(conn)
            for table in REFERENCE:
                if current.get(table) != "reference":
                    conn.execute("select create_reference_table(%s)", [f"tally.{table}"])
                    result.reference.append(table)
            for table in DISTRIBUTED:
                if current.get(table) != "distributed":
                    colocate = "default" if table == "usage_events" else "tally.usage_events"
                    conn.execute(
                        "select create_distributed_table(%s, 'user_id', colocate_with => %s)",
                        [f"tally.{table}", colocate],
                    )
                    result.distributed.append(table)
            _restore_materialized_views(conn, views)
            if _point_reader_view(conn):
                result.settings.append(f"tally.{READER_VIEW} reads through {READER_VIEW_FUNCTION}")
    return result


def _point_reader_view(conn: psycopg.Connection) -> bool:
    """Makes tally.my_usage_events read through the owner's function (once); True when it changed."""
    body = conn.execute("select pg_catalog.pg_get_viewdef(%s::regclass)", [f"tally.{READER_VIEW}"]).fetchone()
    if body is not None and "_my_usage_events_distributed" in str(body[0]):
        return False
    conn.execute(
        sql.SQL("create or replace view tally.{} with (security_barrier) as select * from {}").format(
            sql.Identifier(READER_VIEW), sql.SQL(READER_VIEW_FUNCTION)
        )
    )
    conn.execute(sql.SQL("grant execute on function {} to tally_reader").format(sql.SQL(READER_VIEW_FUNCTION)))
    return True


@dataclass
class _ViewDetails:
    oid: int
    comment: str | None
    indexes: list[str]
    grants: list[tuple[str, str]]


def _materialized_views(conn: psycopg.Connection) -> dict[str, _ViewDetails]:
    """The materialized views of the tally schema with what a re-creation by Citus loses."""
    out: dict[str, _ViewDetails] = {}
    rows = conn.execute(
        "select c.relname, c.oid::bigint, pg_catalog.obj_description(c.oid, 'pg_class'),"
        " array(select i.indexdef from pg_catalog.pg_indexes i"
        "        where i.schemaname = 'tally' and i.tablename = c.relname order by i.indexname),"
        " array(select array[(select r.rolname from pg_catalog.pg_roles r where r.oid = a.grantee)::text, a.privilege_type] from pg_catalog.aclexplode(c.relacl) a"
        "        where a.grantee <> c.relowner and a.grantee <> 0 order by 1)"
        " from pg_catalog.pg_class c where c.relnamespace = 'tally'::regnamespace and c.relkind = 'm'"
    ).fetchall()
    for name, oid, comment, indexes, grants in rows:
        out[name] = _ViewDetails(int(oid), comment, list(indexes), [(g[0], g[1]) for g in grants])
    return out


def _restore_materialized_views(conn: psycopg.Connection, before: dict[str, _ViewDetails]) -> None:
    """Gives back to each materialized view Citus re-created its indexes, comment and grants.

    Adding a table to Citus's metadata drops and re-creates the views that depend on it with their
    query and owner only: the unique index ``REFRESH MATERIALIZED VIEW CONCURRENTLY`` needs would be
    gone. (Up to revision 0006 ``tally.admin_daily_mv`` read ``tally.kinds``; the daily totals are a
    table now, and this keeps any view that reads a converted table whole.)
    """
    now = _materialized_views(conn)
    for name, old in before.items():
        new = now.get(name)
        if new is None or new.oid == old.oid:
            continue
        for indexdef in old.indexes:
            if indexdef not in new.indexes:
                conn.execute(sql.SQL(indexdef))  # pg_indexes' own definition
        if old.comment is not None and new.comment != old.comment:
            conn.execute(
                sql.SQL("comment on materialized view {} is {}").format(
                    sql.Identifier("tally", name), sql.Literal(old.comment)
                )
            )
        for grantee, privilege in old.grants:
            conn.execute(
                sql.SQL("grant {} on {} to {}").format(
                    sql.SQL(privilege), sql.Identifier("tally", name), sql.Identifier(grantee)
                )
            )


def _drop_statement_triggers(conn: psycopg.Connection) -> list[str]:
    """Drops the statement triggers of the tally schema (Citus allows row triggers only)."""
    rows = conn.execute(
        "select t.tgname, t.tgrelid::regclass::text from pg_catalog.pg_trigger t"
        " join pg_catalog.pg_class c on c.oid = t.tgrelid"
        " where c.relnamespace = 'tally'::regnamespace and t.tgname = any (%s)"
        " order by 2, 1",
        [list(STATEMENT_TRIGGERS)],
    ).fetchall()
    dropped = []
    for name, rel in rows:
        conn.execute(sql.SQL("drop trigger {} on {}").format(sql.Identifier(name), sql.SQL(rel)))
        dropped.append(f"{rel}.{name}")
    return dropped
