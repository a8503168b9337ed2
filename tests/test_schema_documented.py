"""Every object in the tally schema explains itself in the catalog (`\\d+` for DBAs)."""

from __future__ import annotations

import psycopg


def test_every_table_and_function_has_a_comment(conn: psycopg.Connection) -> None:
    missing = conn.execute(
        """select 'table ' || c.relname
             from pg_class c
            where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
              and obj_description(c.oid, 'pg_class') is null
           union all
           select 'function ' || p.oid::regprocedure::text
             from pg_proc p
            where p.pronamespace = 'tally'::regnamespace and obj_description(p.oid, 'pg_proc') is null
           order by 1"""
    ).fetchall()
    assert missing == [], f"add `comment on ...` for: {[m[0] for m in missing]}"


def test_security_definer_functions_pin_search_path(conn: psycopg.Connection) -> None:
    unpinned = conn.execute(
        """select p.oid::regprocedure::text
             from pg_proc p
            where p.pronamespace = 'tally'::regnamespace and p.prosecdef
              and not exists (select from unnest(coalesce(p.proconfig, '{}')) cfg where cfg like 'search_path=%')"""
    ).fetchall()
    assert unpinned == []
