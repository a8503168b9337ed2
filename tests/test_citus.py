# ruff: noqa: F811
"""pgtally distributed on a Citus cluster (coordinator + 2 workers on loopback): same answers as one server."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
from decimal import Decimal

import psycopg
import psycopg.sql
import pytest
from click.testing import CliRunner

from citus_support import citus, citus_dsn, prefix  # noqa: F401  (fixtures)
from oracle_model import Ev, Model, check_daily, check_lifetime, check_period
from pgtally import Client, distribute
from pgtally.cli import main

UTC = dt.timezone.utc
BASE = dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
INSERT_SQL = """
insert into tally.usage_events
  (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, billable, attributes)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


# ------------------------------------------------------------------ one server (no Citus needed)


def test_every_table_of_the_schema_is_classified(conn: psycopg.Connection) -> None:
    """A new table in tally must be classified (distributed, reference or local) before distribute runs."""
    assert distribute.unclassified(conn) == []
    known = distribute.classification()
    assert set(distribute.schema_tables(conn)) == set(known), "classified tables that no longer exist"


def test_distribute_without_citus_says_so_and_exits_1(dsn: str) -> None:
    res = CliRunner().invoke(main, ["distribute", "--dsn", dsn])
    assert res.exit_code == 1
    assert "not a Citus coordinator" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_merge_on_one_server_still_honours_max_rows(conn: psycopg.Connection) -> None:
    for i in range(5):
        conn.execute(INSERT_SQL, (f"e{i}", "solo", "tts", BASE, 1, None, 0, "succeeded", True, "{}"))
    assert conn.execute("select tally._is_distributed()").fetchone() == (False,)
    assert conn.execute("select tally.merge_pending(2)").fetchone() == (2,)


# ------------------------------------------------------------------ on the Citus cluster


def test_distribute_is_idempotent_and_lays_out_the_tables(citus_dsn: str) -> None:
    res = CliRunner().invoke(main, ["distribute", "--dsn", citus_dsn])
    assert res.exit_code == 0, res.output
    assert "nothing to change" in res.output
    res = CliRunner().invoke(main, ["distribute", "--dsn", citus_dsn, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {
        "changed": False,
        "distributed": [],
        "reference": [],
        "triggers_dropped": [],
        "settings": [],
        "roles": [],
    }
    with psycopg.connect(citus_dsn) as c:
        rows = dict(
            c.execute(
                "select c.relname, p.colocationid from pg_dist_partition p join pg_class c on c.oid = p.logicalrelid"
                " where c.relnamespace = 'tally'::regnamespace and p.partmethod = 'h' and not c.relispartition"
            ).fetchall()
        )
        assert set(rows) == set(distribute.DISTRIBUTED)
        assert len(set(rows.values())) == 1, "every per-user table is co-located with the log"
        refs = {
            r[0]
            for r in c.execute(
                "select c.relname from pg_dist_partition p join pg_class c on c.oid = p.logicalrelid"
                " where c.relnamespace = 'tally'::regnamespace and p.repmodel = 't'"
            ).fetchall()
        }
        assert refs == set(distribute.REFERENCE)
        assert c.execute("select tally._is_distributed()").fetchone() == (True,)


def _stream(prefix: str, n: int, seed: int) -> list[Ev]:
    """A realistic stream: several users, voices, days, failures, and about one in five sent twice."""
    rnd = random.Random(seed)
    users = [f"{prefix}u{i}" for i in range(6)]
    out: list[Ev] = []
    for i in range(n):
        attrs = {"voice": rnd.choice(["alloy", "lewis", "nova"])} if rnd.random() < 0.9 else {}
        status = "failed" if rnd.random() < 0.08 else "succeeded"
        ev = Ev(
            f"{prefix}e{i}",
            rnd.choice(users),
            rnd.choice(["tts", "ocr"]),
            BASE + dt.timedelta(minutes=rnd.randrange(0, 60 * 24 * 20), microseconds=rnd.randrange(1000)),
            rnd.randrange(0, 5000),
            None if rnd.random() < 0.2 else rnd.randrange(0, 60000),
            Decimal(rnd.randrange(0, 1000)) / 1000,
            status,
            True,
            attrs,
        )
        out.append(ev)
        if rnd.random() < 0.2:
            out.append(ev)  # a retry of the same event
    rnd.shuffle(out)
    return out


def _writer(dsn: str, events: list[Ev], seed: int, committed: list[Ev], lock: threading.Lock) -> None:
    """Plain INSERTs into the coordinator, in small transactions, some of them rolled back."""
    rnd = random.Random(seed)
    with psycopg.connect(dsn) as c:
        for start in range(0, len(events), 7):
            chunk = events[start : start + 7]
            rollback = rnd.random() < 0.15
            with c.transaction(force_rollback=rollback):
                for ev in chunk:
                    c.execute(
                        INSERT_SQL,
                        (
                            ev.event_id,
                            ev.user_id,
                            ev.kind,
                            ev.occurred_at,
                            ev.quantity,
                            ev.duration_ms,
                            ev.cost,
                            ev.status,
                            ev.billable,
                            json.dumps(ev.attributes),
                        ),
                    )
            if not rollback:
                with lock:
                    committed.extend(chunk)


def test_replayed_stream_matches_an_independent_computation(citus_dsn: str, prefix: str) -> None:
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        c.execute("select tally.declare_dimension('voice', array['voice'])")
    stream = _stream(prefix, 600, seed=7)
    parts = [stream[i::3] for i in range(3)]
    committed: list[Ev] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_writer, args=(citus_dsn, part, i, committed, lock)) for i, part in enumerate(parts)
    ]
    merger_stop = threading.Event()

    def merger() -> None:
        with psycopg.connect(citus_dsn, autocommit=True) as c:
            while not merger_stop.is_set():
                c.execute("select tally.merge_pending(200)")

    m = threading.Thread(target=merger)
    m.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merger_stop.set()
    m.join()
    # The independent computation: the first committed copy of each (user, event) counts.
    model = Model()
    committed_ids = {(e.user_id, e.event_id) for e in committed}
    for ev in stream:
        if (ev.user_id, ev.event_id) in committed_ids:
            model.offer(ev)
    users = sorted({e.user_id for e in stream})
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        client = Client(c)
        for phase in ("pending", "merged"):
            for user in users:
                check_lifetime(client, model, user, "voice")
                check_daily(client, model, user, "voice", BASE.date(), BASE.date() + dt.timedelta(days=21))
                check_period(client, model, user, BASE + dt.timedelta(days=10))
            if phase == "pending":
                while client.merge_pending(1000):
                    pass
        n = c.execute("select count(*) from tally.usage_events where user_id like %s", [prefix + "%"]).fetchone()
        assert n == (len(model.events),)
        assert c.execute(
            "select count(*) from tally.pending_deltas where user_id like %s", [prefix + "%"]
        ).fetchone() == (0,)


def test_corrections_quota_and_erasure(citus_dsn: str, prefix: str) -> None:
    user = prefix + "q"
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        # The default plan (a subscription would rebuild the user, which does not run on Citus yet).
        c.execute("select tally.upsert_plan(%s, 1, 5, '{\"tts\": 100}', is_default => true)", [prefix + "plan"])
        c.execute(INSERT_SQL, (prefix + "a", user, "tts", BASE, 60, None, 1, "succeeded", True, "{}"))
        c.execute(INSERT_SQL, (prefix + "b", user, "tts", BASE, 30, None, 1, "succeeded", True, "{}"))
        assert c.execute("select tally.reverse_usage(%s, %s, %s)", [user, prefix + "b", prefix + "b-r"]).fetchone()
        c.execute("select tally.merge_pending()")
        # 60 used of 100: 40 left; 41 more is refused with the project's quota error.
        assert c.execute("select tally.check_quota(%s, 'tts', 40, %s)", [user, BASE]).fetchone() == (Decimal(0),)
        with pytest.raises(psycopg.Error) as exc:
            c.execute("select tally.check_quota(%s, 'tts', 41, %s)", [user, BASE])
        assert exc.value.sqlstate == "PT012"
        before = c.execute(
            "select sum(quantity), sum(events) from tally.user_totals where dimension = 'kind' and user_id = %s", [user]
        ).fetchone()
        assert before == (Decimal(60), 1)
        pseudonym = c.execute("select tally.forget_user(%s)", [user]).fetchone()[0]  # type: ignore[index]
        assert pseudonym.startswith("forgotten-")
        for table in distribute.DISTRIBUTED:
            assert c.execute(f"select count(*) from tally.{table} where user_id = %s", [user]).fetchone() == (0,), table
        after = c.execute(
            "select sum(quantity), sum(events) from tally.user_totals where dimension = 'kind' and user_id = %s",
            [pseudonym],
        ).fetchone()
        assert after == before
        assert c.execute("select count(*) from tally.usage_events where user_id = %s", [pseudonym]).fetchone() == (3,)
        # The log is still immutable after the erasure.
        with pytest.raises(psycopg.Error) as exc:
            c.execute("delete from tally.usage_events where user_id = %s", [pseudonym])
        assert exc.value.sqlstate == "PT009"
        # And its insert trigger is back: a duplicate is skipped.
        c.execute(INSERT_SQL, (prefix + "a", pseudonym, "tts", BASE, 60, None, 1, "succeeded", True, "{}"))
        assert c.execute("select count(*) from tally.usage_events where user_id = %s", [pseudonym]).fetchone() == (3,)


def test_reader_sees_only_its_user_with_set_local(citus_dsn: str, prefix: str) -> None:
    reader = f"r_{prefix.strip('-')}"
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        c.execute(f"create role {reader} login in role tally_reader")
        for u in ("x", "y"):
            c.execute(INSERT_SQL, (prefix + u, prefix + u, "tts", BASE, 5, None, 0, "succeeded", True, "{}"))
        c.execute("select tally.merge_pending()")
    with psycopg.connect(citus_dsn.replace("postgres@", f"{reader}@")) as r:
        r.execute(psycopg.sql.SQL("set local tally.user_id = {}").format(psycopg.sql.Literal(prefix + "x")))
        seen = r.execute("select distinct user_id from tally.user_totals").fetchall()
        assert seen == [(prefix + "x",)]
        r.rollback()
        assert r.execute("select count(*) from tally.user_totals").fetchone() == (0,)


def test_partitions_and_retention(citus_dsn: str) -> None:
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        created = c.execute("select tally.ensure_partitions('2001-01-01', '2001-02-01')").fetchone()
        assert created is not None
        part = c.execute("select to_regclass('tally.usage_events_2001_01')").fetchone()
        assert part is not None and part[0] is not None
        c.execute(
            INSERT_SQL,
            ("old-1", "old-user", "tts", dt.datetime(2001, 1, 5, tzinfo=UTC), 3, None, 0, "succeeded", True, "{}"),
        )
        dropped = c.execute(
            "select partition_name, rows_dropped from tally.apply_retention('20 years') where partition_name like 'usage_events_2001%'"
        ).fetchall()
        assert ("usage_events_2001_01", 1) in dropped
        # The rollups survive retention.
        assert c.execute(
            "select quantity from tally.user_totals where user_id = 'old-user' and dimension = 'kind'"
        ).fetchone() == (Decimal(3),)
