"""Static checks of every PL/pgSQL function with plpgsql_check.

Every PL/pgSQL function of the schema (trigger functions with their table) is
checked with extra and other warnings on. No error is allowed; a warning is
allowed only when it is listed in ALLOWED with the reason it is harmless.
Functions that work on the session's temporary tables (the merge batch, the
staging table, the rebuild scope) are checked in a session that has those
tables, as their real callers do.
"""

from __future__ import annotations

import psycopg
import pytest

# (function, message prefix) -> why it is not a defect.
ALLOWED = {
    (
        "tally.schedule_refresh(interval)",
        'schema "cron" does not exist',
    ): "pg_cron is optional: the function calls cron.schedule through EXECUTE only after checking that pg_cron "
    "is installed, and raises a clear error otherwise",
}


@pytest.fixture
def checked(conn: psycopg.Connection) -> psycopg.Connection:
    if conn.execute("select count(*) from pg_available_extensions where name = 'plpgsql_check'").fetchone() == (0,):
        pytest.skip("the plpgsql_check extension is not installed on this server (Debian: postgresql-15-plpgsql-check)")
    conn.execute("create extension if not exists plpgsql_check")
    # The session state the merge, the staging path and the rebuild work in.
    conn.execute("begin")
    conn.execute("select tally._prepare_merge_batch()")
    conn.execute("select tally.begin_staging()")
    conn.execute(
        "create temporary table _tally_rebuild_scope (user_id text, tz text, anchor_day smallint, "
        "cutoff_day date, straddle_start date, straddle_kept boolean) on commit drop"
    )
    return conn


def test_every_plpgsql_function_passes_plpgsql_check(checked: psycopg.Connection) -> None:
    rows = checked.execute(
        """select p.oid::regprocedure::text, r.lineno, r.level, r.message, r.statement
             from pg_proc p
             join pg_language l on l.oid = p.prolang and l.lanname = 'plpgsql'
             left join lateral (select t.tgrelid from pg_trigger t where t.tgfoid = p.oid limit 1) tg on true,
             lateral plpgsql_check_function_tb(p.oid, coalesce(tg.tgrelid, 0), fatal_errors => false,
                                               extra_warnings => true, other_warnings => true,
                                               performance_warnings => false, security_warnings => true) r
            where p.pronamespace = 'tally'::regnamespace
            order by 1, 2"""
    ).fetchall()
    problems = [
        f"{fn} line {line}: {level}: {message}" + (f" [{stmt}]" if stmt else "")
        for fn, line, level, message, stmt in rows
        if not any(fn == f and message.startswith(m) for f, m in ALLOWED)
    ]
    assert problems == [], "plpgsql_check found:\n" + "\n".join(problems)


def test_the_check_can_fail(checked: psycopg.Connection) -> None:
    """A function with a typo in a column name is reported (the check is not silently off)."""
    checked.execute("""create function tally.zz_broken() returns bigint language plpgsql
                       set search_path = pg_catalog, pg_temp as $$
                       begin return (select count(no_such_column) from tally.user_totals); end $$""")
    rows = checked.execute("select * from plpgsql_check_function_tb('tally.zz_broken()'::regprocedure)").fetchall()
    assert rows and any("no_such_column" in str(r) for r in rows)
