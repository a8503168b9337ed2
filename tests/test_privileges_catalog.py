"""Privileges computed from the catalog, not from a hand-kept list.

Every object of the schema is enumerated and judged by the rules of
docs/security.md, so an object a later change adds is judged too: PUBLIC
holds nothing; only tally_writer appends to the log; no lesser role may
change any table; readers and analysts only read; the SECURITY DEFINER
functions a lesser role may execute are the documented entry points; and an
object created after the install (by a later migration or by a DBA working as
tally_owner) grants PUBLIC nothing.
"""

from __future__ import annotations

import psycopg

from pgtally import migrate

LESSER = ("tally_writer", "tally_reader", "tally_analyst")

# The SECURITY DEFINER entry points each lesser role may execute (everything else a definer does is the owner's).
DEFINER_ENTRY_POINTS = {
    # begin_staging makes the session's staging table as the owner (so nothing of the writer's can be attached
    # to it) and _record_staged reads that table, checked to be the one begin_staging made.
    "tally_writer": {
        "record_usage",
        "record_usage_batch",
        "begin_staging",
        "_record_staged",
        "reverse_usage",
        "amend_usage",
        "check_quota",
    },
    # A reader subscribes its own user (tally.user_id) to the monthly summary and unsubscribes by token: the two
    # writes readers may make, each to the report subscriptions only.
    "tally_reader": {"subscribe_reports", "unsubscribe_reports"},
    # The admin reads run as the owner of the views (which hold every group) and hide the small groups.
    "tally_analyst": {
        "refresh_analytics",
        "admin_funnel",
        "admin_funnel_window",
        "admin_overview",
        "admin_totals",
        "admin_leaderboard",
        "admin_trend",
        "admin_active_users",
        "admin_week_over_week",
        "admin_reliability",
        "admin_error_codes",
        "admin_cohorts",
    },
}


def _public_privileges(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        """select 'schema tally', a.privilege_type
             from pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
            where n.nspname = 'tally' and a.grantee = 0
           union all
           select c.oid::regclass::text, a.privilege_type
             from pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
            where c.relnamespace = 'tally'::regnamespace and a.grantee = 0
           union all
           select p.oid::regprocedure::text, a.privilege_type
             from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
            where p.pronamespace = 'tally'::regnamespace and a.grantee = 0
           union all
           select c.oid::regclass::text || '.' || att.attname, a.privilege_type
             from pg_class c join pg_attribute att on att.attrelid = c.oid and att.attnum > 0,
                  aclexplode(att.attacl) a
            where c.relnamespace = 'tally'::regnamespace and a.grantee = 0"""
    ).fetchall()


def test_public_holds_nothing(conn: psycopg.Connection) -> None:
    assert _public_privileges(conn) == []


def test_no_lesser_role_may_change_a_table(conn: psycopg.Connection) -> None:
    """Every table, partition, view and sequence: no lesser role may change it, except writers appending to the log."""
    rows = conn.execute(
        """select r.rolname, c.oid::regclass::text, priv
             from pg_class c
            cross join (values ('tally_writer'), ('tally_reader'), ('tally_analyst')) r(rolname)
            cross join (values ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) p(priv)
            where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
              and (has_table_privilege(r.rolname, c.oid, p.priv)
                   or (p.priv in ('INSERT', 'UPDATE', 'REFERENCES')
                       and has_any_column_privilege(r.rolname, c.oid, p.priv)))
           union all
           select r.rolname, c.oid::regclass::text, 'USAGE/UPDATE'
             from pg_class c cross join (values ('tally_writer'), ('tally_reader'), ('tally_analyst')) r(rolname)
            where c.relnamespace = 'tally'::regnamespace and c.relkind = 'S'
              and (has_sequence_privilege(r.rolname, c.oid, 'USAGE') or has_sequence_privilege(r.rolname, c.oid, 'UPDATE'))
            order by 1, 2, 3"""
    ).fetchall()
    assert rows == [("tally_writer", "tally.usage_events", "INSERT")]
    # ... and not the column the database sets.
    assert conn.execute(
        "select has_column_privilege('tally_writer', 'tally.usage_events', 'recorded_at', 'INSERT')"
    ).fetchone() == (False,)


def test_lesser_roles_read_only_what_row_level_security_or_aggregation_guards(conn: psycopg.Connection) -> None:
    """A table a lesser role may read is either per-user with row-level security, reference data, or aggregate."""
    rows = conn.execute(
        """select r.rolname, c.oid::regclass::text, c.relkind::text, c.relrowsecurity,
                  exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'user_id'
                            and not a.attisdropped) as per_user
             from pg_class c cross join (values ('tally_writer'), ('tally_reader'), ('tally_analyst')) r(rolname)
            where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
              and has_table_privilege(r.rolname, c.oid, 'SELECT')
            order by 1, 2"""
    ).fetchall()
    readable = {(role, rel) for role, rel, *_ in rows}
    assert not {rel for role, rel in readable if role == "tally_writer"}, "writers read nothing"
    for role, rel, kind, rls, per_user in rows:
        if per_user and kind in ("r", "p"):
            assert rls, f"{role} may read {rel}, a per-user table without row-level security"
            assert role == "tally_reader", f"{role} may read the per-user table {rel}"
        if per_user and kind in ("v", "m"):
            # A per-user view must filter by the caller's user id (security barrier) to be readable by anyone.
            opts = conn.execute(
                "select coalesce(reloptions, '{}') from pg_class where oid = %s::regclass", (rel,)
            ).fetchone()[0]  # type: ignore[index]
            assert role == "tally_reader" and "security_barrier=true" in opts, f"{role} may read per-user view {rel}"


def test_lesser_roles_execute_only_their_definer_entry_points(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        """select r.rolname, p.proname
             from pg_proc p cross join (values ('tally_writer'), ('tally_reader'), ('tally_analyst')) r(rolname)
            where p.pronamespace = 'tally'::regnamespace and p.prosecdef
              and has_function_privilege(r.rolname, p.oid, 'EXECUTE')"""
    ).fetchall()
    got: dict[str, set[str]] = {role: set() for role in LESSER}
    for role, name in rows:
        got[role].add(name)
    assert got == DEFINER_ENTRY_POINTS


def test_volatile_functions_are_not_for_readers(conn: psycopg.Connection) -> None:
    """Readers may call only functions that cannot write (STABLE or IMMUTABLE), so a reader changes nothing.

    The exceptions are the two definer entry points that change the caller's own report subscription.
    """
    rows = conn.execute(
        """select p.oid::regprocedure::text from pg_proc p
            where p.pronamespace = 'tally'::regnamespace and p.provolatile = 'v'
              and has_function_privilege('tally_reader', p.oid, 'EXECUTE')
            order by 1"""
    ).fetchall()
    assert rows == [("tally.subscribe_reports(text)",), ("tally.unsubscribe_reports(text)",)]


def test_objects_added_later_grant_public_nothing(dsn: str, conn: psycopg.Connection) -> None:
    # A DBA working as the owner adds a function: the owner's default privileges leave PUBLIC out.
    conn.execute("set role tally_owner")
    conn.execute("create function tally.zz_by_owner() returns int language sql as 'select 1'")
    conn.execute("reset role")
    assert conn.execute("select has_function_privilege('public', 'tally.zz_by_owner()', 'execute')").fetchone() == (
        False,
    )
    # A later migration, run by a superuser, adds a function and a table and forgets the privileges: the
    # migration runner secures them after the upgrade.
    conn.execute("create function tally.zz_by_migration() returns int language sql as 'select 1'")
    conn.execute("create table tally.zz_later (id int)")
    conn.execute("grant select on tally.zz_later to public")
    assert conn.execute("select has_function_privilege('public', 'tally.zz_by_migration()', 'execute')").fetchone() == (
        True,
    ), "PostgreSQL's default: the test must start from an unsafe object"
    if migrate.current_revision(dsn) is None:  # installed from db/ + functions/ (PGTALLY_TEST_INSTALL=declarative)
        from alembic import command

        migrate._run(dsn, command.stamp, "head")
    migrate.upgrade(dsn)
    assert _public_privileges(conn) == []
    owners = conn.execute(
        """select pg_get_userbyid(proowner)::text from pg_proc where oid = 'tally.zz_by_migration()'::regprocedure
           union all select pg_get_userbyid(relowner)::text from pg_class where oid = 'tally.zz_later'::regclass"""
    ).fetchall()
    assert owners == [("tally_owner",), ("tally_owner",)]


def test_analysts_see_how_fresh_the_views_are(dsn: str, conn: psycopg.Connection, login_role) -> None:  # type: ignore[no-untyped-def]
    """The refresh log is granted to analysts, and row-level security lets them read it (no user data in it)."""
    conn.execute("select tally.record_usage('e1', 'u1', 'tts', 3)")
    conn.execute("select * from tally.refresh_analytics()")
    analyst = login_role("tally_analyst")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=analyst)) as c:
        rows = c.execute("select view_name, refreshed_at from tally.analytics_freshness()").fetchall()
    assert rows and all(refreshed is not None for _, refreshed in rows), rows
