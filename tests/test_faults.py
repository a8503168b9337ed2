"""Faults: hostile input at the write path, a server killed mid-ingest, client retries."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtally import Client, PgTallyError, migrate, server

# ----------------------------------------------------------------------------
# Hostile values: each is stored as data or rejected with a stable SQLSTATE,
# and a rejected statement leaves nothing behind.
# ----------------------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "'; drop table tally.usage_events; --",
            "$$",
            "\\",
            "%s",
            "x" * 201,
            "x" * 5000,
            "null",
            "NaN",
            "🦄" * 70,
            "\u202e",
            "a\tb\nc",
            "tts' or '1'='1",
        ]
    ),
)
HOSTILE_NUMBER = st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.sampled_from([0, -1, 2**63 - 1]))
HOSTILE_COST = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("1e20"), Decimal("-0.01")]),
)
HOSTILE_TIME = st.one_of(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.timezone.utc)
    ),
    st.sampled_from(
        [
            dt.datetime(1999, 12, 31, 23, 59, tzinfo=dt.timezone.utc),
            dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2),
        ]
    ),
)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
HOSTILE_JSON = st.one_of(
    st.recursive(
        JSON_LEAF,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=30,
    ),
    st.just({"blob": "x" * 20000}),
    st.just({"voice": "nul\u0000byte"}),
    st.just({"nested": {"a": [1, {"b": [2, [3, [4, {"c": [5]}]]]}]}}),
)
STABLE_SQLSTATES = {
    "PT001",
    "PT002",
    "PT003",
    "PT004",
    "PT005",
    "PT006",
    "PT007",
    "PT008",
    "22P02",
    "22P05",
    "22003",
    "22021",
    "22008",
    "22007",
}


def _counts(conn: psycopg.Connection) -> tuple[int, int, int]:
    row = conn.execute("""select (select count(*) from tally.usage_events), (select count(*) from tally.event_keys),
                                 (select count(*) from tally.pending_deltas)""").fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event_id=HOSTILE_TEXT,
    user_id=HOSTILE_TEXT,
    kind=HOSTILE_TEXT,
    quantity=HOSTILE_NUMBER,
    duration=st.one_of(st.none(), HOSTILE_NUMBER),
    cost=HOSTILE_COST,
    status=HOSTILE_TEXT,
    occurred_at=HOSTILE_TIME,
    attributes=HOSTILE_JSON,
    correction=st.one_of(st.none(), HOSTILE_TEXT),
)
def test_hostile_values_are_stored_or_rejected_cleanly(
    conn: psycopg.Connection,
    event_id: str,
    user_id: str,
    kind: str,
    quantity: int,
    duration: int | None,
    cost: Decimal,
    status: str,
    occurred_at: dt.datetime,
    attributes: object,
    correction: str | None,
) -> None:
    before = _counts(conn)
    client = Client(conn)
    try:
        new = client.record(
            event_id,
            user_id,
            kind,
            quantity,
            occurred_at=occurred_at,
            duration_ms=duration,
            cost=cost,
            status=status,
            attributes=attributes if isinstance(attributes, dict) else {"v": attributes},
            corrects_event_id=correction,
        )
    except PgTallyError as exc:
        assert exc.sqlstate in STABLE_SQLSTATES, exc
        assert _counts(conn) == before, "a rejected event left rows behind"
        return
    except psycopg.DataError as exc:
        # psycopg refuses text with NUL bytes before it reaches the server (no SQLSTATE).
        assert exc.sqlstate in STABLE_SQLSTATES or (exc.sqlstate is None and "NUL" in str(exc)), (
            f"{exc.sqlstate}: {exc}"
        )
        assert _counts(conn) == before, "a rejected event left rows behind"
        return
    except psycopg.Error as exc:
        assert exc.sqlstate in STABLE_SQLSTATES, f"{exc.sqlstate}: {exc}"
        assert _counts(conn) == before, "a rejected event left rows behind"
        return
    after = _counts(conn)
    if new:
        assert after == (before[0] + 1, before[1] + 1, before[2] + 1)
        stored = conn.execute(
            "select user_id, kind, quantity from tally.usage_events where event_id = %s", (event_id,)
        ).fetchone()
        assert stored == (user_id, kind, quantity), "stored as data, byte for byte"
    else:
        assert after == before


def test_non_object_attributes_are_rejected_as_pt005(conn: psycopg.Connection) -> None:
    for bad in ("[]", "3", '"x"', "null"):
        with pytest.raises(psycopg.Error) as info:
            conn.execute(
                f"insert into tally.usage_events (event_id, user_id, kind, attributes) values ('x', 'u', 'tts', '{bad}')"
            )
        assert info.value.sqlstate == "PT005"
    assert _counts(conn) == (0, 0, 0)


def test_nul_bytes_never_reach_the_log(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.DataError):
        Client(conn).record("nul\x00id", "u", "tts")
    assert _counts(conn) == (0, 0, 0)


# ----------------------------------------------------------------------------
# Crash: SIGKILL the server during concurrent ingest, restart, check.
# ----------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_during_ingest_keeps_every_committed_event_and_no_other() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pgtally-crash-"))
    os.chmod(tmp, 0o755)
    cluster = server.LocalCluster(tmp)  # durable settings: fsync and synchronous_commit on
    try:
        cluster.start()
        server.wait_ready(cluster.dsn())
        dsn = cluster.dsn()
        migrate.upgrade(dsn)
        committed: set[str] = set()
        attempted: set[str] = set()
        lock = threading.Lock()
        stop = threading.Event()

        def writer(w: int) -> None:
            try:
                conn = psycopg.connect(dsn)
            except psycopg.Error:
                return
            n = 0
            while not stop.is_set():
                ids = [f"w{w}-{n}-{k}" for k in range(3)]
                n += 1
                with lock:
                    attempted.update(ids)
                try:
                    for i in ids:
                        conn.execute("select tally.record_usage(%s, %s, 'tts', 10)", (i, f"user-{w % 3}"))
                    conn.commit()  # returns only after the commit is durable
                    with lock:
                        committed.update(ids)
                except psycopg.Error:
                    return

        def merger() -> None:
            try:
                conn = psycopg.connect(dsn, autocommit=True)
                while not stop.is_set():
                    conn.execute("select tally.merge_pending(500)")
                    time.sleep(0.05)
            except psycopg.Error:
                return

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)] + [threading.Thread(target=merger)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        deadline = time.monotonic() + 60  # a slow disk may take longer than usual to commit the first hundred
        while time.monotonic() < deadline:
            with lock:
                if len(committed) > 100:
                    break
            time.sleep(0.05)
        cluster.kill()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert len(committed) > 100, "the load ran before the crash"

        cluster.start()
        server.wait_ready(dsn, timeout=60)
        with psycopg.connect(dsn, autocommit=True) as conn:
            present = {r[0] for r in conn.execute("select event_id from tally.usage_events")}
            assert committed <= present, f"{len(committed - present)} committed events lost"
            assert present <= attempted, "an event nobody sent appeared"
            # A transaction is all or nothing: its three events are all present or all absent.
            for prefix in {i.rsplit("-", 1)[0] for i in present}:
                assert {f"{prefix}-{k}" for k in range(3)} <= present, f"half of transaction {prefix} survived"
            total = conn.execute(
                "select sum(t.events) from (select distinct user_id as u from tally.event_keys) us, "
                "lateral tally.lifetime_totals(us.u, 'kind') t"
            ).fetchone()
            assert total is not None and int(total[0]) == len(present)
            conn.execute("select tally.merge_pending(1000000)")
            drift = conn.execute("select check_name, drifted, sample from tally.verify() where drifted > 0").fetchall()
            assert drift == [], drift
    finally:
        cluster.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------
# Client retries: a lost connection is re-opened and the call repeated once
# more without double counting.
# ----------------------------------------------------------------------------


def test_client_reconnects_after_a_lost_connection_without_double_counting(dsn: str, conn: psycopg.Connection) -> None:
    client = Client.connect(dsn)
    try:
        assert client.record("r1", "u1", "tts", 5)
        pid = client._conn.info.backend_pid  # type: ignore[attr-defined]
        conn.execute("select pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)
        assert client.record("r2", "u1", "tts", 7), "the call after the lost connection succeeds"
        assert client.record("r1", "u1", "tts", 5) is False, "a retried event still counts once"
        totals = client.lifetime_totals("u1", "kind")
        assert [(t.events, t.quantity) for t in totals] == [(2, 12)]
    finally:
        client.close()


def test_client_does_not_retry_inside_the_callers_transaction(dsn: str, conn: psycopg.Connection) -> None:
    own = psycopg.connect(dsn)  # not autocommit: the caller owns the transaction
    client = Client(own, dsn=dsn)
    try:
        client.record("t1", "u1", "tts", 1)
        conn.execute("select pg_terminate_backend(%s)", (own.info.backend_pid,))
        time.sleep(0.2)
        with pytest.raises(psycopg.OperationalError):
            client.record("t2", "u1", "tts", 1)
    finally:
        own.close()
    assert conn.execute("select count(*) from tally.usage_events").fetchone() == (0,), (
        "the lost transaction left nothing"
    )
