"""AdminClient and `pgtally admin` against a real database.

A tiny hand-built data set pins exact answers and types (showing every group);
a generated workload (time zones, retries, failures, the paywall funnel) is
compared with a straightforward recomputation in Python from the same events
(the oracle), which hides the groups of fewer than 5 users as the database must.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pgtally.admin import DEFAULT_FUNNEL, WINDOWS
from pgtally.admin_models import (
    ActiveUsers,
    CohortCell,
    FunnelStep,
    LeaderboardEntry,
    Overview,
    PlatformTotal,
    RefreshResult,
    Reliability,
)
from pgtally.cli import main
from pgtally.client import Client
from pgtally.demo.workload import generate_events, user_time_zones
from pgtally.errors import InvalidArgument, UnknownDimension
from pgtally.models import UsageEvent

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)
MIN_USERS = 5  # the default minimum group size


# ------------------------------------------------------------------ exact answers


@pytest.fixture
def small(dsn: str) -> Iterator[Client]:
    with Client.connect(dsn) as client:
        day = dt.datetime(2026, 11, 2, 10, tzinfo=UTC)
        client.record("v1", "u1", "paywall.viewed", occurred_at=day, billable=False)
        client.record("c1", "u1", "paywall.clicked", occurred_at=day + dt.timedelta(minutes=1), billable=False)
        client.record("v2", "u2", "paywall.viewed", occurred_at=day, billable=False)
        client.record(
            "t1",
            "u1",
            "tts",
            300,
            occurred_at=day,
            duration_ms=20000,
            cost="0.003",
            attributes={"voice": "af_alloy", "model": "kokoro"},
        )
        client.record(
            "t2",
            "u2",
            "tts",
            100,
            occurred_at=day,
            duration_ms=8000,
            cost="0.001",
            attributes={"voice": "nova", "model": "openai"},
        )
        client.record(
            "t3",
            "u2",
            "tts",
            100,
            occurred_at=day,
            status="failed",
            error_code="rate_limited",
            attributes={"voice": "nova", "model": "openai"},
        )
        client.record("x1", "u3", "export", 1, occurred_at=day, duration_ms=4000, attributes={"format": "mp3"})
        yield client


def test_refresh_returns_one_typed_row_per_view(small: Client) -> None:
    results = small.admin.refresh()
    assert all(isinstance(r, RefreshResult) for r in results)
    assert [r.view_name for r in results] == [
        "admin_totals_mv",
        "admin_overview_mv",
        "admin_activity_mv",
        "admin_leaderboards_mv",
        "admin_reliability_mv",
        "admin_error_codes_mv",
        "admin_cohorts_mv",
        "admin_funnel_mv",
        "peer_distribution_mv",
        "admin_daily",
    ]
    assert not any(r.skipped for r in results) and all(r.duration_ms >= 0 for r in results)
    fresh = small.admin.freshness()
    assert {f.view_name: f.refreshed_at for f in fresh} == {r.view_name: r.started_at for r in results}


def test_admin_reads_are_typed_and_exact(small: Client) -> None:
    # Three users: show every group (the opt-out) to pin exact answers; the minimum is tested below.
    assert small.admin.set_min_group_size(1) == MIN_USERS
    assert small.admin.overview() is not None and small.admin.overview().users == 0  # type: ignore[union-attr]
    small.admin.refresh()  # merges first
    # Paying users are subscribers to a paid plan now (u1), not users with a cost (u1 and u2).
    small.upsert_plan("pro", tier=1, monthly_price=Decimal(10))
    small.start_subscription("u1", "pro", dt.datetime(2026, 11, 1, tzinfo=UTC))
    o = small.admin.overview()
    assert isinstance(o, Overview)
    assert (o.users, o.events, o.succeeded, o.failures, o.paying_users) == (3, 6, 6, 1, 1)
    assert o.success_rate == Decimal("85.71") and o.cost == Decimal("0.004") and o.refreshed_at is not None

    kinds = small.admin.totals("kind")
    assert all(isinstance(t, PlatformTotal) for t in kinds)
    assert [(t.value, t.events, t.failures, t.users) for t in kinds] == [
        ("paywall.viewed", 2, 0, 2),
        ("tts", 2, 1, 2),
        ("export", 1, 0, 1),
        ("paywall.clicked", 1, 0, 1),
    ]
    tts = next(t for t in kinds if t.value == "tts")
    assert (tts.avg_quantity_per_event, tts.avg_duration_ms, tts.cost_share_pct) == (
        Decimal("200.00"),
        Decimal(14000),
        Decimal(100),
    )
    assert [t.value for t in small.admin.cost_breakdown("model")] == ["kokoro", "openai"]

    board = small.admin.leaderboard("voice", "all", metric="duration_ms")
    assert all(isinstance(e, LeaderboardEntry) for e in board)
    assert [(e.rank, e.value, e.duration_ms) for e in board] == [(1, "af_alloy", 20000), (2, "nova", 8000)]

    trend = small.admin.trend("kind", ["tts"], dt.date(2026, 11, 1), dt.date(2026, 11, 3))
    assert [(p.day.day, p.events, p.failures) for p in trend] == [(1, 0, 0), (2, 2, 1), (3, 0, 0)]
    active = small.admin.active_users(dt.date(2026, 11, 2), dt.date(2026, 11, 8))
    assert all(isinstance(a, ActiveUsers) for a in active)
    assert [(a.dau, a.wau) for a in active] == [(3, 3)] + [(0, 3)] * 6  # Nov 2 is in the 7 days ending Nov 8

    cards = {(c.metric, c.value): c for c in small.admin.week_over_week(dt.date(2026, 11, 8))}
    assert cards[("active_users", "*")].this_week == 3 and cards[("active_users", "*")].trend == "up"
    assert cards[("events", "tts")].this_week == 2 and cards[("events", "tts")].delta_pct is None

    funnel = small.admin.funnel(["paywall.viewed", "paywall.clicked"])
    assert all(isinstance(s, FunnelStep) for s in funnel)
    assert [(s.kind, s.users, s.conversion_pct) for s in funnel] == [
        ("paywall.viewed", 2, Decimal("100.00")),
        ("paywall.clicked", 1, Decimal("50.00")),
    ]

    rel = {(r.kind, r.format): r for r in small.admin.reliability("all")}
    assert isinstance(rel[("tts", "*")], Reliability)
    assert (rel[("tts", "*")].succeeded, rel[("tts", "*")].failed, rel[("tts", "*")].success_rate) == (
        2,
        1,
        Decimal("66.67"),
    )
    assert rel[("export", "mp3")].avg_duration_ms == 4000
    assert [(e.kind, e.error_code, e.failures) for e in small.admin.error_codes("all")] == [("tts", "rate_limited", 1)]

    cohorts = small.admin.cohorts(dt.date(2026, 11, 1), dt.date(2026, 11, 1))
    assert [(c.cohort_month, c.users, c.retention_pct) for c in cohorts] == [
        (dt.date(2026, 11, 1), 3, Decimal("100.0"))
    ]
    assert all(isinstance(c, CohortCell) for c in cohorts)


def test_analysts_see_no_group_smaller_than_the_minimum(
    small: Client, dsn: str, login_role: Callable[[str | None], str]
) -> None:
    """Three users: by default an analyst sees no breakdown row; the owner's opt-out shows them, the analyst's fails."""
    small.admin.refresh()
    analyst = login_role("tally_analyst")
    with Client.connect(psycopg.conninfo.make_conninfo(dsn, user=analyst)) as bi:
        assert bi.admin.min_group_size() == MIN_USERS
        assert bi.admin.overview().users == 3  # type: ignore[union-attr]  # platform-wide: everyone counts
        assert bi.admin.totals("kind") == [] and bi.admin.totals("voice") == []
        assert bi.admin.leaderboard("voice", "all") == [] and bi.admin.error_codes("all") == []
        assert [s.users for s in bi.admin.funnel(["paywall.viewed", "paywall.clicked"])] == [0, 0]
        assert bi.admin.dashboard("all").min_group_size == MIN_USERS
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bi.admin.set_min_group_size(1)
        with pytest.raises(psycopg.errors.InsufficientPrivilege), bi.connection() as conn:
            conn.execute("select * from tally.admin_totals_mv")
        assert small.admin.set_min_group_size(1) == MIN_USERS  # the owner (here: the superuser) opts out
        assert [t.value for t in bi.admin.totals("voice")] == ["af_alloy", "nova"]
        assert bi.admin.min_group_size() == 1
    with pytest.raises(InvalidArgument, match="min_users"):
        small.admin.set_min_group_size(0)


def test_admin_errors_are_mapped(small: Client) -> None:
    with pytest.raises(UnknownDimension):
        small.admin.totals("colour")
    with pytest.raises(InvalidArgument, match="time_window"):
        small.admin.leaderboard("voice", "1y")
    with pytest.raises(InvalidArgument, match="steps"):
        small.admin.funnel([])


# ------------------------------------------------------------------ the oracle

USERS, EVENTS, SEED = 80, 4000, 11


@pytest.fixture
def workload(dsn: str) -> Iterator[tuple[Client, list[UsageEvent], dict[str, str]]]:
    start = NOW - dt.timedelta(days=200)
    events = list(generate_events(USERS, EVENTS, SEED, start, NOW))
    # The workload follows the clock (its days, weekdays and time zones), and at some times of day every error code it
    # draws has enough users to show: one failure with a code of its own makes sure the minimum group size has a code
    # to hide.
    failure = next(e for e in events if e.status == "failed")
    events.append(dataclasses.replace(failure, event_id="failure-of-one-user", error_code="seen_once"))
    zones = user_time_zones(USERS, SEED)
    with Client.connect(dsn) as client:
        for user, zone in zones.items():
            client.set_user_settings(user, time_zone=zone)
        client.record_many(events)
        client.admin.refresh()
        unique = list({e.event_id: e for e in reversed(events)}.values())  # a retry counts once
        yield client, unique, zones


def _utc_day(e: UsageEvent) -> dt.date:
    """Platform figures use UTC days, whatever the user's time zone (the workload's users live in many)."""
    assert e.occurred_at is not None
    return e.occurred_at.astimezone(UTC).date()


def test_totals_leaderboards_and_error_codes_match_the_raw_events(
    workload: tuple[Client, list[UsageEvent], dict[str, str]],
) -> None:
    client, events, _ = workload
    ok = [e for e in events if e.status == "succeeded"]
    expected = {
        k: (
            sum(1 for e in ok if e.kind == k),
            sum(1 for e in events if e.kind == k and e.status == "failed"),
            sum(e.quantity for e in ok if e.kind == k),
            len({e.user_id for e in events if e.kind == k}),
        )
        for k in {e.kind for e in events}
    }
    shown = {k: v for k, v in expected.items() if v[3] >= MIN_USERS}
    assert {t.value: (t.events, t.failures, t.quantity, t.users) for t in client.admin.totals("kind")} == shown

    voice_users: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if "voice" in e.attributes:
            voice_users[e.attributes["voice"]].add(e.user_id)
    voices = Counter(e.attributes["voice"] for e in ok if "voice" in e.attributes)
    board = client.admin.leaderboard("voice", "all", limit=3)
    assert [e.events for e in board] == sorted(
        (n for v, n in voices.items() if len(voice_users[v]) >= MIN_USERS), reverse=True
    )[:3]
    assert all(voices[e.value] == e.events for e in board)

    failed = [e for e in events if e.status == "failed"]
    codes = Counter((e.kind, e.error_code or "") for e in failed)
    code_users = {key: len({e.user_id for e in failed if (e.kind, e.error_code or "") == key}) for key in codes}
    assert {(c.kind, c.error_code): c.failures for c in client.admin.error_codes("all", limit=100)} == {
        key: n for key, n in codes.items() if code_users[key] >= MIN_USERS
    }
    assert any(n < MIN_USERS for n in code_users.values()), "the workload has error codes too rare to show"


def _journeys(
    events: list[UsageEvent], steps: tuple[str, ...], since: dt.datetime | None, until: dt.datetime | None
) -> list[int]:
    """Users per step straight from the raw events: steps 1..k inside [since, until) at non-decreasing times.

    Brute force on purpose (no greedy shortcut): a user reaches step k when some step-k use inside the timeframe
    comes at or after some use of step k-1 that itself ended a valid chain.
    """
    uses: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
    for e in events:
        if (
            e.status == "succeeded"
            and e.corrects_event_id is None
            and e.occurred_at is not None
            and (since is None or e.occurred_at >= since)
            and (until is None or e.occurred_at < until)
        ):
            uses[(e.user_id, e.kind)].append(e.occurred_at)
    counts = []
    # Per user, every time at which a valid chain of steps 1..k can end.
    ends = {u: list(ts) for (u, k), ts in uses.items() if k == steps[0]}
    for step, kind in enumerate(steps):
        if step:
            ends = {u: [t for t in uses.get((u, kind), []) if any(t >= p for p in prev)] for u, prev in ends.items()}
            ends = {u: ts for u, ts in ends.items() if ts}
        counts.append(len(ends))
    return counts


@pytest.mark.date_sensitive  # relative to now: also runs at fixed clocks (tests/test_fixed_clocks.py)
def test_funnel_matches_a_recomputation(workload: tuple[Client, list[UsageEvent], dict[str, str]]) -> None:
    client, events, _ = workload
    last = max(e.occurred_at for e in events if e.occurred_at is not None)
    windows = (
        (None, None),
        (last - dt.timedelta(days=90), None),
        (last - dt.timedelta(days=60), last - dt.timedelta(days=30)),
        (last - dt.timedelta(days=7), None),
        (last - dt.timedelta(days=100, hours=5), last - dt.timedelta(days=40, hours=7)),
    )
    for steps in (
        DEFAULT_FUNNEL,
        ("ocr", "tts", "export"),
        ("tts", "ocr"),
        ("tts", "export"),
        ("paywall.clicked", "paywall.viewed"),
    ):
        for since, until in windows:
            # A step fewer users than the minimum reached reads as reached by none (and so do the later ones).
            counts = _journeys(events, steps, since, until)
            for i, n in enumerate(counts):
                if n < MIN_USERS:
                    counts[i:] = [0] * (len(counts) - i)
                    break
            got = client.admin.funnel(steps, from_at=since, to_at=until)
            assert [s.users for s in got] == counts, (steps, since, until)
            assert [s.drop_off for s in got] == [0] + [a - b for a, b in itertools.pairwise(counts)]
    assert _journeys(events, ("ocr", "tts"), None, None)[-1] >= MIN_USERS, (
        "the workload takes users through each step in order"
    )
    assert _journeys(events, DEFAULT_FUNNEL, None, None)[1] > 0, "and walks some users down the paywall"
    # The windowed funnel is not the first-journey one: most users used tts before the timeframe and again inside it.
    first: dict[tuple[str, str], dt.datetime] = {}
    for e in events:
        if e.status == "succeeded" and e.occurred_at is not None:
            first[(e.user_id, e.kind)] = min(first.get((e.user_id, e.kind), e.occurred_at), e.occurred_at)
    since, until = windows[2]
    assert since is not None and until is not None
    first_timers = {u for (u, k), t in first.items() if k == "tts" and since <= t < until}
    assert _journeys(events, ("tts", "export"), since, until)[0] > len(first_timers) + MIN_USERS, (
        "the workload has users who come back inside a timeframe"
    )


def test_activity_and_cohorts_match_a_recomputation(workload: tuple[Client, list[UsageEvent], dict[str, str]]) -> None:
    client, events, zones = workload
    assert len(set(zones.values())) > 3, "users in several time zones: their local days are not the platform's days"
    days: dict[dt.date, set[str]] = defaultdict(set)
    for e in events:
        days[_utc_day(e)].add(e.user_id)
    to_day = max(days) - dt.timedelta(days=3)
    from_day = to_day - dt.timedelta(days=40)
    got = {a.day: a for a in client.admin.active_users(from_day, to_day)}
    assert len(got) == 41

    def active(d: dt.date, n: int) -> int:
        return len(set().union(*(days.get(d - dt.timedelta(days=i), set()) for i in range(n))))

    for d, a in got.items():
        assert (a.dau, a.wau, a.mau) == (active(d, 1), active(d, 7), active(d, 30)), d

    months: dict[str, set[dt.date]] = defaultdict(set)
    for d, users in days.items():
        for u in users:
            months[u].add(d.replace(day=1))
    cells = Counter((min(ms), m) for ms in months.values() for m in ms)
    got_cells = {
        (c.cohort_month, c.active_month): c.users
        for c in client.admin.cohorts(dt.date(2000, 1, 1), dt.date(2100, 1, 1))
    }
    assert got_cells == {cell: n for cell, n in cells.items() if n >= MIN_USERS}
    assert any(n < MIN_USERS for n in cells.values()), "the workload has cells too small to show"


def test_paying_users_match_the_subscriptions(workload: tuple[Client, list[UsageEvent], dict[str, str]]) -> None:
    """Paying users per UTC day, 7 and 30 days, per week and now, against a recomputation from generated subscriptions."""
    client, events, _ = workload
    rng = __import__("random").Random(SEED)
    client.upsert_plan("free", tier=0, monthly_price=Decimal(0), is_default=True)
    client.upsert_plan("pro", tier=1, monthly_price=Decimal(10))
    last = max(e.occurred_at for e in events if e.occurred_at is not None)
    subs: list[tuple[str, str, dt.datetime, dt.datetime | None]] = []  # user, plan, start, end (None = running)
    for u in sorted({e.user_id for e in events})[:40]:
        at = last - dt.timedelta(days=rng.uniform(5, 90))
        for _ in range(rng.randint(1, 3)):
            if at >= last:
                break
            plan = rng.choice(["pro", "pro", "free"])
            client.start_subscription(u, plan, at)
            if subs and subs[-1][0] == u and subs[-1][3] is None:
                subs[-1] = (*subs[-1][:3], at)
            subs.append((u, plan, at, None))
            at += dt.timedelta(hours=rng.uniform(1, 24 * 20))
        if rng.random() < 0.5 and at < last:
            client.end_subscription(u, at)
            subs[-1] = (*subs[-1][:3], at)

    def paying(lo: dt.datetime, hi: dt.datetime) -> int:
        return len({u for u, plan, start, end in subs if plan == "pro" and start < hi and (end is None or end > lo)})

    def day_start(d: dt.date) -> dt.datetime:
        return dt.datetime(d.year, d.month, d.day, tzinfo=UTC)

    to_day = last.date() - dt.timedelta(days=2)
    rows = client.admin.active_users(to_day - dt.timedelta(days=40), to_day)
    assert len(rows) == 41
    for a in rows:
        hi = day_start(a.day + dt.timedelta(days=1))
        assert (a.paying_users, a.paying_users_7d, a.paying_users_30d) == (
            paying(day_start(a.day), hi),
            paying(hi - dt.timedelta(days=7), hi),
            paying(hi - dt.timedelta(days=30), hi),
        ), a.day
    assert any(a.paying_users_30d > a.paying_users > 0 for a in rows), "subscriptions start and end in the range"
    cards = {c.metric: c for c in client.admin.week_over_week(to_day) if c.value == "*"}
    week_end = day_start(to_day + dt.timedelta(days=1))
    assert (cards["paying_users"].this_week, cards["paying_users"].last_week) == (
        paying(week_end - dt.timedelta(days=7), week_end),
        paying(week_end - dt.timedelta(days=14), week_end - dt.timedelta(days=7)),
    )
    # The overview's paying users are those of its window: the last 24 hours, or all time, ending at the refresh.
    day = client.admin.overview("24h")
    assert day is not None and day.window_start is not None and day.window_end is not None
    assert day.paying_users == paying(day.window_start, day.window_end)
    ever = client.admin.overview()
    assert ever is not None and ever.window_start is None and ever.window_end == day.window_end
    assert ever.paying_users == paying(dt.datetime.min.replace(tzinfo=UTC), day.window_end) > day.paying_users


def test_reliability_percentiles_are_within_the_bucket_error(
    workload: tuple[Client, list[UsageEvent], dict[str, str]],
) -> None:
    client, events, _ = workload
    for r in client.admin.reliability("all"):
        if r.format != "*":
            continue
        durations = sorted(
            e.duration_ms for e in events if e.kind == r.kind and e.status == "succeeded" and e.duration_ms is not None
        )
        failed = sum(1 for e in events if e.kind == r.kind and e.status == "failed")
        assert (r.succeeded, r.failed) == (
            sum(1 for e in events if e.kind == r.kind and e.status == "succeeded"),
            failed,
        )
        if not durations:
            assert r.p95_duration_ms is None
            continue
        assert r.avg_duration_ms == round(Decimal(sum(durations)) / len(durations))
        for q, got in ((0.5, r.p50_duration_ms), (0.95, r.p95_duration_ms), (0.99, r.p99_duration_ms)):
            true = durations[math.ceil(q * len(durations)) - 1]
            assert got is not None and abs(got - true) <= 0.045 * true + 1, (r.kind, q, got, true)


# ------------------------------------------------- date ranges, plans and weeks

P_START, P_END = dt.datetime(2026, 5, 1, tzinfo=UTC), dt.datetime(2026, 8, 1, tzinfo=UTC)
P_USERS, P_EVENTS, P_SEED = 60, 3000, 7
#: Subscriptions (user index, plan, start, end): users 1-20 on pro (1-5 move to team on Jun 20, 6-8 stop on Jul 5 and
#: fall back to the default free plan), users 21-23 on tiny (a plan of three users); everyone else on free.
_MOVE, _STOP = dt.datetime(2026, 6, 20, 10, tzinfo=UTC), dt.datetime(2026, 7, 5, tzinfo=UTC)
_BEFORE = P_START - dt.timedelta(days=10)


def _subscriptions(users: list[str]) -> list[tuple[str, str, dt.datetime, dt.datetime | None]]:
    subs: list[tuple[str, str, dt.datetime, dt.datetime | None]] = []
    for i, u in enumerate(users, 1):
        if i <= 5:
            subs += [(u, "pro", _BEFORE, _MOVE), (u, "team", _MOVE, None)]
        elif i <= 8:
            subs.append((u, "pro", _BEFORE, _STOP))
        elif i <= 20:
            subs.append((u, "pro", _BEFORE, None))
        elif i <= 23:
            subs.append((u, "tiny", _BEFORE, None))
    return subs


class _Log:
    """The generated events with the plan in force at each, recomputed from the subscriptions (not read back)."""

    def __init__(self, events: list[UsageEvent], subs: list[tuple[str, str, dt.datetime, dt.datetime | None]]) -> None:
        self.events = events
        self.subs = subs

    def plan_of(self, e: UsageEvent) -> str:
        assert e.occurred_at is not None
        for user, plan, start, end in self.subs:
            if user == e.user_id and start <= e.occurred_at and (end is None or e.occurred_at < end):
                return plan
        return "free"  # the default plan

    def select(self, lo: dt.datetime, hi: dt.datetime, plan: str | None) -> list[UsageEvent]:
        return [
            e
            for e in self.events
            if e.occurred_at is not None and lo <= e.occurred_at < hi and (plan is None or self.plan_of(e) == plan)
        ]


@pytest.fixture
def planned(dsn: str) -> Iterator[tuple[Client, _Log]]:
    events = list(generate_events(P_USERS, P_EVENTS, P_SEED, P_START, P_END))
    unique = list({e.event_id: e for e in reversed(events)}.values())  # a retry counts once
    users = sorted({e.user_id for e in unique})
    subs = _subscriptions(users)
    with Client.connect(dsn) as client:
        client.upsert_plan("free", tier=0, monthly_price=Decimal(0), is_default=True)
        client.upsert_plan("pro", tier=1, monthly_price=Decimal(10))
        client.upsert_plan("team", tier=2, monthly_price=Decimal(30))
        client.upsert_plan("tiny", tier=1, monthly_price=Decimal(5))
        # Subscriptions first: an event keeps the plan in force when it occurred. Starting team ends pro.
        for user, plan, start, end in subs:
            client.start_subscription(user, plan, start)
            if end == _STOP:
                client.end_subscription(user, end)
        client.record_many(events)
        client.admin.refresh()
        yield client, _Log(unique, subs)


def _day(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=UTC)


RANGES = (
    (dt.date(2026, 5, 1), dt.date(2026, 8, 1)),
    (dt.date(2026, 6, 10), dt.date(2026, 6, 24)),
    (dt.date(2026, 7, 1), dt.date(2026, 7, 2)),
)
PLANS = (None, "free", "pro", "team", "tiny")


def test_date_ranges_and_plans_match_the_raw_events(planned: tuple[Client, _Log]) -> None:
    """Every windowed figure of [from_day, to_day) and a plan: only the events of those days and that plan count."""
    client, log = planned
    assert {log.plan_of(e) for e in log.events} == {"free", "pro", "team", "tiny"}
    for (from_day, to_day), plan in itertools.product(RANGES, PLANS):
        sel = log.select(_day(from_day), _day(to_day), plan)
        where = (from_day, to_day, plan)
        ok = [e for e in sel if e.status == "succeeded"]
        failed = [e for e in sel if e.status == "failed"]
        users = {e.user_id for e in ok + failed}
        o = client.admin.overview(from_day=from_day, to_day=to_day, plan=plan)
        if plan is not None and len(users) < MIN_USERS:
            assert o is None, where  # a plan's figures are a group: hidden when too small
        else:
            assert o is not None, where
            assert (o.users, o.events, o.succeeded, o.failures) == (len(users), len(ok), len(ok), len(failed)), where
            assert (o.window_start, o.window_end) == (_day(from_day), _day(to_day))
        kinds = {
            k: (
                sum(1 for e in ok if e.kind == k),
                sum(1 for e in failed if e.kind == k),
                sum(e.quantity for e in ok if e.kind == k),
                len({e.user_id for e in ok + failed if e.kind == k}),
            )
            for k in {e.kind for e in sel}
        }
        got = client.admin.totals("kind", from_day=from_day, to_day=to_day, plan=plan)
        assert {t.value: (t.events, t.failures, t.quantity, t.users) for t in got} == {
            k: v for k, v in kinds.items() if v[3] >= MIN_USERS
        }, where
        voices: dict[str, set[str]] = defaultdict(set)
        for e in ok + failed:
            if "voice" in e.attributes:
                voices[e.attributes["voice"]].add(e.user_id)
        board = client.admin.leaderboard(
            "voice", metric="users", limit=1000, from_day=from_day, to_day=to_day, plan=plan
        )
        assert {b.value: b.users for b in board} == {v: len(u) for v, u in voices.items() if len(u) >= MIN_USERS}, where
        rel = {
            r.kind: (r.succeeded, r.failed)
            for r in client.admin.reliability(None, from_day=from_day, to_day=to_day, plan=plan)
            if r.format == "*"
        }
        assert rel == {k: v[:2] for k, v in kinds.items() if v[3] >= MIN_USERS and (v[0] or v[1])}, where
        codes = Counter((e.kind, e.error_code or "") for e in failed)
        code_users = {key: len({e.user_id for e in failed if (e.kind, e.error_code or "") == key}) for key in codes}
        got_codes = client.admin.error_codes(None, 100, from_day=from_day, to_day=to_day, plan=plan)
        assert {(c.kind, c.error_code): c.failures for c in got_codes} == {
            key: n for key, n in codes.items() if code_users[key] >= MIN_USERS
        }, where
    # The named window "all" of the views is the same as the whole period, plan by plan.
    for plan in PLANS:
        a, r = (
            client.admin.totals("kind", "all", plan=plan),
            client.admin.totals("kind", from_day=P_START.date(), to_day=P_END.date(), plan=plan),
        )
        assert [(t.value, t.events, t.users) for t in a] == [(t.value, t.events, t.users) for t in r], plan
    assert client.admin.overview(plan="tiny") is None and client.admin.totals("kind", plan="tiny") == []
    team = {e.user_id for e in log.events if log.plan_of(e) == "team" and e.status in ("succeeded", "failed")}
    assert (client.admin.overview(plan="team") is None) == (len(team) < MIN_USERS)
    pro, every = client.admin.overview(plan="pro"), client.admin.overview()
    assert pro is not None and every is not None and 0 < pro.events < every.events, "the plan filter filters"
    with pytest.raises(InvalidArgument, match="plan"):
        client.admin.totals("kind", plan="platinum")
    with pytest.raises(InvalidArgument, match="to_day"):
        client.admin.overview(from_day=dt.date(2026, 6, 2), to_day=dt.date(2026, 6, 1))


def _wow_oracle(
    log: _Log, as_of: dt.date, weeks: int, plan: str | None, k: int
) -> dict[tuple[str, str], tuple[Any, Any]]:
    """Week-over-week cards straight from the events: (metric, value) -> (this, last)."""
    n = 7 * weeks
    this = (_day(as_of - dt.timedelta(days=n - 1)), _day(as_of + dt.timedelta(days=1)))
    last = (_day(as_of - dt.timedelta(days=2 * n - 1)), this[0])
    first_day: dict[str, dt.date] = {}
    for e in log.select(P_START - dt.timedelta(days=365), P_END, plan):
        if e.status in ("succeeded", "failed"):
            d = _utc_day(e)
            first_day[e.user_id] = min(first_day.get(e.user_id, d), d)
    cards: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [None, None])

    def rate(ok: int, bad: int) -> Decimal | None:
        return None if ok + bad == 0 else round(Decimal(100) * ok / (ok + bad), 2)

    for side, (lo, hi) in enumerate((this, last)):
        sel = [e for e in log.select(lo, hi, plan) if e.status in ("succeeded", "failed")]
        ok = [e for e in sel if e.status == "succeeded"]
        active = {e.user_id for e in sel}
        shown = plan is None or len(active) >= k
        new = sum(1 for d in first_day.values() if lo.date() <= d < hi.date())
        cards[("events", "*")][side] = len(ok) if shown else 0
        cards[("active_users", "*")][side] = len(active) if shown else 0
        cards[("new_users", "*")][side] = new if shown and (plan is None or new >= k) else 0
        cards[("succeeded", "*")][side] = len(ok) if shown else 0
        cards[("failures", "*")][side] = len(sel) - len(ok) if shown else 0
        cards[("success_rate", "*")][side] = rate(len(ok), len(sel) - len(ok)) if shown else None
        # Per kind: the days on which at least k users of the kind (and plan) were active.
        per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        by_day: dict[tuple[str, dt.date], set[str]] = defaultdict(set)
        for e in sel:
            by_day[(e.kind, _utc_day(e))].add(e.user_id)
        for e in sel:
            if len(by_day[(e.kind, _utc_day(e))]) >= k:
                per[e.kind][0 if e.status == "succeeded" else 1] += 1
        for kind, (good, bad) in per.items():
            cards[("success_rate", kind)][side] = rate(good, bad)
            cards[("events", kind)][side] = good
    # A kind shown on one side only: the other side had no such day (0 events, no rate).
    return {key: (v[0], v[1]) if key[0] != "events" else (v[0] or 0, v[1] or 0) for key, v in cards.items()}


def test_week_over_week_of_1_2_and_4_weeks_matches_the_raw_events(planned: tuple[Client, _Log]) -> None:
    """Complete windows of 1, 2 and 4 weeks, with the success rate per kind, for every plan and minimum group size."""
    client, log = planned
    as_of = dt.date(2026, 7, 15)
    checked = 0
    for k in (MIN_USERS, 1):
        client.admin.set_min_group_size(k)
        for weeks, plan in itertools.product((1, 2, 4), (None, "pro", "team", "tiny")):
            cards = client.admin.week_over_week(as_of, weeks=weeks, plan=plan)
            assert {(c.week_start, c.week_end, c.previous_start, c.previous_end) for c in cards} == {
                (
                    as_of - dt.timedelta(days=7 * weeks - 1),
                    as_of,
                    as_of - dt.timedelta(days=14 * weeks - 1),
                    as_of - dt.timedelta(days=7 * weeks),
                )
            }
            got = {(c.metric, c.value): (c.this_week, c.last_week) for c in cards}
            for key, (this, last) in _wow_oracle(log, as_of, weeks, plan, k).items():
                if key[1] != "*" and (this, last) in ((0, 0), (None, None)) and key not in got:
                    continue  # a kind with no day shown in either window has no card
                assert got[key] == (this, last), (key, weeks, plan, k)
                checked += 1
            if plan == "tiny" and k == MIN_USERS:
                assert got[("events", "*")] == (0, 0), "three users: their plan reads as unused"
    assert checked > 150
    assert any(
        c.metric == "success_rate" and c.value == "export" and c.this_week is not None
        for c in client.admin.week_over_week(as_of, weeks=4)
    ), "the export success rate per kind is among the cards"


def test_dashboard_funnel_is_the_window_as_of_the_refresh(
    workload: tuple[Client, list[UsageEvent], dict[str, str]], conn: psycopg.Connection
) -> None:
    """A named window's funnel (what the dashboard shows) = the exact funnel over the window's instants."""
    client, _, _ = workload
    declared = [r[0] for r in conn.execute("select steps from tally.dashboard_funnels").fetchall()]
    assert declared == [list(DEFAULT_FUNNEL)], "the paywall funnel is declared at install"
    for steps in (DEFAULT_FUNNEL, ("tts", "export")):  # precomputed by the refresh, and computed at call time
        for window in WINDOWS:
            overview = client.admin.overview(window)
            assert overview is not None
            exact = client.admin.funnel(steps, overview.window_start, overview.window_end)
            got = client.admin.funnel(steps, window=window)
            assert [(s.kind, s.users, s.drop_off) for s in got] == [(s.kind, s.users, s.drop_off) for s in exact]
    assert client.admin.funnel(window="all")[0].users > 0, "the workload shows users the paywall"
    assert client.admin.funnel(("tts", "export"), window="all")[1].users > 0, "and takes them through steps in order"
    board = client.admin.dashboard("30d")
    assert board.funnel == client.admin.funnel(window="30d")
    with pytest.raises(ValueError, match="either window or from_at/to_at"):
        client.admin.funnel(from_at=NOW, window="7d")


# ------------------------------------------------------------------ the CLI


def test_pgtally_admin_json_round_trips(workload: tuple[Client, list[UsageEvent], dict[str, str]], dsn: str) -> None:
    client, _, _ = workload
    res = CliRunner().invoke(main, ["admin", "--dsn", dsn, "--json", "--window", "all", "-d", "voice"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert set(data) >= {
        "overview",
        "totals_by_kind",
        "leaderboards",
        "trend",
        "active_users",
        "week_over_week",
        "funnel",
        "reliability",
        "error_codes",
        "cohorts",
        "freshness",
        "time_window",
    }
    assert data["overview"]["users"] == client.admin.overview().users  # type: ignore[union-attr]
    assert [t["value"] for t in data["totals_by_kind"]] == [t.value for t in client.admin.totals("kind")]
    assert [e["value"] for e in data["leaderboards"]["voice"]] == [
        e.value for e in client.admin.leaderboard("voice", "all")
    ]
    assert [s["users"] for s in data["funnel"]] == [s.users for s in client.admin.funnel()]
    assert all(f["refreshed_at"] for f in data["freshness"])
    assert data["min_group_size"] == MIN_USERS
    assert Decimal(data["overview"]["cost"]) == client.admin.overview().cost  # type: ignore[union-attr]


def test_pgtally_admin_prints_a_dashboard(workload: tuple[Client, list[UsageEvent], dict[str, str]], dsn: str) -> None:
    res = CliRunner().invoke(main, ["admin", "--dsn", dsn, "--window", "30d"])
    assert res.exit_code == 0, res.output
    for title in (
        "Platform",
        "Totals by kind",
        "Top voice (30d)",
        "Trends",
        "DAU",
        "Week over week",
        "Funnel (30d)",
        "Reliability (30d)",
        "Top error codes",
        "Cohort retention",
    ):
        assert title in res.output, title


def test_pgtally_admin_for_a_range_of_days_a_plan_and_weeks(planned: tuple[Client, _Log], dsn: str) -> None:
    client, _ = planned
    client.admin.set_min_group_size(1)  # a few users a day per kind: show every group to see the cards per kind
    args = ["admin", "--dsn", dsn, "--from", "2026-05-01", "--to", "2026-08-01", "--plan", "pro", "--weeks", "2"]
    res = CliRunner().invoke(main, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    expected = client.admin.overview(from_day=dt.date(2026, 5, 1), to_day=dt.date(2026, 8, 1), plan="pro")
    assert expected is not None and data["overview"]["users"] == expected.users
    assert (data["time_window"], data["plan"], data["weeks"]) == (None, "pro", 2)
    assert (data["window_start"][:19], data["window_end"][:19]) == ("2026-05-01 00:00:00", "2026-08-01 00:00:00")
    assert {(c["week_start"], c["previous_start"]) for c in data["week_over_week"]} == {
        (str(c.week_start), str(c.previous_start))
        for c in client.admin.week_over_week(dt.date(2026, 7, 31), weeks=2, plan="pro")
    }
    assert any(c["metric"] == "success_rate" and c["value"] != "*" for c in data["week_over_week"])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    for label in ("UTC days 2026-05-01 to 2026-07-31", "plan: pro", "Platform (UTC days", "2 weeks over"):
        assert label in res.output, label


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-06-10"], "--from and --to go together"),
        (["--from", "2026-06-10", "--to", "2026-06-24", "--window", "7d"], "either --window or --from/--to"),
        (["--plan", "platinum"], "plan 'platinum' is not a plan"),
        (["--from", "2026-06-24", "--to", "2026-06-10"], "to_day (2026-06-10) must be after from_day"),
    ],
)
def test_pgtally_admin_input_errors(dsn: str, args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, ["admin", "--dsn", dsn, *args])
    assert res.exit_code == 2, res.output
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_pgtally_refresh(dsn: str, conn: psycopg.Connection) -> None:
    conn.execute("select tally.record_usage('e1', 'u1', 'tts', 5)")
    res = CliRunner().invoke(main, ["refresh", "--dsn", dsn, "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 10 and {r["status"] for r in rows} == {"refreshed"}
    assert conn.execute("select users from tally.admin_overview()").fetchone() == (1,), "refresh merged first"
    res = CliRunner().invoke(main, ["refresh", "--dsn", dsn])
    assert res.exit_code == 0 and "admin_cohorts_mv" in res.output and "total" in res.output
    res = CliRunner().invoke(main, ["refresh", "--dsn", dsn, "--schedule", "5 minutes"])
    assert res.exit_code != 0 and "*/5 * * * *" in res.output and "pgtally refresh" in res.output
