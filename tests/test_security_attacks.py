"""Attacks on the privilege boundaries, with targets enumerated from the catalog.

Every SECURITY DEFINER function and every trigger function of the schema is
attacked by every pgtally role (and by a role that is a member of none): the
attacker shadows, in its temporary schema, every type and catalog relation the
function's code names, with objects that call the attacker's own function,
then calls the function (or fires the trigger). The attacker's function
reports, through a notice that survives a rollback, any time it runs as
another role. A definer function added later is attacked without anyone
listing it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql

ROLES = ("tally_writer", "tally_reader", "tally_analyst", None)

# Sample arguments by type, chosen so that most calls get past validation and reach the code that names types.
SAMPLES = {
    "text": "'u-attack'",
    "bigint": "1",
    "integer": "1",
    "smallint": "1",
    "numeric": "1",
    "timestamp with time zone": "'2026-06-15 12:00+00'",
    "date": "'2026-06-15'",
    "boolean": "true",
    "jsonb": '\'{"voice": "af_alloy", "session_id": "s1"}\'',
    "interval": "'31 days'",
}


def _sample(type_name: str) -> str:
    if type_name.endswith("[]"):
        return f"array[{_sample(type_name[:-2])}]::{type_name}"
    if type_name not in SAMPLES:
        return f"null::{type_name}"
    return f"{SAMPLES[type_name]}::{type_name}"


def _targets(conn: psycopg.Connection) -> list[tuple[int, str, str, bool, list[str]]]:
    """(oid, name, signature, returns set, argument types) of every definer function in tally."""
    rows = conn.execute(
        """select p.oid, p.proname, p.oid::regprocedure::text, p.proretset,
                  coalesce((select array_agg(pg_catalog.format_type(t, null) order by i)
                              from unnest(p.proargtypes) with ordinality as a(t, i)), '{}')
             from pg_catalog.pg_proc p
            where p.pronamespace = 'tally'::regnamespace and p.prosecdef and p.prokind = 'f'
              and p.prorettype <> 'trigger'::regtype
            order by p.proname"""
    ).fetchall()
    return [(r[0], r[1], r[2], r[3], list(r[4])) for r in rows]


def _shadowable_names(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    """Type and catalog relation names that the definer and trigger functions' code spells out.

    Computed from the sources, so new code is covered: every word that names a
    base type of pg_catalog, and every word that names a pg_catalog relation.
    """
    sources = " ".join(
        r[0]
        for r in conn.execute(
            """select p.prosrc || ' ' || coalesce(pg_catalog.pg_get_function_arguments(p.oid), '')
                 from pg_catalog.pg_proc p
                where p.pronamespace = 'tally'::regnamespace
                  and (p.prosecdef or p.prorettype = 'trigger'::regtype or p.proconfig is null)"""
        )
    )
    words = set(re.findall(r"[a-z_][a-z0-9_]*", sources.lower()))
    types = [
        r[0]
        for r in conn.execute(
            """select t.typname from pg_catalog.pg_type t
                where t.typnamespace = 'pg_catalog'::regnamespace and t.typtype = 'b'
                  and t.typname !~ '^_' and t.typcategory not in ('P')"""
        )
        if r[0] in words
    ]
    rels = [
        r[0]
        for r in conn.execute(
            """select c.relname from pg_catalog.pg_class c
                where c.relnamespace = 'pg_catalog'::regnamespace and c.relkind in ('r', 'v')"""
        )
        if r[0] in words
    ]
    assert {"text", "date", "timestamptz", "jsonb"} <= set(types), types
    assert {"pg_class", "pg_inherits"} <= set(rels), rels
    return sorted(types), sorted(rels)


def _arm(conn: psycopg.Connection, types: list[str], rels: list[str]) -> list[str]:
    """Shadow every name in the attacker's pg_temp; returns what it could not shadow (must be nothing)."""
    conn.execute(
        """create function pg_temp.pwn() returns boolean language plpgsql set search_path = pg_catalog as $$
           begin
             if current_user::pg_catalog.name <> session_user::pg_catalog.name then
               raise notice 'PWNED: attacker code ran as %', current_user;
             end if;
             return true;
           end $$"""
    )
    failed = []
    for t in types:
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("create domain pg_temp.{} as pg_catalog.{} check (pg_temp.pwn())").format(
                        sql.Identifier(t), sql.Identifier(t)
                    )
                )
        except psycopg.Error as exc:
            failed.append(f"type {t}: {exc.diag.message_primary}")
    for r in rels:
        # Same columns as the catalog relation (pseudo-typed ones as text), each row passing through pwn().
        cols = conn.execute(
            """select string_agg(case when t.typtype = 'p' then format('%%1$I::text as %%1$I', a.attname)
                                      else format('%%I', a.attname) end, ', ' order by a.attnum)
                 from pg_catalog.pg_attribute a join pg_catalog.pg_type t on t.oid = a.atttypid
                where a.attrelid = ('pg_catalog.' || quote_ident(%s))::regclass and a.attnum > 0 and not a.attisdropped""",
            (r,),
        ).fetchone()[0]  # type: ignore[index]
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("create view pg_temp.{} as select {} from pg_catalog.{} where pg_temp.pwn()").format(
                        sql.Identifier(r), sql.SQL(cols), sql.Identifier(r)
                    )
                )
        except psycopg.Error as exc:
            failed.append(f"relation {r}: {exc.diag.message_primary}")
    return failed


def _attack(dsn: str, role: str, run: Callable[[psycopg.Connection], None]) -> list[str]:
    """Connect as role, arm the shadows, run the calls; returns every PWNED notice."""
    seen: list[str] = []
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=role), autocommit=True) as conn:
        conn.add_notice_handler(
            lambda d: seen.append(d.message_primary or "") if "PWNED" in (d.message_primary or "") else None
        )
        types, rels = _shadowable_names(conn)
        assert _arm(conn, types, rels) == []
        conn.execute("select set_config('tally.user_id', 'u-attack', false)")
        run(conn)
    return seen


def _call_all(targets: list[tuple[int, str, str, bool, list[str]]]) -> Callable[[psycopg.Connection], None]:
    def run(conn: psycopg.Connection) -> None:
        for oid, name, _sig, retset, args in targets:
            if not conn.execute("select has_function_privilege(%s::oid, 'execute')", (oid,)).fetchone()[0]:  # type: ignore[index]
                continue
            call = f"tally.{name}({', '.join(_sample(a) for a in args)})"
            try:
                conn.execute(f"select * from {call}" if retset else f"select {call}")
            except psycopg.Error:
                pass  # refused or invalid arguments: fine, as long as nothing ran as the owner
        # The insert trigger (writers): a valid row, a duplicate, an invalid row, a correction.
        for values in (
            "('atk-1', 'u-attack', 'tts', 5, '{\"voice\": \"af_alloy\"}', null)",
            "('atk-1', 'u-attack', 'tts', 5, '{}', null)",
            "('atk-2', 'u-attack', 'tts', -5, '{}', null)",
            "('atk-3', 'u-attack', 'tts', -5, '{}', 'atk-1')",
        ):
            try:
                conn.execute(
                    "insert into tally.usage_events (event_id, user_id, kind, quantity, attributes, "
                    f"corrects_event_id) values {values}"
                )
            except psycopg.Error:
                pass

    return run


def test_definer_functions_are_pinned_with_temp_schema_last(conn: psycopg.Connection) -> None:
    """Every SECURITY DEFINER and trigger function pins search_path to pg_catalog, then pg_temp (last)."""
    bad = conn.execute(
        """select p.oid::regprocedure::text, coalesce(array_to_string(p.proconfig, ';'), '(none)')
             from pg_catalog.pg_proc p
            where p.pronamespace = 'tally'::regnamespace
              and (p.prosecdef or p.prorettype = 'trigger'::regtype)
              and not coalesce('search_path=pg_catalog, pg_temp' = any (p.proconfig), false)"""
    ).fetchall()
    assert bad == [], "pin `set search_path = pg_catalog, pg_temp` on these functions:\n" + "\n".join(map(str, bad))


@pytest.mark.parametrize("member_of", ROLES, ids=lambda r: r or "no-role")
def test_temp_schema_shadowing_runs_nothing_as_the_owner(
    dsn: str, conn: psycopg.Connection, login_role: Callable[[str | None], str], member_of: str | None
) -> None:
    # Something to read, merge and refresh, so the calls reach their queries.
    conn.execute(
        "select tally.record_usage('seed-1', 'u-attack', 'tts', 7, '2026-06-15 12:00+00', 1000, 0.5, "
        '\'succeeded\', null, true, \'{"voice": "af_alloy", "session_id": "s1"}\', null)'
    )
    targets = _targets(conn)
    assert len(targets) >= 20, "the catalog query found too few definer functions"
    role = login_role(member_of)
    pwned = _attack(dsn, role, _call_all(targets))
    assert pwned == [], f"{member_of or 'a role without pgtally roles'} ran code as the owner: {pwned}"


def test_shadowing_attack_detects_an_unpinned_definer(
    dsn: str, conn: psycopg.Connection, login_role: Callable[[str | None], str]
) -> None:
    """The attack harness itself can fail: a definer function with an empty search_path is caught."""
    conn.execute("""create function tally.zz_unsafe(x text) returns text language plpgsql security definer
                    set search_path = '' as $$ begin return x::text || '-'::text; end $$""")
    conn.execute("grant execute on function tally.zz_unsafe(text) to tally_writer")
    role = login_role("tally_writer")
    pwned = _attack(dsn, role, _call_all([t for t in _targets(conn) if t[1] == "zz_unsafe"]))
    assert pwned and "PWNED" in pwned[0]


# --------------------------------------------------------------------------
# Locks: nothing a lesser role can lock stalls the ledger
# --------------------------------------------------------------------------


def test_advisory_locks_of_other_roles_stall_nothing(
    dsn: str, conn: psycopg.Connection, login_role: Callable[[str | None], str]
) -> None:
    conn.execute("select tally.upsert_plan('free', 0, 0, '{\"tts\": 1000}', true)")
    conn.execute("select tally.record_usage('e1', 'u1', 'tts', 10)")
    attacker = login_role("tally_writer")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=attacker), autocommit=True) as atk:
        # Every advisory lock pgtally ever used, and a sweep of the low key space.
        atk.execute("select pg_advisory_lock(7461, k) from generate_series(0, 100) k")
        atk.execute("select pg_advisory_lock(7462, hashtext('u1' || chr(31) || 'tts'))")
        atk.execute("select pg_advisory_lock(7463, hashtext('u1'))")
        # Row locks on the owner's lock tables are refused.
        for stmt in (
            "select * from tally.locks for update",
            "select * from tally.user_locks for update",
            "lock table tally.locks in exclusive mode",
            "lock table tally.user_locks in exclusive mode",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), atk.transaction():
                atk.execute(stmt)
        with psycopg.connect(dsn, autocommit=True, options="-c lock_timeout=5s") as owner:
            assert owner.execute("select tally.merge_pending()").fetchone() == (1,)
            assert owner.execute("select tally.check_quota('u1', 'tts', 10)").fetchone() == (980,)
            owner.execute("select * from tally.rebuild()")
            owner.execute("select * from tally.apply_retention('3650 days')")
            owner.execute("select tally.ensure_partitions('2031-01-01', '2031-02-01')")
            owner.execute("select tally.start_subscription('u1', 'free', '2026-01-01')")
            assert owner.execute("select tally.forget_user('u2')").fetchone() == (None,)
            assert all(r[1] != "skipped" for r in owner.execute("select * from tally.refresh_analytics()"))


def test_quota_checks_still_serialize_per_user_and_kind(dsn: str, conn: psycopg.Connection) -> None:
    """Two checks of one user and kind queue on the owner's lock row; another user does not wait."""
    conn.execute("select tally.upsert_plan('free', 0, 0, '{\"tts\": 1000}', true)")
    first = psycopg.connect(dsn)
    try:
        first.execute("select tally.check_quota('u1', 'tts', 600)")
        done = threading.Event()

        def second() -> None:
            with psycopg.connect(dsn) as c:
                c.execute("select tally.check_quota('u1', 'tts', 600)")
                done.set()

        t = threading.Thread(target=second)
        t.start()
        assert not done.wait(1.0), "a second check of the same user and kind must wait for the first"
        with psycopg.connect(dsn) as other:
            other.execute("set lock_timeout = '2s'")
            assert other.execute("select tally.check_quota('u2', 'tts', 600)").fetchone() == (400,)
        first.rollback()
        t.join(10)
        assert done.is_set()
    finally:
        first.close()


def test_unpinned_helpers_are_the_documented_six(conn: psycopg.Connection) -> None:
    """docs/security.md lists the helpers that are not pinned (so they can be inlined); none is a definer."""
    rows = conn.execute(
        """select p.proname, p.prosecdef, l.lanname from pg_catalog.pg_proc p
             join pg_catalog.pg_language l on l.oid = p.prolang
            where p.pronamespace = 'tally'::regnamespace
              and not coalesce('search_path=pg_catalog, pg_temp' = any (p.proconfig), false)
            order by 1"""
    ).fetchall()
    assert rows == [
        (name, False, "sql")
        for name in sorted(
            [
                "_csv_safe",
                "_dimension_value",
                "_duration_bucket",
                "_duration_bucket_ms",
                "_event_problem",
                "current_user_id",
            ]
        )
    ]


# --------------------------------------------------------------------------
# An open transaction of a lesser role stalls nothing for long
# --------------------------------------------------------------------------


def test_a_readers_open_transaction_does_not_stall_writers_behind_partition_ddl(
    dsn: str, conn: psycopg.Connection, login_role: Callable[[str | None], str]
) -> None:
    """Partition DDL waiting for a reader's lock gives up after its lock timeout; writers are not stuck behind it."""
    conn.execute("select tally.ensure_partitions('2001-01-01', '2001-02-01')")
    reader = login_role("tally_reader")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=reader)) as holder:
        holder.execute("lock table tally.my_usage_events in access share mode")  # and stays idle in its transaction
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute("select tally.ensure_partitions('2031-03-01', '2031-03-01')")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute("select * from tally.apply_retention('3650 days')")
        with psycopg.connect(dsn, autocommit=True, options="-c lock_timeout=1s") as writer:
            assert writer.execute("select tally.record_usage('late', 'u1', 'tts', 1)").fetchone() == (True,)
            assert writer.execute("select tally.merge_pending()").fetchone() == (1,)
        holder.rollback()
    assert conn.execute("select count(*) from tally.apply_retention('3650 days')").fetchone()[0] >= 1  # type: ignore[index]


def test_a_held_quota_lock_delays_only_that_users_erasure(
    dsn: str, conn: psycopg.Connection, login_role: Callable[[str | None], str]
) -> None:
    conn.execute("select tally.upsert_plan('free', 0, 0, '{\"tts\": 1000}', true)")
    conn.execute("select tally.check_quota('victim', 'tts', 0)")
    writer = login_role("tally_writer")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=writer)) as holder:
        holder.execute("select tally.check_quota('victim', 'tts', 0)")  # holds the user's quota row
        done = threading.Event()

        def forget() -> None:
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("select tally.forget_user('victim')")
                done.set()

        t = threading.Thread(target=forget)
        t.start()
        assert not done.wait(0.5)
        with psycopg.connect(dsn, autocommit=True, options="-c lock_timeout=2s") as other:
            other.execute("select tally.record_usage('e-other', 'someone', 'tts', 5)")
            assert other.execute("select tally.merge_pending()").fetchone() == (1,), "merges go on meanwhile"
        holder.rollback()
        t.join(10)
        assert done.is_set()
    assert conn.execute("select count(*) from tally.user_locks where user_id = 'victim'").fetchone() == (0,)


def test_a_correction_cannot_ride_on_an_original_another_transaction_recorded_first(
    dsn: str, conn: psycopg.Connection, login_role: Callable[[str | None], str]
) -> None:
    writer = login_role("tally_writer")
    other = psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=writer))
    try:
        # The same user's O-race, not committed yet (the key is per user: another user's would not collide).
        other.execute("select tally.record_usage('O-race', 'userA', 'tts', 100)")
        result: list[object] = []

        def batch() -> None:
            with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=writer), autocommit=True) as c:
                try:
                    c.execute(
                        """select tally.record_usage_batch(array['O-race', 'C-race'], array['userA', 'userA'],
                             array['tts', 'tts'], array[100, -100]::bigint[], array[now(), now()],
                             array[null, null]::bigint[], array[0, 0]::numeric[], array['succeeded', 'reversed'],
                             array[null, null]::text[], array[true, true], array['{}', '{}']::jsonb[],
                             array[null, 'O-race'])"""
                    )
                    result.append("recorded")
                except psycopg.Error as exc:
                    result.append(exc.sqlstate)

        t = threading.Thread(target=batch)
        t.start()
        t.join(1.0)  # the batch waits on the uncommitted key
        other.commit()
        t.join(10)
    finally:
        other.close()
    assert result == ["PT008"]
    assert conn.execute("select count(*) from tally.usage_events where event_id = 'C-race'").fetchone() == (0,)
    conn.execute("select tally.merge_pending()")
    # userA has the other transaction's O-race only; the batch wrote nothing.
    assert conn.execute(
        "select events::int, quantity from tally.user_totals where user_id = 'userA' and dimension = 'kind'"
    ).fetchall() == [(1, 100)]


@pytest.mark.parametrize("cost", ["1e-400", "0.000000000000000000001"])
def test_costs_with_more_than_20_decimals_are_refused(conn: psycopg.Connection, cost: str) -> None:
    """A cost so small that it underflows double precision would break reads that rank costs: refused."""
    for sql_text in (
        f"select tally.record_usage('tiny-1', 'u1', 'tts', 1, now(), 1000, {cost})",
        "insert into tally.usage_events (event_id, user_id, kind, quantity, cost) "
        f"values ('tiny-2', 'u1', 'tts', 1, {cost})",
        "select tally.record_usage_batch(array['tiny-3'], array['u1'], array['tts'], array[1]::bigint[], "
        f"array[now()], array[null]::bigint[], array[{cost}]::numeric[], array['succeeded'], "
        "array[null]::text[], array[true], array['{}']::jsonb[], array[null])",
    ):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(sql_text)
        assert err.value.sqlstate == "PT002" and "20 digits" in str(err.value), sql_text
    assert conn.execute("select count(*) from tally.usage_events").fetchone() == (0,)


def test_the_refreshing_sessions_time_zone_does_not_change_the_views(conn: psycopg.Connection) -> None:
    conn.execute("select tally.ensure_partitions('2011-12-01', '2012-01-01')")
    for i, day in enumerate(("2011-12-29", "2011-12-30", "2011-12-31", "2012-01-01")):
        conn.execute("select tally.record_usage(%s, 'u1', 'tts', 1, %s::timestamptz)", (f"e{i}", f"{day} 12:00+00"))
    conn.execute("select tally.merge_pending()")
    conn.execute("select tally.set_min_group_size(1)")

    def days() -> list[tuple[object, ...]]:
        return conn.execute(
            "select day, dau from tally.admin_active_users('2011-12-28', '2012-01-02') order by day"
        ).fetchall()

    conn.execute("set timezone = 'UTC'")
    conn.execute("select * from tally.refresh_analytics()")
    in_utc = days()
    conn.execute("set timezone = 'Pacific/Apia'")  # skipped 2011-12-30 altogether
    conn.execute("select * from tally.refresh_analytics()")
    conn.execute("set timezone = 'UTC'")
    assert days() == in_utc


# --------------------------------------------------------------------------
# The staging table of the COPY batch path
# --------------------------------------------------------------------------

_STAGING_COPY = "copy pg_temp.tally_staging (event_id, user_id, kind, quantity, occurred_at) from stdin"


def test_the_owners_batch_path_never_reads_a_relation_the_writer_controls(
    dsn: str, login_role: Callable[[str | None], str]
) -> None:
    """A writer's own pg_temp.tally_staging (here a view calling the writer's code) is read as the writer only."""
    role = login_role("tally_writer")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=role), autocommit=True) as w:
        ran_as: list[str] = []
        w.add_notice_handler(lambda d: ran_as.append(d.message_primary or ""))
        w.execute(
            "create function pg_temp.spy() returns text language plpgsql as "
            "$$ begin raise notice 'ran as %', current_user; return null; end $$"
        )
        w.execute(
            """create temp view tally_staging as
               select 'v1'::text as event_id, 'u1'::text as user_id, 'tts'::text as kind, 1::bigint as quantity,
                      '2026-06-15 12:00+00'::timestamptz as occurred_at, null::bigint as duration_ms,
                      0::numeric as cost, 'succeeded'::text as status, null::text as error_code,
                      true as billable, '{}'::jsonb as attributes, pg_temp.spy() as corrects_event_id"""
        )
        w.execute("select tally.begin_staging()")  # leaves the writer's relation in place
        with pytest.raises(psycopg.Error):
            w.execute("select tally.record_usage_staged()")  # reads the view as the writer, then cannot empty it
        with pytest.raises(psycopg.Error) as refused:
            w.execute("select tally._record_staged()")
        assert refused.value.sqlstate == "PT011"
        assert ran_as and set(ran_as) == {f"ran as {role}"}, ran_as


def test_the_writer_cannot_attach_code_to_the_staging_table(dsn: str, login_role: Callable[[str | None], str]) -> None:
    """The table begin_staging makes belongs to the owner: the writer may add rows, not rules, policies or triggers."""
    role = login_role("tally_writer")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=role), autocommit=True) as w:
        w.execute("create function pg_temp.spy() returns text language sql as $$ select current_user::text $$")
        w.execute(
            "create function pg_temp.spy_trigger() returns trigger language plpgsql as $$ begin return new; end $$"
        )
        w.execute("select tally.begin_staging()")
        owner = w.execute(
            "select pg_get_userbyid(relowner) from pg_class where oid = 'pg_temp.tally_staging'::regclass"
        )
        assert owner.fetchone() == ("tally_owner",)
        for ddl in (
            "alter table pg_temp.tally_staging enable row level security",
            "create policy p on pg_temp.tally_staging using (pg_temp.spy() is not null)",
            "create rule r as on insert to pg_temp.tally_staging do also select pg_temp.spy()",
            "create trigger t before insert on pg_temp.tally_staging for each row execute function pg_temp.spy_trigger()",
            "alter table pg_temp.tally_staging add column x text default pg_temp.spy()",
            "alter table pg_temp.tally_staging rename to staging_elsewhere",
            "create temp table child () inherits (pg_temp.tally_staging)",
            "drop table pg_temp.tally_staging",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                w.execute(ddl)
        # What the writer may do: COPY rows in and record them, in one transaction.
        with w.transaction():
            with w.cursor().copy(_STAGING_COPY) as copy:
                copy.write_row(("s1", "u1", "tts", 5, "2026-06-15 12:00+00"))
                copy.write_row(("s2", "u1", "tts", 6, "2026-06-15 12:01+00"))
            assert w.execute("select tally.record_usage_staged()").fetchone() == (2,)
            assert w.execute("select count(*) from pg_temp.tally_staging").fetchone() == (0,)


def test_a_staging_table_of_the_sessions_own_still_records(dsn: str, login_role: Callable[[str | None], str]) -> None:
    """A session whose staging table it made itself (as earlier pgtally versions did) records through arrays."""
    role = login_role("tally_writer")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=role), autocommit=True) as w:
        w.execute(
            """create temp table tally_staging (event_id text, user_id text, kind text, quantity bigint,
                 occurred_at timestamptz, duration_ms bigint, cost numeric, status text, error_code text,
                 billable boolean, attributes jsonb, corrects_event_id text) on commit delete rows"""
        )
        with w.transaction():
            w.execute("select tally.begin_staging()")
            with w.cursor().copy(_STAGING_COPY) as copy:
                copy.write_row(("own-1", "u1", "tts", 5, "2026-06-15 12:00+00"))
            assert w.execute("select tally.record_usage_staged()").fetchone() == (1,)
        assert w.execute(
            "select count(*) from tally.record_usage_batch(array['own-1'], array['u1'], array['tts'], "
            "array[5]::bigint[], array['2026-06-15 12:00+00']::timestamptz[], array[null]::bigint[], "
            "array[0]::numeric[], array['succeeded'], array[null], array[true], array['{}']::jsonb[], "
            "array[null]) as n where n = 0"
        ).fetchone() == (1,)  # the same event again: a duplicate
