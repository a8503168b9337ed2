"""The platform's daily totals (tally.admin_daily) are re-aggregated by the refresh only for the UTC days that changed.

Property: whatever happens between refreshes (events on any day, late ones included, failures, reversals, merges
of any size or none, a kind's unit changed, a user erased), after every refresh the table equals a full
re-aggregation of the per-user rows and the pending deltas (tally._admin_daily_rows(NULL), the query the
materialized view ran before), and it matches an independent count of the succeeded events per day and kind
from the events the test recorded.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtally.client import Client

UTC = dt.timezone.utc
BASE = dt.datetime(2024, 2, 26, 12, tzinfo=UTC)  # six UTC days through 29 February and 1 March 2024
USERS = ("d-1", "d-2", "d-3")
KINDS = ("tts", "ocr", "export")

EXACT = (
    "select (select count(*) from (select * from tally.admin_daily except select * from tally._admin_daily_rows(null)) a)"
    " + (select count(*) from (select * from tally._admin_daily_rows(null) except select * from tally.admin_daily) b)"
)


@dataclass(frozen=True)
class Ev:
    user: int
    kind: int
    day: int
    hour: int
    quantity: int
    failed: bool


@dataclass(frozen=True)
class Reverse:
    pick: int


@dataclass(frozen=True)
class Merge:
    max_rows: int


@dataclass(frozen=True)
class Refresh:
    pass


@dataclass(frozen=True)
class Unit:
    kind: int
    unit: str


@dataclass(frozen=True)
class Forget:
    user: int


events = st.builds(
    Ev,
    user=st.integers(0, len(USERS) - 1),
    kind=st.integers(0, len(KINDS) - 1),
    day=st.integers(0, 5),
    hour=st.integers(0, 23),
    quantity=st.integers(0, 300),
    failed=st.booleans(),
)
ops = st.lists(
    st.one_of(
        events,
        events,
        events,
        st.builds(Reverse, pick=st.integers(0, 100)),
        st.builds(Merge, max_rows=st.sampled_from([1, 2, 100_000])),
        st.just(Refresh()),
        st.just(Refresh()),
        st.builds(Unit, kind=st.integers(0, len(KINDS) - 1), unit=st.sampled_from(["characters", "pages", "files"])),
        st.builds(Forget, user=st.integers(0, len(USERS) - 1)),
    ),
    min_size=1,
    max_size=30,
)


def _succeeded_per_day_and_kind(conn: psycopg.Connection) -> dict[tuple[dt.date, str], int]:
    rows = conn.execute(
        "select day, value, succeeded from tally.admin_daily where dimension = 'kind' and plan = '*' and succeeded <> 0"
    ).fetchall()
    return {(day, kind): int(n) for day, kind, n in rows}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=ops)
def test_every_refresh_leaves_the_daily_totals_equal_to_a_full_re_aggregation(
    databases: Any, stream: list[Any]
) -> None:
    dsn = databases.create()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("set jit = off")
            c = Client(conn)
            succeeded: Counter[tuple[dt.date, str]] = Counter()  # the independent count (erasure keeps usage)
            originals: list[tuple[str, str, dt.date, str]] = []
            for n, op in enumerate(stream):
                if isinstance(op, Ev):
                    at = BASE + dt.timedelta(days=op.day, hours=op.hour)
                    user, kind = USERS[op.user], KINDS[op.kind]
                    status = "failed" if op.failed else "succeeded"
                    # One voice for every kind: its quantity per day adds kinds up only while their units agree.
                    c.record(f"e{n}", user, kind, op.quantity, occurred_at=at, status=status,
                             attributes={"voice": "v1"})  # fmt: skip
                    if not op.failed:
                        succeeded[(at.date(), kind)] += 1
                        originals.append((user, f"e{n}", at.date(), kind))
                elif isinstance(op, Reverse):
                    if originals:
                        user, event_id, _, _ = originals.pop(op.pick % len(originals))
                        # A reversal nets the events, not the attempts: the succeeded count stays.
                        assert c.reverse(user, event_id, f"{event_id}-rev")
                elif isinstance(op, Merge):
                    c.merge_pending(op.max_rows)
                elif isinstance(op, Unit):
                    conn.execute("select tally.declare_kind(%s, %s)", (KINDS[op.kind], op.unit))
                elif isinstance(op, Forget):
                    conn.execute("select tally.forget_user(%s)", (USERS[op.user],))
                    originals = [o for o in originals if o[0] != USERS[op.user]]
                else:
                    c.admin.refresh(merge_first=False)
                    assert conn.execute(EXACT).fetchone() == (0,), f"after operation {n}"
                    assert _succeeded_per_day_and_kind(conn) == dict(succeeded)
            c.admin.refresh(merge_first=False)
            assert conn.execute(EXACT).fetchone() == (0,), "deltas pending"
            assert _succeeded_per_day_and_kind(conn) == dict(succeeded)
            while c.merge_pending():
                pass
            c.admin.refresh(merge_first=False)
            assert conn.execute(EXACT).fetchone() == (0,), "all merged"
            assert _succeeded_per_day_and_kind(conn) == dict(succeeded)
            assert conn.execute("select count(*) from tally.admin_daily_stale").fetchone() == (0,), (
                "nothing pending, nothing changed since: no day left to re-aggregate"
            )
            # Then only units change (no row of any day does): every kind counts characters, then each its own.
            for units in (("characters",) * 3, ("characters", "pages", "files")):
                for kind, unit in zip(KINDS, units):
                    conn.execute("select tally.declare_kind(%s, %s)", (kind, unit))
                c.admin.refresh(merge_first=False)
                assert conn.execute(EXACT).fetchone() == (0,), f"units {units}"
    finally:
        databases.drop_all()
