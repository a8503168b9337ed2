"""Real concurrency: many connections writing at once, merges running, reads staying exact."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import threading
import time
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from oracle_model import Ev, Model, check_daily, check_lifetime, check_period
from pgtally import Client, InvalidCorrection, NegativeAmount, UsageEvent

UTC = dt.timezone.utc
SETTINGS = {
    "hot": ("Pacific/Auckland", 1),
    "u0": ("America/Los_Angeles", 10),
    "u1": ("UTC", 1),
    "u2": ("Asia/Kolkata", 28),
}
USERS = ["hot", "u0", "u1", "u2", "u3"]  # u3 keeps the defaults
INSERT_SQL = """
insert into tally.usage_events
  (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, billable, attributes)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def event_for(event_id: str, base: dt.datetime) -> Ev:
    """The one payload every writer sends for this event_id (so 'whoever wins' does not matter)."""
    h = zlib.crc32(event_id.encode())
    user = USERS[1 + h % 4] if h % 3 == 0 else "hot"
    status = "failed" if h % 11 == 0 else "cancelled" if h % 13 == 0 else "succeeded"
    attrs: dict[str, Any] = {}
    if h % 5:
        attrs["voice"] = ["af_alloy", "bm_lewis", ""][h % 3]
    if h % 7:
        attrs["model"] = ["kokoro", "whisper"][h % 2]
    return Ev(
        event_id,
        user,
        ["tts", "ocr", "llm"][h % 3],
        base - dt.timedelta(seconds=h % (40 * 86400), microseconds=h % 997),
        h % 1000,
        None if h % 6 == 0 else h % 5000,
        Decimal(h % 100) / 1000,
        status,
        h % 17 != 0,
        attrs,
    )


def as_usage_event(ev: Ev) -> UsageEvent:
    return UsageEvent(
        ev.event_id,
        ev.user_id,
        ev.kind,
        ev.quantity,
        occurred_at=ev.occurred_at,
        duration_ms=ev.duration_ms,
        cost=ev.cost,
        status=ev.status,
        billable=ev.billable,
        attributes=ev.attributes,
    )


def record(client: Client, ev: Ev) -> bool:
    return client.record(
        ev.event_id,
        ev.user_id,
        ev.kind,
        ev.quantity,
        occurred_at=ev.occurred_at,
        duration_ms=ev.duration_ms,
        cost=ev.cost,
        status=ev.status,
        billable=ev.billable,
        attributes=ev.attributes,
    )


def insert(conn: psycopg.Connection, ev: Ev) -> bool:
    cur = conn.execute(
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
    return cur.rowcount == 1


class Ledger:
    """What the threads committed, tracked in Python."""

    def __init__(self, base: dt.datetime) -> None:
        self.base = base
        self.lock = threading.Lock()
        self.committed: set[str] = set()
        self.new_reported = 0  # sum of "new" answers of committed writes
        self.errors: list[tuple[str, BaseException]] = []
        self.merged = 0

    def commit(self, ids: list[str], new: int) -> None:
        with self.lock:
            self.committed.update(ids)
            self.new_reported += new

    def model(self) -> Model:
        m = Model()
        for user, (tz, anchor) in SETTINGS.items():
            m.set_user(user, tz, anchor)
        for event_id in sorted(self.committed):
            m.offer(event_for(event_id, self.base))
        return m


def run_threads(
    targets: list[tuple[str, Callable[[], None]]],
    ledger: Ledger,
    background: list[tuple[str, Callable[[threading.Event], None]]] = (),
    timeout: float = 120,
) -> None:
    stop = threading.Event()

    def guard(name: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:
            with ledger.lock:
                ledger.errors.append((name, exc))

    workers = [threading.Thread(target=guard, args=(n, f), name=n) for n, f in targets]
    daemons = [threading.Thread(target=guard, args=(n, f, stop), name=n) for n, f in background]
    for t in daemons + workers:
        t.start()
    deadline = time.monotonic() + timeout
    for t in workers:
        t.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    for t in daemons:
        t.join(30)
    assert not any(t.is_alive() for t in workers + daemons), "a thread hung (lock wait?)"


def check_everything(client: Client, model: Model, base: dt.datetime) -> None:
    for user in USERS:
        check_lifetime(client, model, user, "kind")
        check_lifetime(client, model, user, "voice")
        check_daily(
            client, model, user, "kind", (base - dt.timedelta(days=42)).date(), (base + dt.timedelta(days=2)).date()
        )
        check_daily(
            client, model, user, "model", (base - dt.timedelta(days=42)).date(), (base + dt.timedelta(days=2)).date()
        )
        for back in (0, 20, 35):
            check_period(client, model, user, base - dt.timedelta(days=back))


# --------------------------------------------------------------------------- the load test


@pytest.mark.slow
def test_concurrent_writers_merges_and_reads_stay_exact(dsn: str) -> None:
    base = dt.datetime.now(UTC)
    ledger = Ledger(base)
    with psycopg.connect(dsn, autocommit=True) as setup:
        admin = Client(setup)
        for user, (tz, anchor) in SETTINGS.items():
            admin.set_user_settings(user, time_zone=tz, billing_anchor_day=anchor)

    pool_ids = [f"ev-{n:05d}" for n in range(4000)]
    retry_rounds = 40
    retry_results: list[list[bool]] = [[] for _ in range(retry_rounds)]
    barrier = threading.Barrier(3, timeout=30)
    reader_samples: list[tuple[int, int]] = []

    def batch_worker(seed: int) -> Callable[[], None]:
        def run() -> None:
            rnd = random.Random(seed)
            with psycopg.connect(dsn, autocommit=True) as conn:
                client = Client(conn)
                for _ in range(30):
                    ids = rnd.sample(pool_ids, rnd.randint(10, 150))
                    if rnd.random() < 0.3:  # duplicates inside the batch too
                        ids += rnd.sample(ids, min(5, len(ids)))
                    rnd.shuffle(ids)
                    events = [as_usage_event(event_for(i, base)) for i in ids]
                    if rnd.random() < 0.5:
                        added = client.record_many(events, chunk_size=rnd.randint(3, 40))
                    else:  # an iterator: chunks are not sorted as a whole
                        added = client.record_many(iter(events), chunk_size=rnd.randint(3, 40))
                    ledger.commit(ids, added)

        return run

    def tx_worker(seed: int) -> Callable[[], None]:
        def run() -> None:
            rnd = random.Random(seed)
            with psycopg.connect(dsn) as conn:  # not autocommit: one transaction, several statements
                client = Client(conn)
                for _ in range(60):
                    # Key order, (user, event id), as record_many takes the keys: a writer that took them in
                    # another order could deadlock with a batch and lose its transaction.
                    ids = sorted(rnd.sample(pool_ids, rnd.randint(2, 6)), key=lambda i: (event_for(i, base).user_id, i))
                    fate = rnd.random()
                    new = 0
                    try:
                        for k, event_id in enumerate(ids):
                            ev = event_for(event_id, base)
                            new += record(client, ev) if k % 2 else insert(conn, ev)
                            if fate < 0.15 and k == len(ids) // 2:
                                client.record(f"bad-{seed}-{rnd.random()}", "hot", "tts", -5)
                    except NegativeAmount:
                        conn.rollback()
                        continue
                    if fate < 0.35:
                        conn.rollback()
                    else:
                        conn.commit()
                        ledger.commit(ids, new)
                    time.sleep(rnd.random() / 200)

        return run

    def retry_worker(which: int) -> Callable[[], None]:
        def run() -> None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                client = Client(conn)
                for r in range(retry_rounds):
                    ev = event_for(f"retry-{r:03d}", base)
                    barrier.wait()
                    method = (which + r) % 3
                    if method == 0:
                        new = record(client, ev)
                    elif method == 1:
                        new = client.record_many([as_usage_event(ev)]) == 1
                    else:
                        new = insert(conn, ev)
                    with ledger.lock:
                        retry_results[r].append(new)
                    ledger.commit([ev.event_id], int(new))

        return run

    def merger(stop: threading.Event) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            client = Client(conn)
            while not stop.is_set():
                n = client.merge_pending(50)
                with ledger.lock:
                    ledger.merged += n
                time.sleep(0.002)

    def reader(stop: threading.Event) -> None:
        # No corrections in this load: the hot user's counters can only grow.
        with psycopg.connect(dsn, autocommit=True) as conn:
            client = Client(conn)
            while not stop.is_set():
                rows = client.lifetime_totals("hot", "kind")
                reader_samples.append((sum(r.events + r.failures for r in rows), sum(r.quantity for r in rows)))
                time.sleep(0.002)

    # Phase 1: nine writers, a merger and a reader at once.
    targets = [(f"batch-{i}", batch_worker(i)) for i in range(4)]
    targets += [(f"tx-{i}", tx_worker(100 + i)) for i in range(2)]
    targets += [(f"retry-{i}", retry_worker(i)) for i in range(3)]
    run_threads(targets, ledger, [("merger", merger), ("reader", reader)])
    merged_during_load = ledger.merged
    # Phase 2: more overlapping writers without a merger, so the first check also reads pending deltas.
    run_threads([(f"batch2-{i}", batch_worker(10 + i)) for i in range(3)] + [("tx2", tx_worker(200))], ledger)

    assert not ledger.errors, ledger.errors
    assert not any(isinstance(e, psycopg.errors.DeadlockDetected) for _, e in ledger.errors)

    # Each retried key from three connections at once: exactly one writer saw it as new.
    assert [sorted(r) for r in retry_results] == [[False, False, True]] * retry_rounds

    assert len(reader_samples) > 10
    for prev, cur in itertools.pairwise(reader_samples):
        assert cur[0] >= prev[0] and cur[1] >= prev[1], "a read went backwards while merges ran"

    model = ledger.model()
    with psycopg.connect(dsn, autocommit=True) as conn:
        client = Client(conn)
        n_log = conn.execute("select count(*), count(distinct event_id) from tally.usage_events").fetchone()
        assert n_log == (len(ledger.committed), len(ledger.committed))
        logged = {r[0] for r in conn.execute("select event_id from tally.usage_events")}
        assert logged == ledger.committed
        assert ledger.new_reported == len(ledger.committed), "each committed key reported new exactly once"

        pending = conn.execute("select count(*) from tally.pending_deltas").fetchone()[0]
        assert merged_during_load > 0 and pending > 0, (merged_during_load, pending)
        check_everything(client, model, base)  # rollups plus what is still pending
        while n := client.merge_pending():
            ledger.merged += n
        assert ledger.merged == len(ledger.committed), "rolled-back writes left no delta, committed ones one each"
        check_everything(client, model, base)


# --------------------------------------------------------------------------- read-your-writes


def test_read_right_after_commit_on_another_connection(dsn: str) -> None:
    base = dt.datetime.now(UTC)
    stop = threading.Event()
    errors: list[BaseException] = []

    def merger() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                while not stop.is_set():
                    Client(conn).merge_pending(3)
        except BaseException as exc:
            errors.append(exc)

    background = threading.Thread(target=merger)
    background.start()
    try:
        with (
            psycopg.connect(dsn, autocommit=True) as wconn,
            psycopg.connect(dsn) as tconn,
            psycopg.connect(dsn, autocommit=True) as rconn,
        ):
            writer, tx_writer, reader = Client(wconn), Client(tconn), Client(rconn)
            writer.set_user_settings("ryw", time_zone="Pacific/Auckland")
            today = base.astimezone(ZoneInfo("Pacific/Auckland")).date()
            for i in range(60):
                quantity = i + 1
                if i % 2:
                    assert writer.record(f"ryw-{i}", "ryw", "tts", quantity, occurred_at=base)
                else:
                    assert tx_writer.record(f"ryw-{i}", "ryw", "tts", quantity, occurred_at=base)
                    tconn.commit()
                expected_q = quantity * (quantity + 1) // 2
                lifetime = reader.lifetime_totals("ryw")
                assert [(t.value, t.events, t.quantity) for t in lifetime] == [("tts", i + 1, expected_q)]
                daily = reader.daily_totals("ryw", "kind", today, today)
                assert [(d.events, d.quantity) for d in daily] == [(i + 1, expected_q)]
                period = reader.period_totals("ryw", base)
                assert [(p.kind, p.events, p.quantity) for p in period] == [("tts", i + 1, expected_q)]
            # An uncommitted write is invisible to others, then visible right after commit.
            assert tx_writer.record("ryw-open", "ryw", "tts", 1000, occurred_at=base)
            assert reader.lifetime_totals("ryw")[0].quantity == 1830
            tconn.commit()
            assert reader.lifetime_totals("ryw")[0].quantity == 2830
    finally:
        stop.set()
        background.join(30)
    assert not errors, errors


# --------------------------------------------------------------------------- concurrent corrections


def test_concurrent_reversals_of_one_event_count_once(dsn: str) -> None:
    """Several connections reverse the same event at once with different reversal ids
    (e.g. a refund webhook delivered twice): exactly one reversal may be booked."""
    rounds, threads = 15, 6
    with psycopg.connect(dsn, autocommit=True) as conn:
        client = Client(conn)
        for r in range(rounds):
            assert client.record(f"orig-{r}", "payer", "tts", 100, cost="1.00")
    outcomes: list[list[str]] = [[] for _ in range(rounds)]
    barrier = threading.Barrier(threads, timeout=30)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                client = Client(conn)
                for r in range(rounds):
                    barrier.wait()
                    try:
                        outcomes[r].append(
                            "new" if client.reverse("payer", f"orig-{r}", f"orig-{r}:refund-{t}") else "dup"
                        )
                    except InvalidCorrection:
                        outcomes[r].append("refused")
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    with psycopg.connect(dsn, autocommit=True) as conn:
        client = Client(conn)
        totals = [(t.events, t.quantity, t.cost) for t in client.lifetime_totals("payer")]
        reversals = conn.execute("select count(*) from tally.usage_events where status = 'reversed'").fetchone()[0]
    # What a user sees first: the lifetime events count and money (they go negative when a
    # reversal is booked twice) and how many reversals the log holds (one per original).
    assert (totals, reversals) == ([(0, 0, Decimal(0))], rounds)
    assert [sorted(o) for o in outcomes] == [["new"] + ["refused"] * (threads - 1)] * rounds


def test_concurrent_retries_of_one_reversal_id(dsn: str) -> None:
    """The same reversal (same id) sent from several connections at once is booked once, no errors."""
    threads = 6
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert Client(conn).record("o-1", "payer", "tts", 100, cost="1.00")
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads, timeout=30)

    def worker() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                barrier.wait()
                results.append(Client(conn).reverse("payer", "o-1", "o-1:refund"))
        except BaseException as exc:
            errors.append(exc)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    assert sorted(results) == [False] * (threads - 1) + [True]
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert [(t.events, t.quantity) for t in Client(conn).lifetime_totals("payer")] == [(0, 0)]
