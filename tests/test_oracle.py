"""Property tests: every aggregate pgtally reports equals a plain-Python recomputation.

Hypothesis generates a random stream of operations (new events through four
write paths, duplicates, amendments, reversals, partial merges, checks) for
several users in different time zones; the stream is replayed against a fresh
database and mirrored in :mod:`oracle_model`, which never reads the database.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle_model import Ev, Model, check_daily, check_lifetime, check_period
from pgtally import Client, UsageEvent

UTC = dt.timezone.utc
KINDS = ["tts", "ocr", "llm"]
VOICES = [None, "", "af_alloy", "bm_lewis"]
MODELS = [None, "", "kokoro", "whisper"]
DIMENSIONS = ["kind", "voice", "model"]
PATHS = ["sql", "copy", "record", "batch"]

# user index -> user_id; time zones are drawn per example (users 0 and 1 always far apart).
USERS = ["u-akl", "u-lax", "u-var", "u-default"]
EXTRA_ZONES = ["UTC", "Asia/Kolkata", "Pacific/Chatham", "Europe/Berlin", "America/St_Johns"]


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class NewOp:
    user: int
    kind: str
    voice: str | None
    model: str | None
    quantity: int
    duration_ms: int | None
    cost_units: int  # cost = cost_units / 10_000
    status: str
    billable: bool
    offset_s: int  # occurred_at = base - offset_s (negative: slightly in the future)
    micros: int
    path: str


@dataclass(frozen=True)
class DupOp:
    pick: int
    path: str
    other_user: bool  # resend the key for another user: still a duplicate (keys are global)
    quantity_bump: int


@dataclass(frozen=True)
class AmendOp:
    pick: int
    quantity_delta: int
    duration_delta: int | None
    cost_delta_units: int
    retry: bool


@dataclass(frozen=True)
class ReverseOp:
    pick: int
    retry: bool


@dataclass(frozen=True)
class MergeOp:
    max_rows: int


@dataclass(frozen=True)
class CheckOp:
    pass


new_ops = st.builds(
    NewOp,
    user=st.integers(0, len(USERS) - 1),
    kind=st.sampled_from(KINDS),
    voice=st.sampled_from(VOICES),
    model=st.sampled_from(MODELS),
    quantity=st.integers(0, 10_000),
    duration_ms=st.none() | st.integers(0, 600_000),
    cost_units=st.integers(0, 50_000),
    status=st.sampled_from(["succeeded", "succeeded", "succeeded", "failed", "cancelled"]),
    billable=st.sampled_from([True, True, True, False]),
    offset_s=st.integers(-20 * 3600, 60 * 86400),
    micros=st.integers(0, 999_999),
    path=st.sampled_from(PATHS),
)
dup_ops = st.builds(
    DupOp,
    pick=st.integers(0, 10_000),
    path=st.sampled_from(PATHS),
    other_user=st.booleans(),
    quantity_bump=st.integers(1, 1000),
)
amend_ops = st.builds(
    AmendOp,
    pick=st.integers(0, 10_000),
    quantity_delta=st.integers(-500, 500),
    duration_delta=st.none() | st.integers(-5000, 5000),
    cost_delta_units=st.integers(-1000, 1000),
    retry=st.booleans(),
)
reverse_ops = st.builds(ReverseOp, pick=st.integers(0, 10_000), retry=st.booleans())
merge_ops = st.builds(MergeOp, max_rows=st.sampled_from([1, 2, 5, 100_000]))
check_ops = st.just(CheckOp())

streams = st.lists(
    st.one_of(new_ops, new_ops, new_ops, new_ops, dup_ops, amend_ops, reverse_ops, merge_ops, check_ops),
    min_size=3,
    max_size=45,
)
user_settings = st.tuples(
    st.sampled_from(EXTRA_ZONES),
    st.integers(1, 28),
    st.integers(1, 28),
    st.integers(1, 28),
)


# --------------------------------------------------------------------------- the replay

INSERT_SQL = """
insert into tally.usage_events
  (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, billable, attributes)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
COPY_SQL = """
copy tally.usage_events
  (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, billable, attributes)
from stdin
"""


@dataclass
class Replay:
    conn: psycopg.Connection
    client: Client
    model: Model
    base: dt.datetime
    chunk_size: int
    sent: list[Ev] = field(default_factory=list)  # every new/dup event in stream order (originals: index)
    batch: list[Ev] = field(default_factory=list)
    reversals: dict[tuple[str, str], str] = field(default_factory=dict)  # (user, original) -> reversal id
    amendments: list[tuple[str, str, str, AmendOp]] = field(default_factory=list)
    merged: int = 0
    seq: int = 0

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}-{self.seq:04d}"

    # ----------------------------------------------------------- writes
    def send(self, ev: Ev, path: str) -> None:
        if path == "batch":
            self.batch.append(ev)
            if len(self.batch) >= 7:
                self.flush()
            return
        expected_new = self.model.offer(ev)
        row = (
            ev.event_id,
            ev.user_id,
            ev.kind,
            ev.occurred_at,
            ev.quantity,
            ev.duration_ms,
            ev.cost,
            ev.status,
            ev.billable,
        )
        if path == "sql":
            cur = self.conn.execute(INSERT_SQL, (*row, json.dumps(ev.attributes)))
            assert cur.rowcount == (1 if expected_new else 0), ev
        elif path == "copy":
            with self.conn.cursor() as cur:
                with cur.copy(COPY_SQL) as cp:
                    cp.write_row((*row, json.dumps(ev.attributes)))
                assert cur.rowcount == (1 if expected_new else 0), ev
        else:
            got = self.client.record(
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
            assert got is expected_new, ev

    def flush(self) -> None:
        if not self.batch:
            return
        expected = sum(self.model.offer(ev) for ev in self.batch)
        got = self.client.record_many(
            [
                UsageEvent(
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
                for ev in self.batch
            ],
            chunk_size=self.chunk_size,
        )
        assert got == expected, self.batch
        self.batch.clear()

    def apply(self, op: Any) -> None:
        if isinstance(op, NewOp):
            attrs: dict[str, Any] = {"session_id": f"s{op.micros % 3}"}
            if op.voice is not None:
                attrs["voice"] = op.voice
            if op.model is not None:
                attrs["model"] = op.model
            ev = Ev(
                self.next_id("ev"),
                USERS[op.user],
                op.kind,
                self.base - dt.timedelta(seconds=op.offset_s, microseconds=op.micros),
                op.quantity,
                op.duration_ms,
                Decimal(op.cost_units) / 10_000,
                op.status,
                op.billable,
                attrs,
            )
            self.sent.append(ev)
            self.send(ev, op.path)
        elif isinstance(op, DupOp):
            if not self.sent:
                return
            first = self.sent[op.pick % len(self.sent)]
            user = first.user_id
            if op.other_user:
                user = USERS[(USERS.index(user) + 1) % len(USERS)]
            # Same key, different payload: whichever reached the database first must win. The key is
            # per user, so the same event_id sent for another user is a new event of that user.
            ev = Ev(
                first.event_id,
                user,
                first.kind,
                first.occurred_at,
                first.quantity + op.quantity_bump,
                first.duration_ms,
                first.cost,
                first.status,
                first.billable,
                dict(first.attributes),
            )
            self.send(ev, op.path)
        elif isinstance(op, AmendOp):
            self.flush()
            if op.retry and self.amendments:
                orig_user, orig, amend_id, prev = self.amendments[op.pick % len(self.amendments)]
                assert (
                    self.client.amend(
                        orig_user,
                        orig,
                        amend_id,
                        quantity_delta=prev.quantity_delta,
                        duration_ms_delta=prev.duration_delta,
                        cost_delta=Decimal(prev.cost_delta_units) / 10_000,
                    )
                    is False
                )
                return
            candidates = self.originals(exclude_reversed=True)
            if not candidates:
                return
            orig = candidates[op.pick % len(candidates)]
            amend_id = self.next_id(f"{orig.event_id}:amend")
            cost_delta = Decimal(op.cost_delta_units) / 10_000
            assert (
                self.client.amend(
                    orig.user_id,
                    orig.event_id,
                    amend_id,
                    quantity_delta=op.quantity_delta,
                    duration_ms_delta=op.duration_delta,
                    cost_delta=cost_delta,
                )
                is True
            )
            assert self.model.offer(
                Ev(
                    amend_id,
                    orig.user_id,
                    orig.kind,
                    orig.occurred_at,
                    op.quantity_delta,
                    op.duration_delta,
                    cost_delta,
                    "succeeded",
                    orig.billable,
                    dict(orig.attributes),
                    orig.event_id,
                )
            )
            self.amendments.append((orig.user_id, orig.event_id, amend_id, op))
        elif isinstance(op, ReverseOp):
            self.flush()
            if op.retry and self.reversals:
                orig_key = sorted(self.reversals)[op.pick % len(self.reversals)]
                assert self.client.reverse(*orig_key, self.reversals[orig_key]) is False
                return
            candidates = self.originals(exclude_reversed=True)
            if not candidates:
                return
            orig = candidates[op.pick % len(candidates)]
            rev_id = self.next_id(f"{orig.event_id}:reverse")
            assert self.client.reverse(orig.user_id, orig.event_id, rev_id) is True
            assert self.model.offer(
                Ev(
                    rev_id,
                    orig.user_id,
                    orig.kind,
                    orig.occurred_at,
                    -orig.quantity,
                    None if orig.duration_ms is None else -orig.duration_ms,
                    -orig.cost,
                    "reversed",
                    orig.billable,
                    dict(orig.attributes),
                    orig.event_id,
                )
            )
            self.reversals[(orig.user_id, orig.event_id)] = rev_id
        elif isinstance(op, MergeOp):
            self.flush()
            n = self.client.merge_pending(op.max_rows)
            assert 0 <= n <= op.max_rows
            self.merged += n
        elif isinstance(op, CheckOp):
            self.flush()
            self.check_all()
        else:  # pragma: no cover
            raise AssertionError(op)

    def originals(self, *, exclude_reversed: bool) -> list[Ev]:
        return [
            e
            for e in self.model.events.values()
            if e.corrects_event_id is None
            and e.status == "succeeded"
            and not (exclude_reversed and (e.user_id, e.event_id) in self.reversals)
        ]

    # ----------------------------------------------------------- checks
    def check_all(self) -> None:
        first_day = (self.base - dt.timedelta(days=62)).date()
        last_day = (self.base + dt.timedelta(days=2)).date()
        for user in USERS:
            for dim in DIMENSIONS:
                check_lifetime(self.client, self.model, user, dim)
                check_daily(self.client, self.model, user, dim, first_day, last_day)
            # A narrow window: only its days, nothing from outside.
            check_daily(
                self.client,
                self.model,
                user,
                "kind",
                (self.base - dt.timedelta(days=6)).date(),
                (self.base - dt.timedelta(days=3)).date(),
            )
            for back in (0, 31, 59):
                check_period(self.client, self.model, user, self.base - dt.timedelta(days=back))
            check_period(self.client, self.model, user, None)


def check_log(conn: psycopg.Connection, model: Model) -> None:
    """The raw log holds exactly the accepted events, each once, with the first payload."""
    rows = conn.execute(
        "select event_id, user_id, kind, quantity, status, corrects_event_id from tally.usage_events"
    ).fetchall()
    got = sorted(rows)
    expected = sorted(
        (e.event_id, e.user_id, e.kind, e.quantity, e.status, e.corrects_event_id) for e in model.events.values()
    )
    assert got == expected


# --------------------------------------------------------------------------- the property


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=streams, zones=user_settings, chunk_size=st.integers(1, 6))
def test_aggregates_match_oracle(
    databases: Any, stream: list[Any], zones: tuple[str, int, int, int], chunk_size: int
) -> None:
    dsn = databases.create()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            client = Client(conn)
            model = Model()
            tz_var, a0, a1, a2 = zones
            # Time zones are set before any event is recorded; u-default keeps the defaults (UTC, day 1).
            for user, tz, anchor in (
                ("u-akl", "Pacific/Auckland", a0),
                ("u-lax", "America/Los_Angeles", a1),
                ("u-var", tz_var, a2),
            ):
                client.set_user_settings(user, time_zone=tz, billing_anchor_day=anchor)
                model.set_user(user, tz, anchor)

            replay = Replay(conn, client, model, dt.datetime.now(UTC), chunk_size)
            for op in stream:
                replay.apply(op)
            replay.flush()

            # Exact before any final merge (whatever partial merges happened) ...
            replay.check_all()
            check_log(conn, model)
            # ... and after everything is merged.
            while n := client.merge_pending():
                replay.merged += n
            assert replay.merged == len(model.events), "every accepted event yields exactly one merged delta"
            replay.check_all()
            assert conn.execute("select count(*) from tally.pending_deltas").fetchone() == (0,)
    finally:
        databases.drop_all()


def test_oracle_model_sanity() -> None:
    """The oracle itself applies the rules (guards against a model bug hiding a pgtally bug)."""
    m = Model()
    m.set_user("u", "Pacific/Auckland", 15)
    t = dt.datetime(2024, 3, 14, 12, 30, tzinfo=UTC)  # 2024-03-15 01:30 in Auckland (NZDT, +13)
    assert m.offer(Ev("a", "u", "tts", t, 100, 2000, Decimal("0.5"), attributes={"voice": "x"}))
    assert not m.offer(Ev("a", "u", "tts", t, 999))
    assert m.offer(Ev("b", "u", "tts", t, 7, None, Decimal("1"), "failed", attributes={"voice": ""}))
    assert m.offer(
        Ev("c", "u", "tts", t, 50, None, Decimal("0.25"), "reversed", corrects_event_id="a", attributes={"voice": "x"})
    )
    assert m.offer(
        Ev("d", "u", "tts", t, 5, 10, Decimal("0"), "succeeded", corrects_event_id="a", attributes={"voice": "x"})
    )
    assert m.lifetime("u", "kind") == {
        "tts": {
            "events": 0,
            "failures": 1,
            "quantity": 155,
            "duration_ms": 2010,
            "cost": Decimal("0.75"),
            "first_at": t,
            "last_at": t,
        }
    }
    assert set(m.lifetime("u", "voice")) == {"x"}
    assert list(m.daily("u", "kind", dt.date(2024, 3, 1), dt.date(2024, 3, 31))) == [(dt.date(2024, 3, 15), "tts")]
    p_start, per = m.period("u", t)
    assert p_start == dt.date(2024, 3, 15)
    assert per == {"tts": {"events": 0, "quantity": 155, "duration_ms": 2010, "cost": Decimal("0.75")}}
    assert m.period("u", t - dt.timedelta(hours=2))[0] == dt.date(2024, 2, 15)
