# ruff: noqa: F811
"""Maintenance on a distributed install (Citus): rebuild, verify, settings and subscriptions, analytics, migrate.

Each answer is compared with the same data on one server (the ``dsn`` fixture), which is the oracle.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import shutil
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from citus_support import citus, citus_dsn, distributed_database, prefix  # noqa: F401  (fixtures)
from every_read import argument_values, call_every_read
from pgtally import distribute, migrate
from pgtally.cli import main
from pgtally.server.citus import CitusCluster

UTC = dt.timezone.utc
BASE = dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
INSERT_SQL = """
insert into tally.usage_events
  (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable, attributes)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
#: Every table derived from the log, compared row for row with one server.
DERIVED = (
    "user_totals",
    "user_daily",
    "user_periods",
    "user_sessions",
    "user_hours",
    "user_daily_values",
    "user_kind_days",
    "user_daily_ops",
    "user_daily_durations",
)
Row = tuple[Any, ...]


def _events(prefix: str, users: list[str], n: int, seed: int, days: int = 50) -> list[Row]:
    """Log rows for ``users``: kinds, voices, sessions, failures, hours across the day, some sent twice."""
    rnd = random.Random(seed)
    out: list[Row] = []
    for i in range(n):
        failed = rnd.random() < 0.1
        at = BASE + dt.timedelta(minutes=rnd.randrange(0, 60 * 24 * days), microseconds=rnd.randrange(1000))
        row = (
            f"{prefix}e{i}",
            rnd.choice(users),
            rnd.choice(["tts", "ocr", "session"]),
            at,
            rnd.randrange(0, 5000),
            None if rnd.random() < 0.2 else rnd.randrange(0, 60000),
            Decimal(rnd.randrange(0, 1000)) / 1000,
            "failed" if failed else "succeeded",
            "E_TIMEOUT" if failed else None,
            rnd.random() < 0.9,
            json.dumps({"voice": rnd.choice(["alloy", "nova"]), "session_id": f"s{rnd.randrange(6)}", "format": "mp3"}),
        )
        out.append(row)
        if rnd.random() < 0.15:
            out.append(row)  # a retry: counted once
    return out


def _load(conn: psycopg.Connection, rows: list[Row], reversals: int = 4) -> None:
    """Inserts the rows and reverses the first ``reversals`` succeeded ones (the same on every server)."""
    for row in rows:
        conn.execute(INSERT_SQL, row)
    done: set[str] = set()
    for row in rows:
        if len(done) >= reversals:
            break
        if row[7] == "succeeded" and row[0] not in done:
            conn.execute("select tally.reverse_usage(%s, %s, %s)", [row[1], row[0], row[0] + "-r"])
            done.add(row[0])


def _same_default_plan(citus_dsn: str, dsn: str) -> None:
    """Gives the single server the session cluster's default plan (other tests may have set one): the plan in
    force for users without a subscription is part of every derived row."""
    with psycopg.connect(citus_dsn) as c:
        row = c.execute("select plan, tier, monthly_price from tally.plans where is_default").fetchone()
    if row is not None:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("select tally.upsert_plan(%s, %s, %s, is_default => true)", row)


def _derived(conn: psycopg.Connection, users: list[str]) -> dict[str, list[Row]]:
    """The rows of every derived table for ``users`` (and the users' settings and subscriptions), sorted."""
    out: dict[str, list[Row]] = {}
    for table in (*DERIVED, "subscriptions"):
        rows = conn.execute(f"select * from tally.{table} where user_id = any(%s)", [users]).fetchall()
        out[table] = sorted(rows, key=repr)
    out["user_settings"] = sorted(
        conn.execute(
            "select user_id, time_zone, billing_anchor_day, subscription_anchor_day from tally.user_settings"
            " where user_id = any(%s)",
            [users],
        ).fetchall()
    )
    return out


def _drift(conn: psycopg.Connection, prefix: str) -> dict[str, list[str]]:
    """The checks of tally.verify() that found drift in this test's rows, with the drifted keys.

    The session's cluster holds other tests' users too: only keys (user ids, event ids) with the prefix count.
    """
    rows = conn.execute("select check_name, drifted, sample from tally.verify(1000000)").fetchall()
    assert len(rows) == 12
    found = {name: sorted(s for s in (sample or []) if s.startswith(prefix)) for name, _, sample in rows}
    return {name: keys for name, keys in found.items() if keys}


# ------------------------------------------------------------------ rebuild and verify


def test_verify_finds_drift_and_rebuild_repairs_it_as_on_one_server(citus_dsn: str, dsn: str, prefix: str) -> None:
    users = [f"{prefix}u{i}" for i in range(5)]
    rows = _events(prefix, users, 300, seed=11)
    _same_default_plan(citus_dsn, dsn)
    for target in (citus_dsn, dsn):
        with psycopg.connect(target, autocommit=True) as c:
            c.execute("select tally.set_user_settings(%s, 'Asia/Tokyo', 5)", [users[0]])
            _load(c, rows)
            c.execute("select tally.merge_pending()")
    with psycopg.connect(dsn) as one:
        expected = _derived(one, users)
    assert expected["user_sessions"] and expected["user_periods"]

    with psycopg.connect(citus_dsn, autocommit=True) as c:
        assert _drift(c, prefix) == {}
        assert _derived(c, users) == expected
        # Drift of every sort: a wrong rollup, a lost session, a row of a user the log does not
        # know, and a log row that lost its exactly-once key.
        c.execute(
            "update tally.user_daily set events = events + 1 where user_id = %s and dimension = 'kind'", [users[1]]
        )
        c.execute("delete from tally.user_sessions where user_id = %s", [users[2]])
        c.execute(
            "insert into tally.user_daily (user_id, dimension, day, value, events, failures, quantity, duration_ms,"
            " timed_events, cost) values (%s, 'kind', '2026-01-20', 'tts', 1, 0, 5, 0, 0, 0)",
            [prefix + "ghost"],
        )
        keyless = next(r[0] for r in rows if r[1] == users[3])
        c.execute("delete from tally.event_keys where user_id = %s and event_id = %s", [users[3], keyless])
        drift = _drift(c, prefix)
        assert {"daily rollups vs log", "lifetime totals vs daily rollups", "user_sessions vs log"} <= set(drift)
        assert drift["log rows vs exactly-once keys"] == [keyless]
        assert any(k.startswith(users[1] + "/") for k in drift["daily rollups vs log"])
        assert any(k.startswith(prefix + "ghost/") for k in drift["daily rollups vs log"])

        # One user's rebuild repairs that user only (its statements run on the user's shard).
        c.execute("select tally.rebuild(%s)", [users[1]])
        drift = _drift(c, prefix)
        assert not any(k.startswith(users[1] + "/") for keys in drift.values() for k in keys)
        assert "user_sessions vs log" in drift

        # Every user, one by one in one transaction: no drift left, the same rows as one server.
        c.execute("select tally.rebuild()")
        assert _drift(c, prefix) == {}
        assert _derived(c, users) == expected
        assert c.execute("select count(*) from tally.user_daily where user_id = %s", [prefix + "ghost"]).fetchone() == (
            0,
        )
        assert c.execute(
            "select count(*) from tally.event_keys where user_id = %s and event_id = %s", [users[3], keyless]
        ).fetchone() == (1,)
        # A dimension backfill runs user by user too.
        assert c.execute("select tally.rebuild(null, 'kind')").fetchone()[0] > 0  # type: ignore[index]
        assert _derived(c, users) == expected


def test_settings_and_subscriptions_rebucket_the_history_as_on_one_server(
    citus_dsn: str, dsn: str, prefix: str
) -> None:
    user, plan = prefix + "s", prefix + "plan"
    rows = _events(prefix, [user], 200, seed=5, days=70)
    steps: list[tuple[str, list[Any]]] = [
        ("select tally.set_user_settings(%s, 'America/Los_Angeles', 20)", [user]),
        ("select tally.start_subscription(%s, %s, %s)", [user, plan, BASE + dt.timedelta(days=9, hours=3)]),
        ("select tally.end_subscription(%s, %s)", [user, BASE + dt.timedelta(days=40)]),
        ("select tally.set_user_settings(%s, 'Pacific/Auckland', 3)", [user]),
    ]
    answers: dict[str, list[dict[str, list[Row]]]] = {}
    _same_default_plan(citus_dsn, dsn)
    for name, target in (("citus", citus_dsn), ("one", dsn)):
        with psycopg.connect(target, autocommit=True) as c:
            c.execute("select tally.upsert_plan(%s, 1, 5, '{\"tts\": 1000000}')", [plan])
            _load(c, rows[:150])
            c.execute("select tally.merge_pending()")
            _load(c, rows[150:], reversals=0)  # pending when the settings change: merged with the new ones
            snapshots = [_derived(c, [user])]
            for query, params in steps:
                c.execute(query, params)
                snapshots.append(_derived(c, [user]))
            c.execute("select tally.merge_pending()")
            snapshots.append(_derived(c, [user]))
            answers[name] = snapshots
    assert answers["citus"] == answers["one"]
    periods = [s["user_periods"] for s in answers["one"]]
    assert all(a != b for a, b in itertools.pairwise(periods)), "each step re-buckets the billing periods"
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        assert _drift(c, prefix) == {}


# ------------------------------------------------------------------ analytics: every read as on one server


def _comparable(value: Any, since: dt.datetime) -> Any:
    """``value`` with the moments of this run (refreshes, now()) and the ages measured to them made comparable."""
    if isinstance(value, dict):
        return {
            k: ("age" if k == "age" and isinstance(v, dt.timedelta) else _comparable(v, since))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_comparable(v, since) for v in value]
    if isinstance(value, dt.datetime) and value >= since:
        return "this run"
    return value


def _load_analytics(dsn: str) -> None:
    """Kinds, a plan, subscriptions, events (part merged and in the views, part pending)."""
    users = [f"an-{n}" for n in ("ann", "bob", "cy", "dee", "eve", "fay", "gus")]
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("select tally.declare_kind('an-tts', 'characters', 'Speech', audio => true)")
        c.execute("select tally.declare_dimension('voice', array['voice'])")
        c.execute("select tally.set_min_group_size(1)")  # every group shown: the comparison covers every row
        c.execute("select tally.upsert_plan('an-pro', 1, 9, '{\"an-tts\": 1000000}')")
        for u, user in enumerate(users[:5]):
            c.execute(
                "select tally.start_subscription(%s, 'an-pro', %s)", [user, dt.datetime(2025, 5, 1 + u, tzinfo=UTC)]
            )
        rows = []
        for u, user in enumerate(users):
            for i in range(40):
                failed = i % 9 == 0
                rows.append(
                    (
                        f"an-{user}-{i}",
                        user,
                        ("an-tts", "ocr", "paywall.viewed")[i % 3],
                        dt.datetime(2025, 6, 1 + (i * 7 + u) % 28, 6 + i % 15, tzinfo=UTC),
                        10 + i * (u + 1),
                        1000 * i,
                        Decimal("0.0125") * i,
                        "failed" if failed else "succeeded",
                        "E_TIMEOUT" if failed else None,
                        True,
                        json.dumps({"voice": ("alloy", "nova")[i % 2], "session_id": f"s{i // 5}", "format": "wav"}),
                    )
                )
        _load(c, rows[: len(rows) // 2])
        c.execute("select tally.merge_pending()")
        assert {r[1] for r in c.execute("select * from tally.refresh_analytics()").fetchall()} == {"refreshed"}
        _load(c, rows[len(rows) // 2 :], reversals=0)  # pending: every read adds them


def _every_answer(dsn: str, since: dt.datetime) -> dict[str, Any]:
    values = argument_values(
        "an-ann",
        dt.datetime(2025, 6, 28, 12, tzinfo=UTC),
        dt.date(2025, 6, 1),
        dt.date(2025, 6, 30),
        ["an-tts", "ocr", "paywall.viewed"],
    )
    with psycopg.connect(dsn) as conn:
        answers: dict[str, Any] = dict(call_every_read(conn, values))
        # How long each refresh took is this run's timing, not an answer.
        answers["analytics_freshness"] = [{**r, "duration_ms": "timing"} for r in answers["analytics_freshness"]]
        answers["admin_cohorts of 2025"] = conn.execute(
            "select * from tally.admin_cohorts('2025-01-01', '2025-12-01')"
        ).fetchall()
        answers["verify"] = conn.execute("select * from tally.verify()").fetchall()
        answers["rebuild_users"] = sorted(conn.execute("select * from tally.rebuild_users()").fetchall())
    return _comparable(answers, since)


def test_every_read_of_a_distributed_install_answers_as_one_server(citus: CitusCluster, dsn: str) -> None:
    since = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
    distributed = distributed_database(citus, f"an_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(distributed) as c:
        # Citus re-creates a view that depends on a table it converts: the views keep their unique
        # index (REFRESH CONCURRENTLY needs it) and their comment.
        views = c.execute(
            "select c.relname, pg_catalog.obj_description(c.oid, 'pg_class') is not null,"
            " exists (select from pg_index i where i.indrelid = c.oid and i.indisunique)"
            " from pg_class c where c.relnamespace = 'tally'::regnamespace and c.relkind = 'm'"
        ).fetchall()
        assert len(views) == 9 and all(commented and unique for _, commented, unique in views), views
    _load_analytics(distributed)
    _load_analytics(dsn)
    citus_answers, one = _every_answer(distributed, since), _every_answer(dsn, since)
    assert sorted(citus_answers) == sorted(one)
    differ = [name for name in one if citus_answers[name] != one[name]]
    assert differ == [], f"the distributed install answers differently: {differ}"
    # The data reaches the admin reads: the views were refreshed and hold the merged rows.
    for name in (
        "admin_trend",
        "admin_totals",
        "admin_leaderboard",
        "admin_cohorts of 2025",
        "admin_reliability",
        "admin_funnel",
    ):
        assert one[name], name
    assert all(r[2] == 0 for r in one["verify"])


# ------------------------------------------------------------------ migrate


def _function_source(dsn: str, signature: str) -> tuple[str, str, Any]:
    with psycopg.connect(dsn) as c:
        row = c.execute(
            "select p.prosrc, p.proowner::regrole::text, p.proacl::text from pg_proc p where p.oid = %s::regprocedure",
            [signature],
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_migrate_on_a_distributed_install_reaches_the_workers(
    citus: CitusCluster, citus_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = [node.dsn(citus.dbname) for node in citus.worker_nodes]
    signature = "tally._trg_usage_events_before_insert_record()"  # runs on the workers, in the shards' trigger
    before = [_function_source(d, signature) for d in (citus_dsn, *workers)]
    assert len(set(before)) == 1
    head = migrate.current_revision(citus_dsn)

    # At head, `pgtally migrate` changes nothing, on the coordinator or the workers.
    res = CliRunner().invoke(main, ["migrate", "--dsn", citus_dsn])
    assert res.exit_code == 0, res.output
    assert migrate.current_revision(citus_dsn) == head
    assert "pgtally distribute" not in res.stderr
    assert [_function_source(d, signature) for d in (citus_dsn, *workers)] == before

    # A later revision that replaces a function: the new body reaches every worker, with its owner and
    # grants, in the migration's one transaction (Citus propagates the DDL of distributed functions).
    with psycopg.connect(citus_dsn) as c:
        original = c.execute("select pg_get_functiondef(%s::regprocedure)", [signature]).fetchone()[0]  # type: ignore[index]
    changed = original.replace("AS $function$", "AS $function$\n-- changed by a later revision", 1)
    assert changed != original
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.project_file("migrations"), scripts)
    (scripts / "versions" / "9999_later.py").write_text(
        f'"""A later revision (test)."""\n\nfrom alembic import op\n\nrevision = "9999"\ndown_revision = {head!r}\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        f"    op.get_bind().connection.driver_connection.execute({changed!r})\n"
        "    op.execute('create table tally.migration_probe (user_id text primary key)')\n\n\n"
        "def downgrade() -> None:\n    pass\n"
    )
    monkeypatch.setattr(migrate, "project_file", lambda name: scripts if name == "migrations" else None)
    try:
        migrate.upgrade(citus_dsn)
        assert migrate.current_revision(citus_dsn) == "9999"
        after = [_function_source(d, signature) for d in (citus_dsn, *workers)]
        assert all("changed by a later revision" in src for src, _, _ in after), after
        assert {(owner, acl) for _, owner, acl in after} == {before[0][1:]}
        # A table the revision added is named until `pgtally distribute` lays it out (it must be classified first).
        assert distribute.undistributed_tables(citus_dsn) == ["migration_probe"]
        res = CliRunner().invoke(main, ["migrate", "--dsn", citus_dsn])
        assert res.exit_code == 0, res.output
        assert "run pgtally distribute for the new tables (migration_probe)" in res.stderr
        res = CliRunner().invoke(main, ["distribute", "--dsn", citus_dsn])
        assert res.exit_code == 1 and "not classified for Citus: migration_probe" in res.output
        # The install still works through the new body: an insert runs the trigger on a worker.
        with psycopg.connect(citus_dsn, autocommit=True) as c:
            c.execute(INSERT_SQL, ("mig-1", "mig-user", "tts", BASE, 3, None, 0, "succeeded", None, True, "{}"))
            assert c.execute("select count(*) from tally.event_keys where user_id = 'mig-user'").fetchone() == (1,)
    finally:
        with psycopg.connect(citus_dsn, autocommit=True) as c:
            c.execute(original)
            c.execute("drop table if exists tally.migration_probe")
            c.execute("update public.alembic_version set version_num = %s", [head])
    assert [_function_source(d, signature) for d in (citus_dsn, *workers)] == before


def _trend_total(dsn: str) -> tuple[Any, ...] | None:
    with psycopg.connect(dsn, autocommit=True) as c:
        return c.execute(
            "select sum(events)::int, (count(distinct day) filter (where events > 0))::int"
            " from tally.admin_trend('kind', null, '2025-06-01', '2025-06-30')"
        ).fetchone()


def test_the_daily_totals_revision_upgrades_and_downgrades_a_distributed_install(citus: CitusCluster) -> None:
    """Revision 0007 (the daily totals kept day by day by statement triggers) on an install distributed at 0006:
    it creates no trigger Citus would refuse or run on the shards, the refresh re-aggregates every day there, and
    its downgrade gives back 0006's view with the same answers."""
    dsn = distributed_database(citus, f"dd_{uuid.uuid4().hex[:8]}", revision="0006")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("select tally.set_min_group_size(1)")
        for i in range(6):
            c.execute(
                "select tally.record_usage(%s, %s, 'tts', 10, %s)",
                [f"dd-{i}", f"dd-user-{i % 2}", dt.datetime(2025, 6, 1 + i % 3, 9, tzinfo=UTC)],
            )
        c.execute("select tally.merge_pending()")
        c.execute("select * from tally.refresh_analytics()")
    assert _trend_total(dsn) == (6, 3)

    migrate.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as c:
        marking = c.execute("select count(*) from pg_trigger where tgname like '%%_mark_days'").fetchone()
        assert marking == (0,), "no statement trigger on a distributed install"
        assert _trend_total(dsn) == (6, 3), "the view's rows were carried over"
        c.execute("select tally.record_usage('dd-late', 'dd-user-0', 'tts', 10, '2025-06-05 09:00+00')")
        c.execute("select tally.merge_pending()")
        c.execute("select tally.declare_kind('tts', 'characters', 'Speech')")
        c.execute("select * from tally.refresh_analytics()")
        assert _trend_total(dsn) == (7, 4)
        exact = c.execute(
            "select not exists (select * from tally.admin_daily except select * from tally._admin_daily_rows(null))"
            " and not exists (select * from tally._admin_daily_rows(null) except select * from tally.admin_daily)"
        ).fetchone()
        assert exact == (True,)

    migrate.downgrade(dsn, "0006")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("select * from tally.refresh_analytics()")
    assert _trend_total(dsn) == (7, 4)
    migrate.upgrade(dsn)
    assert _trend_total(dsn) == (7, 4)
