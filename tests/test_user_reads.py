"""The user-facing analytics through the Python client: typed results on a hand-built data set (before and after
a merge), plans and subscriptions, errors, and CSV export of a million rows in constant client memory."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import resource
import tracemalloc
from decimal import Decimal

import psycopg
import pytest

from pgtally import Client, InvalidArgument, QuotaExceeded, UnknownDimension
from pgtally.user_models import (
    CalendarDay,
    Comparison,
    DayAnomaly,
    EngagementProfile,
    HistoryBucket,
    HourOfWeek,
    Insight,
    MonthlySummary,
    Peak,
    PeerPercentile,
    QuotaForecast,
    RecommendedPlan,
    SubscriptionSummary,
    SummaryCard,
    WeekdayUsage,
)

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # a Saturday


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def client(conn: psycopg.Connection) -> Client:
    return Client(conn)


@pytest.fixture(params=[False, True], ids=["pending", "merged"])
def dataset(request: pytest.FixtureRequest, client: Client) -> Client:
    """u: Berlin user on the free plan; tts with two voices and sessions, ocr pages, last month's usage."""
    c = client
    c.upsert_plan("free", tier=0, monthly_price=0, limits={"tts": 10_000, "ocr": 20}, is_default=True)
    c.upsert_plan("pro", tier=1, monthly_price="9.99", limits={"tts": 100_000})
    c.set_user_settings("u", time_zone="Europe/Berlin")
    voice = {"voice": "alloy", "model": "openai"}
    c.record(
        "t1",
        "u",
        "tts",
        3000,
        occurred_at=at(2026, 11, 19, 18, 0),
        duration_ms=2_400_000,
        cost="0.03",
        attributes={**voice, "session_id": "s1"},
    )
    c.record(
        "t2",
        "u",
        "tts",
        1000,
        occurred_at=at(2026, 11, 19, 18, 40),
        duration_ms=600_000,
        cost="0.01",
        attributes={**voice, "session_id": "s1"},
    )
    c.record(
        "t3",
        "u",
        "tts",
        2500,
        occurred_at=at(2026, 11, 20, 23, 30),
        duration_ms=3_600_000,  # 00:30 on Nov 21 in Berlin
        cost="0.025",
        attributes={"voice": "af_bella", "model": "kokoro", "session_id": "s2"},
    )
    c.record(
        "t4",
        "u",
        "tts",
        500,
        occurred_at=at(2026, 10, 20, 10, 0),
        duration_ms=300_000,
        cost="0.005",
        attributes={"voice": "af_bella", "model": "kokoro"},
    )
    c.record("o1", "u", "ocr", 12, occurred_at=at(2026, 11, 2, 10, 0), cost="0.012")
    c.record("f1", "u", "tts", 700, occurred_at=at(2026, 11, 20, 10, 0), status="failed", attributes=voice)
    if request.param:
        assert c.merge_pending() == 6
    return c


def test_summary_card(dataset: Client) -> None:
    card = dataset.summary_card("u", top_n=1, at=NOW)
    assert isinstance(card, SummaryCard)
    # 7000 characters and 12 pages add up to no number: the total has no quantity and no unit.
    assert (card.total.events, card.total.quantity, card.total.unit, card.total.cost) == (
        5,
        None,
        None,
        Decimal("0.082"),
    )
    assert [(k.value, k.quantity, k.unit, k.display_name) for k in card.kinds] == [
        ("tts", 7000, "characters", "Text to speech"),
        ("ocr", 12, "pages", "OCR"),
    ]
    # Listening time counts the audio kinds only; OCR's duration is unknown (none recorded), not 0.
    assert card.total.duration_ms == sum(k.duration_ms or 0 for k in card.kinds if k.value == "tts")
    assert [k.duration_ms for k in card.kinds if k.value == "ocr"] == [None]
    assert [(v.value, v.duration_ms, v.duration_text) for v in card.voices] == [("af_bella", 3_900_000, "1 h 05 min")]
    assert [m.value for m in card.models] == ["kokoro"]
    assert (card.plan, card.period_start, card.period_end) == ("free", dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    assert [(p.kind, p.quantity, p.quota, p.utilization_pct) for p in card.period] == [
        ("ocr", 12, 20, Decimal("60.0")),
        ("tts", 6500, 10_000, Decimal("65.0")),
    ]


def test_engagement_profile(dataset: Client) -> None:
    p = dataset.engagement_profile("u", at=NOW)
    assert isinstance(p, EngagementProfile)
    # Local active days: Oct 20, Nov 2, Nov 19, Nov 21 (t3 is 00:30 in Berlin); Nov 20 has only a failure.
    assert (p.time_zone, p.days_active, p.current_streak, p.current_streak_from) == (
        "Europe/Berlin",
        4,
        1,
        dt.date(2026, 11, 21),
    )
    assert (p.longest_streak, p.longest_streak_from, p.longest_streak_to) == (
        1,
        dt.date(2026, 11, 21),
        dt.date(2026, 11, 21),
    )
    # s1: 18:00 .. 18:40 + 10 min = 50 min; s2: one block of 1 h.
    assert (p.sessions, p.total_session_ms, p.avg_session_ms, p.longest_session_ms) == (
        2,
        6_600_000,
        3_300_000,
        3_600_000,
    )
    assert p.first_active_at == at(2026, 10, 20, 10, 0) and p.last_active_at == at(2026, 11, 20, 23, 30)
    assert p.avg_session_text == "55 min 00 s"


def test_history_comparison_and_peak(dataset: Client) -> None:
    days = dataset.usage_history("u", "7d", "day", at=NOW)
    assert all(isinstance(b, HistoryBucket) for b in days)
    assert [(b.bucket_start.day, b.quantity, b.failures) for b in days] == [
        (15, 0, 0),
        (16, 0, 0),
        (17, 0, 0),
        (18, 0, 0),
        (19, 4000, 0),
        (20, 0, 1),
        (21, 2500, 0),
    ]
    stacked = dataset.usage_history("u", "3m", "month", dimension="voice", at=NOW)
    assert [(b.bucket_start.month, b.value, b.quantity) for b in stacked] == [
        (9, "af_bella", 0),
        (9, "alloy", 0),
        (10, "af_bella", 500),
        (10, "alloy", 0),
        (11, "af_bella", 2500),
        (11, "alloy", 4000),
    ]
    custom = dataset.usage_history(
        "u", from_day=dt.date(2026, 11, 16), to_day=dt.date(2026, 11, 29), bucket="week", at=NOW
    )
    assert [(b.bucket_start, b.bucket_end, b.events) for b in custom] == [
        (dt.date(2026, 11, 16), dt.date(2026, 11, 23), 3),
        (dt.date(2026, 11, 23), dt.date(2026, 11, 30), 0),
    ]

    month = dataset.compare_usage("u", "month", kind="tts", at=NOW)
    assert month == [
        Comparison(
            "month",
            dt.date(2026, 11, 1),
            dt.date(2026, 11, 22),
            dt.date(2026, 10, 1),
            dt.date(2026, 10, 22),
            Decimal(6500),
            Decimal(500),
            Decimal(6000),
            Decimal("1200.0"),
            "up",
        )
    ]
    assert [c.comparison for c in dataset.compare_usage("u", kind="tts", at=NOW)] == [
        "week",
        "month",
        "year",
    ]
    assert [c.comparison for c in dataset.compare_usage("u", metric="events", at=NOW)] == [
        "week",
        "month",
        "year",
    ]
    # Characters and pages do not add up: the quantity over all kinds is refused, not summed.
    with pytest.raises(InvalidArgument, match="different units"):
        dataset.compare_usage("u", at=NOW)
    # Over all kinds the quantity would add characters and pages: no peak; per kind, in its unit.
    assert dataset.usage_peak("u", "12m", "month", at=NOW) is None
    assert dataset.usage_peak("u", "12m", "month", kind="tts", at=NOW) == Peak(
        dt.date(2026, 11, 1), dt.date(2026, 12, 1), Decimal(6500)
    )
    assert dataset.usage_peak("nobody", at=NOW) is None


def test_patterns(dataset: Client) -> None:
    weekdays = dataset.weekday_distribution("u", at=NOW)
    assert all(isinstance(w, WeekdayUsage) for w in weekdays) and len(weekdays) == 7
    assert {w.day_name: w.events for w in weekdays if w.events} == {
        "Monday": 1,
        "Tuesday": 1,
        "Thursday": 2,
        "Saturday": 1,
    }
    cells = dataset.hour_of_week_heatmap("u")
    assert len(cells) == 168 and isinstance(cells[0], HourOfWeek)
    # Thursday 19:00 Berlin (t1 at 18:00 UTC, t2 at 18:40 UTC), Saturday 00:00 (t3).
    assert {(c.weekday, c.hour): c.events for c in cells if c.events} == {(4, 19): 2, (6, 0): 1, (2, 12): 1, (1, 11): 1}
    assert [c.failures for c in cells if c.failures] == [1]
    year = dataset.calendar_heatmap("u", 2026, at=NOW)
    assert len(year) == 365 and isinstance(year[0], CalendarDay)
    # u's kinds count in characters and pages, so the levels rank the days by events (1, 1, 2, 1), not by
    # a quantity that would add the two; and no day has a quantity.
    assert {d.day.isoformat(): d.level for d in year if d.level} == {
        "2026-10-20": 3,
        "2026-11-02": 3,
        "2026-11-19": 4,
        "2026-11-21": 3,
    }
    assert {d.quantity for d in year} == {None}
    months = dataset.monthly_summaries("u", 2, at=NOW)
    assert months == [
        MonthlySummary(dt.date(2026, 10, 1), dt.date(2026, 11, 1), 1, None, 300_000, Decimal("0.005"), 0, 1, "tts"),
        MonthlySummary(dt.date(2026, 11, 1), dt.date(2026, 12, 1), 4, None, 6_600_000, Decimal("0.077"), 1, 3, "tts"),
    ]


def test_limits_forecast_and_plans(dataset: Client) -> None:
    forecast = {f.kind: f for f in dataset.quota_forecast("u", at=NOW)}
    assert all(isinstance(f, QuotaForecast) for f in forecast.values())
    tts = forecast["tts"]
    # Run rate: 6500 chars over the last 7 days (700 failed chars count nothing) = 928.57/day; left: the rest of
    # today (13:00 in Berlin: 11/24 of a day) and 9 full days: 6500 + 928.57 * 9.4583 = 15283.
    assert (tts.used, tts.quota, tts.remaining, tts.utilization_pct, tts.run_rate) == (
        6500,
        10_000,
        3500,
        Decimal("65.0"),
        Decimal("928.57"),
    )
    assert (tts.projected, tts.reaches_limit_on, tts.status) == (15283, dt.date(2026, 11, 25), "will_reach")
    assert forecast["ocr"].status == "ok"
    rec = dataset.recommended_plan("u", at=NOW)
    assert rec == RecommendedPlan("pro", 1, Decimal("9.99"), "free", False)

    dataset.start_subscription("u", "pro", at(2026, 11, 10))
    assert dataset.plan_at("u", at(2026, 11, 9)) == "free" and dataset.plan_at("u", NOW) == "pro"
    assert dataset.end_subscription("u", at(2026, 11, 20)) is True
    summary = dataset.subscription_summary("u", at=NOW)
    assert summary == SubscriptionSummary("free", None, 1, 1, 1, "pro", Decimal("9.99"))


def test_check_quota_counts_the_current_period_under_the_plan_in_force(client: Client) -> None:
    """check_quota answers for now (it has no date): the usage is recorded now, in the current period
    of the user's time zone, whatever day the suite runs (a month's last evening in UTC is already
    the next period in Berlin)."""
    c = client
    c.upsert_plan("free", tier=0, monthly_price=0, limits={"tts": 10_000, "ocr": 20}, is_default=True)
    c.upsert_plan("pro", tier=1, monthly_price="9.99", limits={"tts": 100_000})
    c.set_user_settings("q", time_zone="Europe/Berlin")
    assert c.record("q1", "q", "tts", 4000) and c.record("q2", "q", "tts", 2500)
    assert c.check_quota("q", "tts", 3500) == 0
    with pytest.raises(QuotaExceeded):
        c.check_quota("q", "tts", 3501)
    c.merge_pending()
    assert c.check_quota("q", "tts", 3500) == 0
    c.start_subscription("q", "pro", dt.datetime.now(UTC) - dt.timedelta(days=1))
    assert c.check_quota("q", "tts", 50_000) == 100_000 - 6500 - 50_000
    assert c.check_quota("q", "ocr", 10**6) is None  # pro has no ocr limit


def test_insights(dataset: Client) -> None:
    with pytest.raises(InvalidArgument, match="different units"):
        dataset.usage_anomalies("u", dt.date(2026, 11, 20), dt.date(2026, 11, 21), at=NOW)
    anomalies = dataset.usage_anomalies("u", dt.date(2026, 11, 20), dt.date(2026, 11, 21), kind="tts", at=NOW)
    assert [(a.day, a.value, a.is_anomaly) for a in anomalies] == [
        (dt.date(2026, 11, 20), Decimal(0), False),
        (dt.date(2026, 11, 21), Decimal(2500), False),
    ]
    assert isinstance(anomalies[0], DayAnomaly)
    peer = dataset.peer_percentile("u", "tts", at=NOW)
    assert peer == PeerPercentile(dt.date(2026, 11, 1), 6500, None, None, None)  # no distribution published yet
    insights = dataset.usage_insights("u", at=NOW)
    assert all(isinstance(i, Insight) for i in insights)
    assert [i.message for i in insights] == [
        "tts usage is up 1200.0% this month so far (6,500 vs 500 characters by this day last month)",
        "Your favourite voice is af_bella: 1 h 05 min listened",
        "At your current pace you will reach your tts limit on 2026-11-25 (65.0% used so far)",
    ]


def test_peer_percentile_places_only_the_callers_own_usage(client: Client, conn: psycopg.Connection) -> None:
    """A reader gets its own position among the published cut points, and nothing for anyone else."""
    for i in range(1, 13):  # p01..p12 used 100..1200 chars of tts in November
        client.record(f"t{i}", f"p{i:02}", "tts", 100 * i, occurred_at=at(2026, 11, 5, 10, 0))
    client.admin.refresh()  # merges first; 12 users publish their median, 650
    conn.execute("set role tally_reader")
    conn.execute("select set_config('tally.user_id', 'p09', false)")
    peer = client.peer_percentile("p09", "tts", at=NOW)
    assert peer is not None and (peer.period_start, peer.quantity, peer.peers, peer.percentile) == (
        dt.date(2026, 11, 1),
        900,
        12,
        Decimal(50),
    )
    assert peer.refreshed_at is not None
    assert client.peer_percentile("p09", "ocr", at=NOW) is None  # no usage of the kind this period
    assert client.peer_percentile("p12", "tts", at=NOW) is None  # another user: nothing ...
    assert client.peer_percentile("nobody", "tts", at=NOW) is None  # ... exactly as for a user that does not exist
    cuts = conn.execute("select cut_point from tally.peer_distribution_mv where kind = 'tts'").fetchall()
    assert cuts == [(Decimal(650),)]  # the reader sees the distribution: no extreme, nobody's exact usage
    conn.execute("reset role")


def test_results_are_frozen(dataset: Client) -> None:
    p = dataset.engagement_profile("u", at=NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.days_active = 0  # type: ignore[misc]


def test_argument_errors_name_the_field(client: Client) -> None:
    with pytest.raises(InvalidArgument) as info:
        client.usage_history("u", "fortnight")
    assert info.value.field == "range"
    with pytest.raises(InvalidArgument) as info:
        client.compare_usage("u", metric="chars")
    assert info.value.field == "metric"
    with pytest.raises(UnknownDimension):
        client.usage_history("u", "7d", dimension="colour")
    with pytest.raises(InvalidArgument) as info:
        client.start_subscription("u", "gold")
    assert info.value.field == "plan"


def test_csv_exports(dataset: Client) -> None:
    out = io.StringIO()
    n = dataset.export_events_csv("u", at(2026, 11, 1), at(2026, 12, 1), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert n == 5 == len(rows)
    assert [r["event_id"] for r in rows] == ["o1", "t1", "t2", "f1", "t3"]
    assert rows[1]["quantity"] == "3000" and rows[3]["status"] == "failed"
    binary = io.BytesIO()
    assert dataset.export_rollups_csv("u", dt.date(2026, 11, 19), dt.date(2026, 11, 19), binary, dimension="voice") == 1
    assert binary.getvalue().decode().splitlines() == [
        "day,dimension,value,events,failures,quantity,duration_ms,cost",
        "2026-11-19,voice,alloy,2,0,4000,3000000,0.04",
    ]
    everything = io.BytesIO()
    # kind, voice, model and plan (the plan in force is a dimension like any other)
    assert dataset.export_rollups_csv("u", dt.date(2026, 11, 19), dt.date(2026, 11, 19), everything) == 4


BULK = """
select tally.record_usage_batch(
  array_agg('bulk-' || g), array_agg('bulk'::text), array_agg('tts'::text), array_agg((g %% 500)::bigint),
  array_agg(timestamptz '2025-01-01 00:00+00' + g * interval '20 seconds'), array_agg(1000::bigint),
  array_agg(0.001::numeric), array_agg('succeeded'::text), array_agg(null::text), array_agg(true),
  array_agg(jsonb_build_object('voice', 'af_alloy', 'document_id', 'doc-' || (g / 50))), array_agg(null::text))
  from generate_series(%s::bigint, %s::bigint) g
"""


class CountingSink:
    """A file-like object that only counts what it is given."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def write(self, chunk: bytes) -> int:
        self.bytes += len(chunk)
        self.lines += bytes(chunk).count(b"\n")
        return len(chunk)


def test_export_of_a_million_rows_streams_in_constant_memory(conn: psycopg.Connection, client: Client) -> None:
    total = 1_000_000
    for lo in range(0, total, 100_000):  # server-side generation through the batch path: ~20 s
        conn.execute(BULK, (lo, lo + 99_999))

    def export(to: dt.datetime) -> tuple[int, CountingSink, int, int]:
        sink = CountingSink()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        try:
            rows = client.export_events_csv("bulk", at(2025, 1, 1), to, sink)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return rows, sink, peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before

    small_rows, _, small_peak, _ = export(at(2025, 1, 3, 7, 33, 20))  # 10,000 rows
    rows, sink, peak, rss_growth_kb = export(at(2026, 1, 1))
    assert small_rows == 10_000
    assert rows == total and sink.lines == total + 1  # plus the header
    assert sink.bytes > 100_000_000  # the CSV is over 100 MB ...
    assert peak < 2_000_000, f"... but the client held at most {peak} bytes of Python objects at once"
    assert peak < small_peak + 1_000_000, "100x the rows, the same memory"
    assert rss_growth_kb < 50_000, f"peak RSS grew by {rss_growth_kb} kB"
