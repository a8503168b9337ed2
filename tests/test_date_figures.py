"""Figures that depend on the day: at the real clock, and at every clock of the fixed-clock matrix.

Every test here is date-sensitive on purpose: it reads "now" (the server's and the
client's clocks, which tests/test_fixed_clocks.py moves together) and checks what
must hold whatever the day: comparisons to date compare like with like, the
forecast projects the rest of the period (the last day of a month included), the
command line shows the last day of a billing period (not its excluded end), and
the demo runs. At a fixed clock the billing periods are also checked against
hand-computed answers. The hand-computed figures at given dates are in
tests/pgtap/dates/.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from fixed_clock import fixed_moment
from pgtally.cli import main
from pgtally.client import Client
from pgtally.models import UsageEvent

UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)

pytestmark = pytest.mark.date_sensitive

#: The current billing period (first and last day, both included) of a user billed by calendar month and of one
#: whose subscription started on Jan 31, 2026 (periods from the 31st, or the last day of shorter months), at each
#: clock of the matrix (UTC). Hand-computed.
PERIODS_AT = {
    "2027-10-31 12:00:00": ("2027-10-01 – 2027-10-31", "2027-10-31 – 2027-11-29"),
    "2028-02-29 23:30:00": ("2028-02-01 – 2028-02-29", "2028-02-29 – 2028-03-30"),
    "2027-03-14 10:30:00": ("2027-03-01 – 2027-03-31", "2027-02-28 – 2027-03-30"),
    "2027-11-07 09:30:00": ("2027-11-01 – 2027-11-30", "2027-10-31 – 2027-11-29"),
    "2027-03-28 01:30:00": ("2027-03-01 – 2027-03-31", "2027-02-28 – 2027-03-30"),
    "2027-11-29 00:02:00": ("2027-11-01 – 2027-11-30", "2027-10-31 – 2027-11-29"),
    "2027-12-31 23:30:00": ("2027-12-01 – 2027-12-31", "2027-12-31 – 2028-01-30"),
}


def test_a_period_is_shown_with_its_last_day() -> None:
    """The SQL's exclusive end becomes the last day, both days included (hand-computed)."""
    from pgtally.cli.user import _days

    assert _days(dt.date(2026, 11, 1), dt.date(2026, 12, 1)) == "2026-11-01 – 2026-11-30"
    assert _days(dt.date(2028, 1, 31), dt.date(2028, 2, 29)) == "2028-01-31 – 2028-02-28"  # anchored on the 31st
    assert _days(dt.date(2027, 12, 31), dt.date(2028, 1, 31)) == "2027-12-31 – 2028-01-30"


def _cli(*args: str) -> str:
    """The output of a command, its whitespace (and the lines the terminal wraps) collapsed to single spaces."""
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def test_the_command_line_shows_the_last_day_of_the_billing_period(dsn: str) -> None:
    with Client.connect(dsn) as client:
        client.upsert_plan("free", tier=0, monthly_price=0, limits={"tts": 100_000}, is_default=True)
        client.upsert_plan("pro", tier=1, monthly_price="9.99", limits={"tts": 1_000_000})
        client.start_subscription("s31", "pro", dt.datetime(2026, 1, 31, 10, tzinfo=UTC))
        for user in ("m1", "s31"):
            client.record(f"{user}-now", user, "tts", 1200)  # now, on both clocks
        periods = {u: client.period_totals(u)[0] for u in ("m1", "s31")}
    for user, p in periods.items():
        shown = f"{p.period_start} – {p.period_end - DAY}"
        card = _cli("card", user, "--dsn", dsn)
        assert f"period {shown} (plan " in card, card
        stats = _cli("stats", user, "--dsn", dsn)
        assert re.search(rf"tts │ {p.period_start} │ {p.period_end - DAY} │", stats), stats
        # The excluded end is never shown as if it were part of the period.
        assert str(p.period_end) not in card + stats
    moment = fixed_moment()
    if moment is not None and (expected := PERIODS_AT.get(f"{moment:%Y-%m-%d %H:%M:%S}")):
        shown = tuple(f"{periods[u].period_start} – {periods[u].period_end - DAY}" for u in ("m1", "s31"))
        assert shown == expected


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Europe/Berlin", "Asia/Tokyo"])
def test_history_ends_today_in_the_users_time_zone(dsn: str, zone: str) -> None:
    """Usage recorded now lands in the last bucket: today, this week (Monday), this month, in the user's zone."""
    with Client.connect(dsn) as client:
        client.set_user_settings("h", time_zone=zone)
        client.record("h-now", "h", "tts", 321)  # occurred_at: the server's now()
        days = client.usage_history("h", "7d", "day")
        weeks = client.usage_history("h", "4w", "week")
        months = client.usage_history("h", "12m", "month")
    today = dt.datetime.now(ZoneInfo(zone)).date()  # the client's clock, in the user's zone
    assert [b.bucket_start for b in days] == [today - (6 - i) * DAY for i in range(7)]
    assert [b.quantity for b in days] == [0] * 6 + [321]
    assert (len(weeks), weeks[-1].bucket_start, weeks[-1].quantity) == (4, today - today.weekday() * DAY, 321)
    assert (len(months), months[-1].bucket_start, months[-1].quantity) == (12, today.replace(day=1), 321)
    assert months[0].bucket_start == (today.replace(day=1) - 330 * DAY).replace(day=1)


def _at(conn: psycopg.Connection, sql: str) -> dt.datetime:
    value = conn.execute(sql).fetchone()[0]  # type: ignore[index]
    assert isinstance(value, dt.datetime)
    return value


def test_comparisons_to_date_compare_like_with_like(dsn: str) -> None:
    """The same usage at the same times of this and of the previous week: no change, whatever the day and hour.

    Usage of the previous week later than this moment one week ago is not counted: it has no counterpart yet.
    """
    now = dt.datetime.now(UTC)  # the client's clock; the read below uses the server's (at = now())
    offsets = [dt.timedelta(minutes=m) for m in (2, 90, 60 * 30, 60 * 24 * 3 + 5)]
    events = [UsageEvent(f"this-{i}", "w", "tts", 100 * (i + 1), now - d) for i, d in enumerate(offsets)]
    events += [UsageEvent(f"last-{i}", "w", "tts", 100 * (i + 1), now - 7 * DAY - d) for i, d in enumerate(offsets)]
    # Later on the same day one week ago (and the day after): not yet this week.
    events += [UsageEvent(f"later-{i}", "w", "tts", 5000, now - 7 * DAY + d) for i, d in enumerate(offsets[:2])]
    with Client.connect(dsn) as client:
        client.record_many(events)
        (week,) = client.compare_usage("w", "week")
    first_day = (now - now.weekday() * DAY).date()
    expected = sum(100 * (i + 1) for i, d in enumerate(offsets) if (now - d).date() >= first_day)
    assert (week.current_value, week.previous_value, week.delta, week.trend) == (expected, expected, 0, "stable")
    assert (week.current_start, week.previous_start) == (first_day, first_day - 7 * DAY)


def test_the_forecast_projects_the_rest_of_the_period(dsn: str) -> None:
    """Whatever the day (the last of the month included), usage at a steady rate projects beyond what is used."""
    now = dt.datetime.now(UTC)
    with Client.connect(dsn) as client:
        # 10 million chars a day over the last week: even a few seconds left in the period project more.
        client.record_many(
            [UsageEvent(f"f{i}", "f", "tts", 10_000_000, now - dt.timedelta(seconds=30) - i * DAY) for i in range(7)]
        )
        (tts,) = [f for f in client.quota_forecast("f") if f.kind == "tts"]
    with psycopg.connect(dsn) as conn:
        server_now = _at(conn, "select now()")
    assert tts.run_rate > 0 and tts.period_start <= server_now.date() < tts.period_end
    assert tts.projected > tts.used, f"projected {tts.projected} = used {tts.used} with {tts.period_end} still ahead"
    # No more than the rate over the days left, today's rest included.
    assert tts.projected <= tts.used + tts.run_rate * ((tts.period_end - server_now.date()).days + 1)


def test_the_demo_runs_with_the_year_ending_now(dsn: str, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    out = _cli("demo", "--users", "20", "--events", "1500", "--dsn", dsn, "--report", str(report))
    for panel in ("pgtally admin dashboard", "data as of", "Funnel (30d)", "this billing period"):
        assert panel in out, panel
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with psycopg.connect(dsn) as conn:
        first, last, now = conn.execute(
            "select min(occurred_at), max(occurred_at), now() from tally.usage_events"
        ).fetchone()  # type: ignore[misc]
    # The loaded year is the one ending now (the current hour), whatever the day.
    assert now - dt.timedelta(days=367) < first < last <= now, f"the loaded year is {first} .. {last}, not up to {now}"
    assert last > now - dt.timedelta(days=30), f"the loaded year ends {last}, not now ({now})"
