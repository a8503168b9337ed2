"""The migration chain and the declarative schema (db/ + functions/) are identical."""

from __future__ import annotations

import difflib
import json
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from pgtally import migrate, schema, server

ROOT = Path(__file__).resolve().parents[1]


def _dump(dsn: str) -> str:
    """Schema-only dump of the tally schema with its privileges, normalised.

    No comments on dump metadata, no blank runs; GRANT and REVOKE lines sorted
    at the end (the order of entries in an ACL is the order they were granted
    in, which is not part of the schema).
    """
    res = subprocess.run(
        [str(server.find_bindir() / "pg_dump"), "--schema-only", "--schema=tally", "--no-owner", dsn],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = [
        ln
        for ln in res.stdout.splitlines()
        if not ln.startswith("--")
        and not ln.startswith("\\restrict")
        and not ln.startswith("\\unrestrict")
        and ln.strip()
    ]
    acl = sorted(ln for ln in lines if ln.startswith(("GRANT ", "REVOKE ")))
    return "\n".join([ln for ln in lines if not ln.startswith(("GRANT ", "REVOKE "))] + acl)


def _catalog_facts(dsn: str) -> list[tuple[str, ...]]:
    """Objects pg_dump does not show in a comparable way: seeded rows."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select name, keys::text, coalesce(description, '') from tally.dimensions order by name"
        ).fetchall()
    return [tuple(str(v) for v in r) for r in rows]


def test_upgrade_head_builds_the_declarative_schema(databases) -> None:  # type: ignore[no-untyped-def]
    declarative = databases.create(template="template0")
    migrated = databases.create(template="template0")
    with psycopg.connect(declarative) as conn:
        schema.install(conn)
    migrate.upgrade(migrated)
    a, b = _dump(declarative), _dump(migrated)
    if a != b:
        diff = "\n".join(
            difflib.unified_diff(a.splitlines(), b.splitlines(), "db/+functions/", "alembic head", lineterm="", n=1)
        )
        pytest.fail(
            "the migration chain and db/+functions/ differ. Add a revision whose SQL brings `alembic upgrade head` "
            "to the declarative schema (or fix db/ and functions/ to match):\n" + diff[:8000]
        )
    assert _catalog_facts(declarative) == _catalog_facts(migrated)


def test_every_downgrade_restores_the_previous_revision(databases) -> None:  # type: ignore[no-untyped-def]
    """For each revision: upgrading to head and downgrading back to it gives the schema that revision built."""
    revisions = sorted(p.stem.split("_")[0] for p in (ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    for rev in revisions[:-1]:
        direct = databases.create(template="template0")
        round_trip = databases.create(template="template0")
        migrate.upgrade(direct, rev)
        migrate.upgrade(round_trip)
        migrate.downgrade(round_trip, rev)
        a, b = _dump(direct), _dump(round_trip)
        if a != b:
            diff = "\n".join(
                difflib.unified_diff(
                    a.splitlines(), b.splitlines(), f"upgrade {rev}", f"head, then downgrade {rev}", lineterm="", n=1
                )
            )
            pytest.fail(f"downgrading to {rev} does not restore its schema:\n" + diff[:8000])


def test_downgrade_to_base_then_upgrade_again(databases) -> None:  # type: ignore[no-untyped-def]
    dsn = databases.create(template="template0")
    migrate.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("select tally.record_usage('e1', 'u1', 'tts', 3)").fetchone() == (True,)
    migrate.downgrade(dsn, "base", drop_data=True)  # the log holds e1: refused without drop_data
    assert migrate.current_revision(dsn) is None
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select to_regnamespace('tally')").fetchone() == (None,)
    migrate.upgrade(dsn)
    assert migrate.current_revision(dsn) == _head_revision()
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("select tally.record_usage('e1', 'u1', 'tts', 3)").fetchone() == (True,)


def _head_revision() -> str:
    revisions = sorted(p.stem.split("_")[0] for p in (ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    return revisions[-1]


def test_every_migration_sql_file_is_used_exactly_once() -> None:
    used: list[str] = []
    for rev in (ROOT / "migrations" / "versions").glob("*.py"):
        used += re.findall(r'run_sql\("([^"]+)"\)', rev.read_text())
    files = sorted(p.name for p in (ROOT / "migrations" / "sql").glob("*.sql"))
    assert sorted(used) == files, "each migrations/sql file must be run by exactly one revision"
    assert len(used) == len(set(used))


def test_landed_revisions_are_unchanged() -> None:
    """A revision's SQL never changes once it has landed: databases were built from it.

    migrations/sql/SHA256SUMS holds the checksum of every revision's SQL; a new
    revision adds its lines (`cd migrations/sql && sha256sum NNNN_*.sql >> SHA256SUMS`).
    """
    import hashlib

    sql_dir = ROOT / "migrations" / "sql"
    listed = {}
    for line in (sql_dir / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        listed[name] = digest
    files = sorted(p.name for p in sql_dir.glob("*.sql"))
    assert sorted(listed) == files, "every migrations/sql file needs a line in migrations/sql/SHA256SUMS"
    changed = [
        name for name, digest in listed.items() if hashlib.sha256((sql_dir / name).read_bytes()).hexdigest() != digest
    ]
    assert changed == [], f"landed revisions were edited: {changed}; add a new revision instead"


def test_offline_sql_needs_no_database() -> None:
    sql = migrate.offline_sql()
    assert "create table tally.usage_events" in sql
    assert "alembic_version" in sql


def test_schema_files_are_ordered_and_commented() -> None:
    """Each file has a prefix of its own (tests/test_schema_order.py checks the dependencies) and a leading comment."""
    files = schema.schema_files()
    orders = [f.order for f in files]
    shared = sorted({f.label for f in files if orders.count(f.order) > 1})
    assert shared == [], f"these files share a numeric prefix, so their install order is unclear: {shared}"
    for f in files:
        head = f.path.read_text().lstrip().splitlines()[:2]
        assert all(line.startswith("--") for line in head), f"{f.label} must start with a two-line comment"


def test_upgrading_a_database_with_data_keeps_the_data_and_the_aggregates(databases) -> None:  # type: ignore[no-untyped-def]
    """A database of the previous release, holding usage, plans and subscriptions, upgraded to head.

    The log, the keys and every lifetime, daily and billing-period figure a
    user can see are the same before and after (users without a subscription:
    a running subscription's billing periods follow its anniversary from this
    release on), nothing is left pending, and verify finds no drift.
    """
    revisions = sorted(p.stem.split("_")[0] for p in (ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    dsn = databases.create(template="template0")
    migrate.upgrade(dsn, revisions[-2])
    events = [
        (
            f"e{i}",
            f"u{i % 7}",
            ("tts", "ocr", "paywall.viewed")[i % 3],
            10 + i,
            f"2026-0{1 + i % 9}-1{i % 10} 1{i % 10}:00+00",
            1000 * i if i % 4 else None,
            f"0.{i:04d}",
            json.dumps({"voice": "af_alloy", "session_id": f"s{i % 5}"}),
        )
        for i in range(120)
    ]
    reads = """
        select 'lifetime' as what, t.user_id, d.name, t.value, t.events, t.quantity, t.duration_ms, t.cost
          from tally.user_totals t join tally.dimensions d on d.name = t.dimension
        union all
        select 'daily', t.user_id, t.dimension || ':' || t.day, t.value, t.events, t.quantity, t.duration_ms, t.cost
          from tally.user_daily t
        union all
        select 'period', t.user_id, t.period_start::text, t.kind, t.events, t.quantity, t.duration_ms, t.cost
          from tally.user_periods t where t.user_id <> 'u1'
        order by 1, 2, 3, 4"""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select tally.ensure_partitions('2026-01-01', '2026-12-01')")
        conn.execute("select tally.set_user_settings('u2', 'Europe/Berlin', 13)")
        conn.execute("select tally.upsert_plan('pro', 1, 9.99, '{\"tts\": 100000}', false, null)")
        conn.execute("select tally.start_subscription('u1', 'pro', '2026-02-20 10:00+00')")
        for e in events[:80]:
            conn.execute(
                "select tally.record_usage(%s, %s, %s, %s, %s::timestamptz, %s, %s::numeric, 'succeeded', null,"
                " true, %s::jsonb, null)",
                e,
            )
        conn.execute("select tally.merge_pending()")
        for e in events[80:]:  # still pending at the upgrade
            conn.execute(
                "select tally.record_usage(%s, %s, %s, %s, %s::timestamptz, %s, %s::numeric, 'succeeded', null,"
                " true, %s::jsonb, null)",
                e,
            )
        log = conn.execute("select event_id, user_id, quantity, cost from tally.usage_events order by 1").fetchall()
        keys = conn.execute("select event_id, user_id from tally.event_keys order by 1").fetchall()
        conn.execute("select tally.merge_pending()")
        before = conn.execute(reads).fetchall()
        conn.execute("select * from tally.refresh_analytics()")
    migrate.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert (
            conn.execute("select event_id, user_id, quantity, cost from tally.usage_events order by 1").fetchall()
            == log
        )
        assert conn.execute("select event_id, user_id from tally.event_keys order by 1").fetchall() == keys
        conn.execute("select tally.merge_pending()")
        assert conn.execute(reads).fetchall() == before
        drift = conn.execute("select check_name, drifted from tally.verify(5)").fetchall()
        assert drift and all(drifted == 0 for _, drifted in drift), drift
        # The upgrade backfilled the funnel source from the log, and still records and merges.
        assert conn.execute("select count(*) from tally.user_kind_days").fetchone()[0] > 0  # type: ignore[index]
        assert conn.execute("select tally.record_usage('after', 'u1', 'tts', 5)").fetchone() == (True,)
        assert conn.execute("select tally.merge_pending()").fetchone() == (1,)
