# ruff: noqa: F811
"""The write paths, readers and quotas of pgtally distributed on Citus, each compared with one server.

The batch path (``record_usage_batch``, the client's ``record_many`` over COPY), the move of rows out
of the default partition, a reader's own raw events over the HTTP API's sessions, the oracle property
test and concurrent quota checks, all on the session's Citus cluster (coordinator + 2 workers).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import test_oracle
from citus_support import citus, citus_dsn, prefix  # noqa: F401  (fixtures)
from oracle_model import Model
from pgtally import Client, QuotaExceeded, UsageEvent

UTC = dt.timezone.utc
BASE = dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

BATCH_SQL = """
select tally.record_usage_batch(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::timestamptz[], %s::bigint[],
                                %s::numeric[], %s::text[], %s::text[], %s::boolean[], %s::jsonb[], %s::text[])
"""
LOG_SQL = """
select event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable,
       attributes, corrects_event_id, plan
  from tally.usage_events where user_id like %s order by user_id, event_id
"""
TOTALS_SQL = """
select user_id, dimension, value, events, failures, quantity, duration_ms, timed_events, cost
  from tally.user_totals where user_id like %s order by 1, 2, 3
"""


def _row(
    event_id: str,
    user: str,
    quantity: int,
    *,
    status: str = "succeeded",
    corrects: str | None = None,
    at: dt.datetime = BASE,
    voice: str = "alloy",
    cost: str = "0.5",
    duration_ms: int | None = 1000,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user,
        "kind": "tts",
        "quantity": quantity,
        "occurred_at": at,
        "duration_ms": duration_ms,
        "cost": Decimal(cost),
        "status": status,
        "error_code": "E1" if status == "failed" else None,
        "billable": True,
        "attributes": {"voice": voice},
        "corrects_event_id": corrects,
    }


def _batch_params(rows: list[dict[str, Any]]) -> list[Any]:
    cols = ["event_id", "user_id", "kind", "quantity", "occurred_at", "duration_ms", "cost", "status", "error_code"]
    out: list[Any] = [[r[c] for r in rows] for c in cols]
    out.append([r["billable"] for r in rows])
    out.append([json.dumps(r["attributes"]) for r in rows])
    out.append([r["corrects_event_id"] for r in rows])
    return out


def _batches(p: str) -> list[list[dict[str, Any]]]:
    """Batches exercising every rule of the batch path for two users (ids prefixed by ``p``)."""
    a, b = p + "a", p + "b"
    return [
        [
            _row("e1", a, 10),
            _row("e2", a, 20, voice="nova"),
            _row("e1", a, 999),  # the same key again in the batch: its first occurrence wins
            _row("e1", b, 7),  # the same event_id for another user: a new event of that user
            _row("e3", b, 5, status="failed", duration_ms=None),
            _row("r2", a, -20, status="reversed", corrects="e2", voice="nova"),  # its original is in the batch
            _row("m4", b, 3, corrects="e4"),  # a correction before its original, in the same batch
            _row("e4", b, 40, at=BASE + dt.timedelta(days=3)),
        ],
        [
            _row("e3", b, 500),  # recorded already: skipped
            _row("m1", a, -4, corrects="e1", cost="-0.1"),  # an amendment of an event of an earlier batch
            _row("e5", a, 1, at=BASE + dt.timedelta(days=40)),
            _row("e6", b, 2, status="cancelled"),
        ],
    ]


def _same_default_plan(citus_dsn: str, dsn: str) -> None:
    """Gives the single server the session cluster's default plan (other tests set one): new events record it."""
    with psycopg.connect(citus_dsn) as c:
        row = c.execute("select plan, tier, monthly_price from tally.plans where is_default").fetchone()
    if row is not None:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("select tally.upsert_plan(%s, %s, %s, is_default => true)", row)


def _record_batches(dsn: str, p: str) -> tuple[list[int], list[Any], list[Any], list[Any]]:
    """Sends the batches, returns (counts, log, pending deltas per user, totals after the merge)."""
    with psycopg.connect(dsn, autocommit=True) as c:
        counts = []
        for batch in _batches(p):
            got = c.execute(BATCH_SQL, _batch_params(batch)).fetchone()
            assert got is not None
            counts.append(got[0])
        log = c.execute(LOG_SQL, [p + "%"]).fetchall()
        pending = c.execute(
            "select user_id, sum(events), sum(failures), sum(quantity), sum(duration_ms), sum(timed_events), sum(cost)"
            " from tally.pending_deltas where user_id like %s group by 1 order by 1",
            [p + "%"],
        ).fetchall()
        while Client(c).merge_pending():
            pass
        totals = c.execute(TOTALS_SQL, [p + "%"]).fetchall()
    return counts, log, pending, totals


def test_batch_path_on_citus_matches_one_server(citus_dsn: str, dsn: str, prefix: str) -> None:
    _same_default_plan(citus_dsn, dsn)
    for d in (citus_dsn, dsn):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute("select tally.declare_dimension('voice', array['voice'])")
    on_citus = _record_batches(citus_dsn, prefix)
    on_one = _record_batches(dsn, prefix)
    # What the rules say, independently of either server: 7 new events, then 3 (e3 again is skipped).
    assert on_citus[0] == [7, 3]
    assert len(on_citus[1]) == 10
    for name, got, want in zip(("counts", "log", "pending deltas", "totals"), on_citus, on_one, strict=True):
        assert got == want, name
    log = {(r[1], r[0]): r for r in on_citus[1]}
    assert log[(prefix + "a", "e1")][4] == 10, "the first occurrence of a key in the batch wins"


def test_record_many_over_copy_on_citus_matches_one_server(citus_dsn: str, dsn: str, prefix: str) -> None:
    events = [
        UsageEvent(
            e["event_id"],
            e["user_id"],
            e["kind"],
            e["quantity"],
            occurred_at=e["occurred_at"],
            duration_ms=e["duration_ms"],
            cost=e["cost"],
            status=e["status"],
            billable=e["billable"],
            attributes=e["attributes"],
        )
        for batch in _batches(prefix)
        for e in batch
        if e["corrects_event_id"] is None
    ]
    _same_default_plan(citus_dsn, dsn)
    out = []
    for d in (citus_dsn, dsn):
        with psycopg.connect(d, autocommit=True) as c:
            n = Client(c).record_many(events, chunk_size=3)
            out.append((n, c.execute(LOG_SQL, [prefix + "%"]).fetchall()))
    assert out[0][0] == 7  # a/e1, a/e2, b/e1, b/e3, b/e4, a/e5, b/e6
    assert out[0] == out[1]


def test_batch_errors_on_citus_match_one_server(citus_dsn: str, dsn: str, prefix: str) -> None:
    u = prefix + "bad"
    # Each batch and the first bad row the error must name (the first in batch order, whatever its rule).
    batches = [
        ([_row("ok1", u, 1), _row("c1", u, 1, corrects="nothing"), _row("neg", u, -5)], 2, "PT008"),
        ([_row("ok1", u, 1), _row("ok2", u, 2), _row("neg", u, -5), _row("c1", u, 1, corrects="nothing")], 3, None),
        ([_row("f1", u, 1, status="failed"), _row("c2", u, 1, corrects="f1")], 2, "PT008"),
    ]
    for batch, bad_row, code in batches:
        seen = []
        for d in (citus_dsn, dsn):
            with psycopg.connect(d, autocommit=True) as c:
                with pytest.raises(psycopg.Error) as exc:
                    c.execute(BATCH_SQL, _batch_params(batch))
                diag = exc.value.diag
                seen.append((exc.value.sqlstate, diag.message_primary, diag.message_detail, diag.column_name))
                assert c.execute("select count(*) from tally.usage_events where user_id = %s", [u]).fetchone() == (
                    0,
                ), "all or nothing"
        assert seen[0] == seen[1]
        assert seen[0][0] == code if code else seen[0][0].startswith("PT")
        assert seen[0][2] is not None and seen[0][2].startswith(f"batch row {bad_row} ")


def test_a_batch_correction_cannot_ride_on_an_original_another_transaction_recorded_first_on_citus(
    citus_dsn: str, prefix: str
) -> None:
    """The race of test_security_attacks on the cluster: the batch's original loses, so its reversal is refused."""
    writer = f"w_{prefix.strip('-')}"
    user = prefix + "race"
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        c.execute(f"create role {writer} login in role tally_writer")
    writer_dsn = citus_dsn.replace("postgres@", f"{writer}@")
    batch = [_row("O-race", user, 100), _row("C-race", user, -100, status="reversed", corrects="O-race")]
    result: list[object] = []
    with psycopg.connect(writer_dsn) as other:
        # The same user's O-race, not committed yet.
        other.execute("select tally.record_usage('O-race', %s, 'tts', 7, %s)", [user, BASE])

        def send() -> None:
            with psycopg.connect(writer_dsn, autocommit=True) as c:
                try:
                    c.execute(BATCH_SQL, _batch_params(batch))
                    result.append("recorded")
                except psycopg.Error as exc:
                    result.append(exc.sqlstate)

        t = threading.Thread(target=send)
        t.start()
        t.join(1.5)  # the batch waits on the uncommitted key
        assert t.is_alive(), "the batch must wait for the other transaction's key"
        other.commit()
        t.join(20)
    assert result == ["PT008"]
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        assert c.execute("select event_id, quantity from tally.usage_events where user_id = %s", [user]).fetchall() == [
            ("O-race", 7)
        ]


def test_rows_move_out_of_the_default_partition_on_citus(citus_dsn: str, prefix: str) -> None:
    """Rows of a month without a partition land in the default one; creating the month moves them intact."""
    u = prefix + "old"
    at = dt.datetime(2005, 3, 5, tzinfo=UTC)
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        assert c.execute("select to_regclass('tally.usage_events_2005_03')").fetchone() == (None,)
        for i, q in enumerate((3, 4, 5)):
            c.execute(
                "insert into tally.usage_events (event_id, user_id, kind, occurred_at, quantity) values (%s, %s, 'tts', %s, %s)",
                [f"m{i}", u, at + dt.timedelta(hours=i), q],
            )
        before = c.execute(LOG_SQL, [u]).fetchall()
        assert len(before) == 3
        assert c.execute("select tally.ensure_partitions('2005-03-01', '2005-03-01')").fetchone() == (1,)
        after = c.execute(LOG_SQL, [u]).fetchall()
        assert after == before, "the moved rows are all there, unchanged"
        parts = c.execute(
            "select distinct tableoid::regclass::text from tally.usage_events where user_id = %s", [u]
        ).fetchall()
        # (tableoid names the partition's shard on Citus: usage_events_2005_03_<shard id>)
        assert len(parts) == 1 and parts[0][0].startswith("tally.usage_events_2005_03"), parts
        # The move is not a new recording: the user's total counts each event once.
        while Client(c).merge_pending():
            pass
        assert c.execute(
            "select quantity, events from tally.user_totals where user_id = %s and dimension = 'kind'", [u]
        ).fetchone() == (Decimal(12), 3)
        # And the row trigger is back after the move: a duplicate is still skipped.
        c.execute(
            "insert into tally.usage_events (event_id, user_id, kind, occurred_at, quantity) values ('m0', %s, 'tts', %s, 9)",
            [u, at],
        )
        assert c.execute(LOG_SQL, [u]).fetchall() == before


def test_reader_reads_its_own_raw_events_over_http_sessions_on_citus(citus_dsn: str, prefix: str) -> None:
    """The API's sessions (a login role switching to tally_reader per request) see the user's rows, only theirs."""
    from pgtally.http.auth import Identity, Role
    from pgtally.http.db import Database, sync_session
    from pgtally.http.settings import Settings

    login = f"api_{prefix.strip('-')}"
    mine, other = prefix + "me", prefix + "other"
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        c.execute(f"create role {login} login in role tally_reader, tally_writer, tally_analyst")
        for i, u in enumerate((mine, other, mine)):
            c.execute(
                "insert into tally.usage_events (event_id, user_id, kind, occurred_at, quantity) values (%s, %s, 'tts', %s, %s)",
                [f"x{i}", u, BASE, i + 1],
            )
        Client(c).merge_pending()
        want = c.execute(
            "select event_id, quantity from tally.usage_events where user_id = %s order by 1", [mine]
        ).fetchall()
    assert want == [("x0", 1), ("x2", 3)]
    api_dsn = citus_dsn.replace("postgres@", f"{login}@")
    api_settings = Settings(dsn=api_dsn)
    me = Identity(mine, Role.reader)

    async def over_the_pool() -> tuple[list[Any], list[Any], list[Any]]:
        db = Database(api_settings)
        try:
            async with db.session(me, Role.reader) as conn:
                raw = await (
                    await conn.execute("select event_id, quantity from tally.my_usage_events order by 1")
                ).fetchall()
                totals = await (await conn.execute("select distinct user_id from tally.user_totals")).fetchall()
            async with db.session(None, Role.reader) as conn:
                none = await (await conn.execute("select count(*) from tally.user_totals")).fetchall()
        finally:
            await db.close()
        return raw, totals, none

    raw, totals, none = asyncio.run(over_the_pool())
    assert raw == want
    assert totals == [(mine,)]
    assert none == [(0,)], "no user set: row-level security shows nothing"
    with sync_session(api_dsn, me, Role.reader, api_settings) as conn:
        assert conn.execute("select event_id, quantity from tally.my_usage_events order by 1").fetchall() == want
        assert conn.execute("select count(*) from tally.my_usage_events where user_id = %s", [other]).fetchone() == (0,)


# ------------------------------------------------------------------ the oracle property test on Citus


class _CitusReplay(test_oracle.Replay):
    """The oracle's replay with two Citus differences: a COPY's row count is not compared (on Citus it counts the
    rows sent to the workers, duplicates the row trigger skipped there included), nor a merge's max_rows bound;
    the log and every aggregate are still checked against the model."""

    def apply(self, op: Any) -> None:
        if not isinstance(op, test_oracle.MergeOp):
            super().apply(op)
            return
        # On Citus a merge takes whole users (those of the first max_rows deltas): it may merge more.
        self.flush()
        n = self.client.merge_pending(op.max_rows)
        assert n >= 0
        self.merged += n

    def send(self, ev: Any, path: str) -> None:
        if path != "copy":
            super().send(ev, path)
            return
        self.model.offer(ev)
        row = (ev.event_id, ev.user_id, ev.kind, ev.occurred_at, ev.quantity, ev.duration_ms, ev.cost, ev.status)
        with self.conn.cursor() as cur, cur.copy(test_oracle.COPY_SQL) as cp:
            cp.write_row((*row, ev.billable, json.dumps(ev.attributes)))


# Fewer examples than on one server, and no shrinking: each example costs a few seconds on the cluster.
@settings(
    max_examples=15,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(stream=test_oracle.streams, zones=test_oracle.user_settings, chunk_size=st.integers(1, 6))
def test_aggregates_match_oracle_on_citus(
    citus_dsn: str, stream: list[Any], zones: tuple[str, int, int, int], chunk_size: int
) -> None:
    """The oracle test's streams replayed on the Citus coordinator, with this example's own user ids."""
    p = f"o{uuid.uuid4().hex[:10]}-"
    names = list(test_oracle.USERS)
    test_oracle.USERS[:] = [p + u for u in names]  # Replay reads the module's user list
    try:
        with psycopg.connect(citus_dsn, autocommit=True) as conn:
            client = Client(conn)
            while client.merge_pending():  # nothing of another test left pending
                pass
            model = Model()
            tz_var, a0, a1, a2 = zones
            for user, tz, anchor in (
                (p + "u-akl", "Pacific/Auckland", a0),
                (p + "u-lax", "America/Los_Angeles", a1),
                (p + "u-var", tz_var, a2),
            ):
                client.set_user_settings(user, time_zone=tz, billing_anchor_day=anchor)
                model.set_user(user, tz, anchor)
            replay = _CitusReplay(conn, client, model, dt.datetime.now(UTC), chunk_size)
            for op in stream:
                replay.apply(op)
            replay.flush()
            replay.check_all()
            rows = conn.execute(
                "select event_id, user_id, kind, quantity, status, corrects_event_id from tally.usage_events"
                " where user_id like %s",
                [p + "%"],
            ).fetchall()
            assert sorted(rows) == sorted(
                (e.event_id, e.user_id, e.kind, e.quantity, e.status, e.corrects_event_id)
                for e in model.events.values()
            )
            while n := client.merge_pending():
                replay.merged += n
            assert replay.merged == len(model.events)
            replay.check_all()
    finally:
        test_oracle.USERS[:] = names


# ------------------------------------------------------------------ concurrent quota checks on Citus

LIMIT = 1000
ALREADY_USED = 700


class _Abandon(Exception):
    pass


@pytest.fixture
def restore_default_plan(citus_dsn: str) -> Iterator[None]:
    """The session cluster's default plan is shared by every test: put back the one found."""
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        before = c.execute("select plan from tally.plans where is_default").fetchone()
    yield
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        c.execute("update tally.plans set is_default = false where is_default")
        if before is not None:
            c.execute("update tally.plans set is_default = true where plan = %s", [before[0]])


@pytest.mark.usefixtures("restore_default_plan")
def test_concurrent_quota_checks_never_exceed_the_limit_on_citus(citus_dsn: str, prefix: str) -> None:
    user = prefix + "hot"
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        admin = Client(c)
        admin.upsert_plan(prefix + "free", tier=0, monthly_price=0, limits={"tts": LIMIT}, is_default=True)
        admin.record(prefix + "seed", user, "tts", ALREADY_USED, occurred_at=dt.datetime.now(UTC))
        admin.merge_pending()
    workers, attempts = 6, 10
    granted: list[int] = []
    refused = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(workers + 1)
    stop = threading.Event()

    def worker(n: int) -> None:
        rng = random.Random(n)
        try:
            with psycopg.connect(citus_dsn) as conn:  # the caller's own transactions
                client = Client(conn)
                start.wait()
                for i in range(attempts):
                    amount = rng.randint(20, 60)
                    try:
                        with conn.transaction():
                            client.check_quota(user, "tts", amount)
                            time.sleep(rng.random() * 0.004)  # the metered work, holding the lock
                            if rng.random() < 0.15:
                                raise _Abandon()
                            # Through record_usage or the batch path (SECURITY DEFINER, like check_quota):
                            # on Citus one transaction may not write a user's shard as two different roles.
                            if n % 2:
                                client.record_many([UsageEvent(f"{prefix}w{n}-{i}", user, "tts", amount)])
                            else:
                                assert client.record(f"{prefix}w{n}-{i}", user, "tts", amount)
                                assert not client.record(f"{prefix}w{n}-{i}", user, "tts", amount)
                        with lock:
                            granted.append(amount)
                    except QuotaExceeded:
                        with lock:
                            refused[0] += 1
                    except _Abandon:
                        pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def merger() -> None:
        with psycopg.connect(citus_dsn, autocommit=True) as c:
            start.wait()
            while not stop.is_set():
                Client(c).merge_pending()
                time.sleep(0.01)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    merge_thread = threading.Thread(target=merger)
    for t in [*threads, merge_thread]:
        t.start()
    for t in threads:
        t.join(timeout=180)
    stop.set()
    merge_thread.join(timeout=60)
    assert not errors, errors
    with psycopg.connect(citus_dsn, autocommit=True) as c:
        used = sum(p.quantity for p in Client(c).period_totals(user) if p.kind == "tts")
    assert used == ALREADY_USED + sum(granted), "every granted request was recorded exactly once"
    assert used <= LIMIT, f"limit {LIMIT} exceeded: {used}"
    assert refused[0] > 0
    assert used > LIMIT - 60, "the limit is used up to within the largest request"


# ------------------------------------------------------------------ the benchmark


def test_bench_citus_runs_with_tiny_sizes(tmp_path: Any) -> None:
    """`pgtally bench citus` starts its own cluster and server, and prints the ratios with the caveat."""
    from click.testing import CliRunner

    from pgtally.cli import main
    from pgtally.server.citus import citus_missing

    if problem := citus_missing():
        pytest.skip(problem)
    out = tmp_path / "citus.json"
    args = ["bench", "citus", "--seconds", "1", "--clients", "2", "--batch-events", "300", "--users", "20"]
    res = CliRunner().invoke(main, [*args, "--reads", "5", "--rounds", "1", "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "citus / one server" in res.output
    assert "not its scaling" in res.output
    doc = json.loads(out.read_text())
    assert {f["name"] for f in doc["figures"]} == {
        "single-row ingest",
        "batch ingest (record_many)",
        "read period_totals",
        "read lifetime_totals",
    }
    assert all(f["single"] > 0 and f["citus"] > 0 for f in doc["figures"])
    assert doc["exact"] == {"one server": True, "citus": True}


def test_bench_citus_input_errors_exit_2() -> None:
    from click.testing import CliRunner

    from pgtally.cli import main

    res = CliRunner().invoke(main, ["bench", "citus", "--clients", "0"])
    assert res.exit_code == 2
    assert "--clients" in res.output
