"""Rebuild and verify cover every table derived from the log, and verify's advice repairs what it finds.

Besides the rollups, the merge keeps per-user sessions, the hour-of-week histogram, funnel days, usage per UTC
day and dimension value, operational counters and duration histograms. A hand edit of any of them (a counter
changed, a row deleted, a bogus row inserted) must be reported by ``tally.verify`` naming the table, the user
and the row's key, and ``tally.rebuild`` of that user, or of every user, must restore exactly what the merges
wrote. The log itself can be damaged only past its triggers (as the owner or a superuser): a row without its
key, a key without its row, an event id twice; verify reports each, and the repair ``pgtally verify`` prints,
followed step by step, ends in a clean verify. A hypothesis property replays random streams through the real
write path and checks that a rebuild from the log reproduces the merged tables exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtally import Client
from pgtally.cli import main

UTC = dt.timezone.utc
BASE = dt.datetime(2026, 10, 20, 12, 0, tzinfo=UTC)  # a fixed clock: every event is some time before it

# The tables the merge keeps besides the rollups, and all of them.
DERIVED = (
    "user_sessions",
    "user_hours",
    "user_kind_days",
    "user_daily_ops",
    "user_daily_durations",
    "user_daily_values",
)
EVERY = (*DERIVED, "user_daily", "user_totals", "user_periods")
SUPERUSER_SQL = "psql, as a superuser: "


# --------------------------------------------------------------------------- helpers


def primary_key(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        """select a.attname from pg_index i
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
            where i.indrelid = %s::regclass and i.indisprimary
            order by array_position(i.indkey::int2[], a.attnum)""",
        (f"tally.{table}",),
    ).fetchall()
    return [r[0] for r in rows]


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Full contents of every derived table, in key order."""
    return {
        t: conn.execute(f"select * from tally.{t} order by {', '.join(primary_key(conn, t))}").fetchall() for t in EVERY
    }


def drift(conn: psycopg.Connection) -> dict[str, list[str]]:
    """check name -> sample of drifted keys, for the checks of tally.verify that drifted."""
    return {
        name: sample
        for name, drifted, sample in conn.execute("select check_name, drifted, sample from tally.verify(100)")
        if drifted
    }


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def follow_the_advice(conn: psycopg.Connection, dsn: str) -> list[str]:
    """Runs `pgtally verify --json`, then every repair step it names, exactly as printed; returns the steps."""
    res = cli("verify", "--dsn", dsn, "--json")
    report = json.loads(res.output)
    assert res.exit_code == (1 if report["drifted"] else 0)
    for step in report["repair"]:
        if step.startswith("pgtally "):
            done = cli(*shlex.split(step)[1:], "--dsn", dsn)
            assert done.exit_code == 0, done.output
        else:
            assert step.startswith(SUPERUSER_SQL), step
            conn.execute(step.removeprefix(SUPERUSER_SQL))  # the test's connection is a superuser's
    return list(report["repair"])


def scenario(conn: psycopg.Connection) -> None:
    """Three users in three zones; sessions (by id and by kind), formats, durations, a failure, an unbillable
    event, an amendment, a reversal and a plan; everything merged."""
    conn.execute("set jit = off")  # compiling verify's plans costs seconds on a tiny database
    c = Client(conn)
    conn.execute("select tally.upsert_plan('pro', 2, 20)")
    c.set_user_settings("u-akl", time_zone="Pacific/Auckland", billing_anchor_day=15)
    c.set_user_settings("u-lax", time_zone="America/Los_Angeles")
    conn.execute("select tally.start_subscription('u-lax', 'pro', %s)", (BASE - dt.timedelta(days=3),))
    h = dt.timedelta(hours=1)
    c.record("a1", "u-akl", "tts", 100, occurred_at=BASE - 30 * h, duration_ms=1500, cost="0.01",
             attributes={"voice": "af_alloy", "session_id": "s1", "format": "mp3"})  # fmt: skip
    c.record("a2", "u-akl", "tts", 50, occurred_at=BASE - 29 * h, duration_ms=800, cost="0.005",
             attributes={"voice": "bm_lewis", "session_id": "s1", "format": "wav"})  # fmt: skip
    c.record("a3", "u-akl", "session", 0, occurred_at=BASE - 2 * h, duration_ms=600_000)
    c.record("a4", "u-akl", "ocr", 3, occurred_at=BASE - 120 * h, status="failed", error_code="E_TIMEOUT",
             attributes={"format": "pdf"})  # fmt: skip
    c.record("b1", "u-lax", "tts", 70, occurred_at=BASE - 27 * h, duration_ms=2000, cost="0.02",
             attributes={"voice": "af_alloy", "model": "kokoro", "session_id": "s9", "format": "mp3"})  # fmt: skip
    c.record(
        "b2",
        "u-lax",
        "llm",
        900,
        occurred_at=BASE - 96 * h,
        cost="0.3",
        attributes={"model": "gpt", "session_id": "s9"},
    )
    c.record(
        "b3", "u-lax", "session", 0, occurred_at=BASE - 48 * h, duration_ms=120_000, attributes={"session_id": "s9"}
    )
    c.record("b4", "u-lax", "tts", 10, occurred_at=BASE - 26 * h, duration_ms=90_000, cost="0.01",
             attributes={"voice": "bm_lewis", "format": "mp3"})  # fmt: skip
    c.amend("u-lax", "b1", "b1-fix", quantity_delta=-10, cost_delta=Decimal("-0.005"))
    c.reverse("u-akl", "a2", "a2-rev")
    c.record("c1", "u-utc", "export", 1, occurred_at=BASE - 240 * h, billable=False, attributes={"format": "pdf"})
    while c.merge_pending():
        pass


EDITS = ("update", "delete", "insert")


def hand_edit(conn: psycopg.Connection, table: str, edit: str, user_id: str) -> str:
    """Edits one row of the user's in `table` behind pgtally's back; returns the edited row's key as verify names it."""
    pk = primary_key(conn, table)
    cols = [
        r[0]
        for r in conn.execute(
            """select attname from pg_attribute
                where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum""",
            (f"tally.{table}",),
        )
    ]
    row = conn.execute(
        f"select {', '.join(pk)} from tally.{table} where user_id = %s order by {', '.join(pk)} limit 1", (user_id,)
    ).fetchone()
    assert row is not None, f"the scenario gives {user_id} no row in {table}"
    where = " and ".join(f"{c} = %s" for c in pk)
    if edit == "update":
        col, typ = next(
            (c, t)
            for c, t in conn.execute(
                """select attname, format_type(atttypid, atttypmod) from pg_attribute
                    where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum""",
                (f"tally.{table}",),
            )
            if c not in pk
        )
        change = f"{col} - interval '1 hour'" if typ.startswith("timestamp") else f"{col} + 7"
        assert conn.execute(f"update tally.{table} set {col} = {change} where {where}", row).rowcount == 1
        key = row
    elif edit == "delete":
        assert conn.execute(f"delete from tally.{table} where {where}", row).rowcount == 1
        key = row
    else:
        # A copy of the row under a key the log does not explain.
        if "day" in pk:
            override, value = "day", dt.date(2026, 1, 2)
        elif "how" in pk:
            used = {r[0] for r in conn.execute("select how from tally.user_hours where user_id = %s", (user_id,))}
            override, value = "how", min(set(range(168)) - used)
        else:
            override, value = pk[-1], "bogus-key"
        select = ", ".join("%s" if c == override else c for c in cols)
        conn.execute(f"insert into tally.{table} ({', '.join(cols)}) select {select} from tally.{table} where {where}",
                     (value, *row))  # fmt: skip
        key = tuple(value if c == override else v for c, v in zip(pk, row))
    return "/".join(str(v) for v in key)


# --------------------------------------------------------------------------- hand edits of each derived table


@pytest.mark.parametrize("edit", EDITS)
@pytest.mark.parametrize("table", DERIVED)
def test_a_hand_edit_is_reported_and_a_rebuild_restores_the_table(
    conn: psycopg.Connection, table: str, edit: str
) -> None:
    scenario(conn)
    merged = snapshot(conn)
    assert drift(conn) == {}

    key = hand_edit(conn, table, edit, "u-lax")
    found = drift(conn)
    assert list(found) == [f"{table} vs log"], found
    assert found[f"{table} vs log"] == [key], "verify names the user and the edited row's key"
    conn.execute("select tally.rebuild('u-lax')")
    assert drift(conn) == {}
    assert snapshot(conn) == merged, "rebuilding the user restores exactly what the merges wrote"

    hand_edit(conn, table, edit, "u-lax")
    conn.execute("select tally.rebuild()")
    assert drift(conn) == {}
    assert snapshot(conn) == merged, "rebuilding every user restores exactly what the merges wrote"


def test_rows_of_a_user_the_log_does_not_know_are_reported_and_removed(conn: psycopg.Connection, dsn: str) -> None:
    scenario(conn)
    merged = snapshot(conn)
    for table in DERIVED:
        pk = primary_key(conn, table)
        cols = ", ".join(
            r[0]
            for r in conn.execute(
                "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped"
                " order by attnum",
                (f"tally.{table}",),
            )
        )
        first = conn.execute(f"select {', '.join(pk)} from tally.{table} order by {', '.join(pk)} limit 1").fetchone()
        assert first is not None
        ghost = cols.replace("user_id", "'ghost'")
        where = " and ".join(f"{c} = %s" for c in pk)
        conn.execute(f"insert into tally.{table} ({cols}) select {ghost} from tally.{table} where {where}", first)
    found = drift(conn)
    assert set(found) == {f"{t} vs log" for t in DERIVED}
    assert all(sample[0].startswith("ghost/") for sample in found.values())
    assert follow_the_advice(conn, dsn) == ["pgtally rebuild"]
    assert drift(conn) == {}
    assert snapshot(conn) == merged


def test_verify_prints_the_repair_and_following_it_repairs(conn: psycopg.Connection, dsn: str) -> None:
    scenario(conn)
    merged = snapshot(conn)
    for table in DERIVED:
        hand_edit(conn, table, "update", "u-akl")
    res = cli("verify", "--dsn", dsn)
    assert res.exit_code == 1
    assert "drift found" in res.output and "1. pgtally rebuild" in res.output
    assert follow_the_advice(conn, dsn) == ["pgtally rebuild"]
    res = cli("verify", "--dsn", dsn, "--json")
    assert res.exit_code == 0 and json.loads(res.output)["repair"] == []
    assert snapshot(conn) == merged


def test_a_rebuild_with_pending_deltas_leaves_them_for_the_next_merge(conn: psycopg.Connection) -> None:
    scenario(conn)
    c = Client(conn)
    c.record("p1", "u-akl", "tts", 5, occurred_at=BASE - dt.timedelta(hours=29), duration_ms=700,
             attributes={"voice": "af_alloy", "session_id": "s1", "format": "mp3"})  # fmt: skip
    c.record("p2", "u-lax", "session", 0, occurred_at=BASE - dt.timedelta(hours=5), duration_ms=60_000)
    c.reverse("u-akl", "a1", "a1-rev")
    hand_edit(conn, "user_sessions", "update", "u-akl")
    hand_edit(conn, "user_daily_ops", "delete", "u-akl")
    assert set(drift(conn)) == {"user_sessions vs log", "user_daily_ops vs log"}
    conn.execute("select tally.rebuild()")
    assert drift(conn) == {}, "exact with the deltas still pending"
    while c.merge_pending():
        pass
    assert drift(conn) == {}
    rebuilt_then_merged = snapshot(conn)
    conn.execute("select tally.rebuild()")
    assert snapshot(conn) == rebuilt_then_merged, "the merge added each pending delta exactly once"


# --------------------------------------------------------------------------- the log and its keys


def replica(conn: psycopg.Connection, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Runs a statement with the log's triggers off, as a superuser can (the damage verify must find)."""
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(statement, params)


def test_a_row_written_past_the_trigger_gets_its_key_and_counts_after_the_advised_rebuild(
    conn: psycopg.Connection, dsn: str
) -> None:
    scenario(conn)
    # A user the ledger has never seen, inserted with the triggers off: no key, no pending delta.
    replica(
        conn,
        """insert into tally.usage_events (event_id, user_id, kind, occurred_at, recorded_at, quantity)
           values ('raw-1', 'u-raw', 'tts', %s, now(), 42)""",
        (BASE - dt.timedelta(hours=3),),
    )
    assert drift(conn) == {"log rows vs exactly-once keys": ["raw-1"]}
    res = cli("rebuild", "--dsn", dsn)
    assert res.exit_code == 0
    # Before, it rebuilt the users it knew from their keys and totals only: "from 0 log rows" for this one.
    out = " ".join(res.output.split())
    assert "rebuilt 4 user(s) from 12 log rows" in out and "1 exactly-once key(s) reconciled" in out
    assert drift(conn) == {}
    assert [(t.value, t.events, t.quantity) for t in Client(conn).lifetime_totals("u-raw")] == [("tts", 1, 42)]
    assert Client(conn).record("raw-1", "u-raw", "tts", 42) is False, "and its event id is recorded once"


def test_a_key_whose_row_is_gone_is_dropped_by_the_advised_rebuild(conn: psycopg.Connection, dsn: str) -> None:
    scenario(conn)
    merged = snapshot(conn)
    # A merged row deleted past the refusal triggers: its key stays, its totals stay.
    replica(conn, "delete from tally.usage_events where event_id = 'b4'")
    found = drift(conn)
    assert found["exactly-once keys vs log rows"] == ["b4"]
    assert "daily rollups vs log" in found and "user_daily_ops vs log" in found, "the totals still count b4"
    # A key written by hand for an event never logged.
    conn.execute(
        "insert into tally.event_keys (event_id, user_id, occurred_at, correctable) values ('forged', 'u-akl', %s, true)",
        (BASE - dt.timedelta(hours=1),),
    )
    assert drift(conn)["exactly-once keys vs log rows"] == ["b4", "forged"]
    assert follow_the_advice(conn, dsn) == ["pgtally rebuild"]
    assert drift(conn) == {}
    assert snapshot(conn) != merged and conn.execute(
        "select count(*) from tally.event_keys where event_id in ('b4', 'forged')"
    ).fetchone() == (0,)
    # The event can be recorded again and counts once.
    assert Client(conn).record("b4", "u-lax", "tts", 10, occurred_at=BASE - dt.timedelta(hours=26), duration_ms=90_000,
                               cost="0.01", attributes={"voice": "bm_lewis", "format": "mp3"})  # fmt: skip
    while Client(conn).merge_pending():
        pass
    assert drift(conn) == {}
    assert snapshot(conn) == merged


def test_an_event_id_twice_in_the_log_counts_once_and_the_advice_removes_the_copy(
    conn: psycopg.Connection, dsn: str
) -> None:
    scenario(conn)
    merged = snapshot(conn)
    # Written past the insert trigger: an exact copy of b1 (a restore run twice), and a row of a1's user
    # under a1's event id at another time with other amounts.
    replica(conn, "insert into tally.usage_events select * from tally.usage_events where event_id = 'b1'")
    replica(
        conn,
        """insert into tally.usage_events (event_id, user_id, kind, occurred_at, recorded_at, quantity)
           values ('a1', 'u-akl', 'tts', %s, now(), 999)""",
        (BASE - dt.timedelta(hours=1),),
    )
    assert drift(conn) == {"duplicate log rows": ["a1", "b1"]}, "the copies are found and counted nowhere"
    # A rebuild alone does not count them either.
    conn.execute("select tally.rebuild()")
    assert snapshot(conn) == merged and drift(conn) == {"duplicate log rows": ["a1", "b1"]}
    steps = follow_the_advice(conn, dsn)
    assert steps[0] == "pgtally rebuild" and steps[1].startswith(SUPERUSER_SQL) and steps[2] == "pgtally rebuild"
    assert drift(conn) == {}
    assert snapshot(conn) == merged
    assert conn.execute("select count(*) from tally.usage_events where event_id in ('a1', 'b1')").fetchone() == (2,)


def test_the_repair_statement_is_the_one_the_docs_show() -> None:
    from pathlib import Path

    from pgtally.cli.ops import REMOVE_REPEATED_ROWS_SQL

    docs = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text()
    assert " ".join(REMOVE_REPEATED_ROWS_SQL.split()) in " ".join(docs.split())


# --------------------------------------------------------------------------- property: rebuild reproduces the merges


@dataclass(frozen=True)
class Ev:
    user: int
    kind: str
    offset_min: int
    quantity: int
    duration_ms: int | None
    cost_units: int
    status: str
    billable: bool
    session: str | None
    fmt: str | None
    voice: str | None


@dataclass(frozen=True)
class Fix:
    pick: int
    reverse: bool
    delta: int


@dataclass(frozen=True)
class Merge:
    max_rows: int


@dataclass(frozen=True)
class Zone:
    user: int
    zone: str


USERS = ("p-akl", "p-lax", "p-utc")
ZONES = ("UTC", "Pacific/Auckland", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Chatham")
events = st.builds(
    Ev,
    user=st.integers(0, len(USERS) - 1),
    kind=st.sampled_from(["tts", "ocr", "session"]),
    offset_min=st.integers(0, 40 * 24 * 60),
    quantity=st.integers(0, 500),
    duration_ms=st.none() | st.integers(0, 4_000_000),
    cost_units=st.integers(0, 900),
    status=st.sampled_from(["succeeded", "succeeded", "succeeded", "failed", "cancelled"]),
    billable=st.booleans(),
    session=st.sampled_from([None, "", "s1", "s2"]),
    fmt=st.sampled_from([None, "mp3", "pdf"]),
    voice=st.sampled_from([None, "af_alloy", "bm_lewis"]),
)
ops = st.lists(
    st.one_of(
        events,
        events,
        events,
        st.builds(Fix, pick=st.integers(0, 1000), reverse=st.booleans(), delta=st.integers(-50, 50)),
        st.builds(Merge, max_rows=st.sampled_from([1, 3, 100_000])),
        st.builds(Zone, user=st.integers(0, len(USERS) - 1), zone=st.sampled_from(ZONES)),
    ),
    min_size=1,
    max_size=25,
)


def play(conn: psycopg.Connection, stream: list[Any], zones: tuple[str, str]) -> None:
    c = Client(conn)
    conn.execute("set jit = off")
    c.set_user_settings(USERS[0], time_zone=zones[0], billing_anchor_day=9)
    c.set_user_settings(USERS[1], time_zone=zones[1])
    originals: list[tuple[str, str]] = []
    fixed: set[tuple[str, str]] = set()
    for n, op in enumerate(stream):
        if isinstance(op, Ev):
            attrs: dict[str, Any] = {}
            for name, value in (("session_id", op.session), ("format", op.fmt), ("voice", op.voice)):
                if value is not None:
                    attrs[name] = value
            event_id = f"e{n}"
            c.record(event_id, USERS[op.user], op.kind, op.quantity, occurred_at=BASE - dt.timedelta(minutes=op.offset_min),
                     duration_ms=op.duration_ms, cost=Decimal(op.cost_units) / 100, status=op.status,
                     billable=op.billable, attributes=attrs)  # fmt: skip
            if op.status == "succeeded":
                originals.append((USERS[op.user], event_id))
        elif isinstance(op, Fix):
            candidates = [e for e in originals if e not in fixed]
            if not candidates:
                continue
            target_user, target = candidates[op.pick % len(candidates)]
            if op.reverse:
                assert c.reverse(target_user, target, f"{target}-rev")
                fixed.add((target_user, target))
            else:
                assert c.amend(target_user, target, f"{target}-amend{n}", quantity_delta=op.delta, duration_ms_delta=op.delta * 10,
                               cost_delta=Decimal(op.delta) / 100)  # fmt: skip
        elif isinstance(op, Merge):
            c.merge_pending(op.max_rows)
        else:
            c.set_user_settings(USERS[op.user], time_zone=op.zone)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=ops, zones=st.tuples(st.sampled_from(ZONES), st.sampled_from(ZONES)), per_user=st.booleans())
def test_rebuild_reproduces_what_the_merges_wrote(databases: Any, stream: list[Any], zones: tuple[str, str],
                                                  per_user: bool) -> None:  # fmt: skip
    first = databases.create()
    try:
        with psycopg.connect(first, autocommit=True) as conn:
            play(conn, stream, zones)
        # Two copies of the same history, deltas still pending: one only merges, the other loses every derived
        # table and rebuilds them from the log first.
        second = databases.create(template=str(psycopg.conninfo.conninfo_to_dict(first)["dbname"]))
        with (
            psycopg.connect(first, autocommit=True) as merged_only,
            psycopg.connect(second, autocommit=True) as rebuilt,
        ):
            for conn in (merged_only, rebuilt):
                conn.execute("set jit = off")
            assert drift(rebuilt) == {}, "exact with deltas pending"
            # Everything derived is lost: only the log, its keys and the pending deltas are left.
            # (That verify sees each table's loss is shown table by table above; here merged rows may all be
            # zero, e.g. an event and its reversal, which verify rightly counts as nothing.)
            rebuilt.execute(f"truncate {', '.join(f'tally.{t}' for t in EVERY)}")
            if per_user:
                for (user,) in rebuilt.execute("select user_id from tally.rebuild_users()").fetchall():
                    rebuilt.execute("select tally.rebuild(%s)", (user,))
            else:
                rebuilt.execute("select tally.rebuild()")
            assert drift(rebuilt) == {}, "exact after the rebuild, deltas still pending"
            for conn in (merged_only, rebuilt):
                while Client(conn).merge_pending():
                    pass
            expected = snapshot(merged_only)
            assert snapshot(rebuilt) == expected, "rebuild from the log + merge == merge alone"
            rebuilt.execute("select tally.rebuild()")
            assert snapshot(rebuilt) == expected, "a rebuild with nothing pending reproduces the merged tables"
            assert drift(rebuilt) == {} and drift(merged_only) == {}
    finally:
        databases.drop_all()
