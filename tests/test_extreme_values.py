"""Poison values: the largest amounts the write path accepts, many times over, for one user and one
dimension value, go through the merge, the analytics refresh, rebuild, verify and every read (found in
the catalog) without an error, and every total stays exact beyond the range of bigint.

Also: amounts beyond the documented bounds are refused at write time (PT002), on every write path.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from every_read import argument_values, call_every_read, int_fields_hold_ints
from pgtally import Client, NegativeAmount

UTC = dt.timezone.utc
AT = dt.datetime(2025, 6, 20, 12, 0, tzinfo=UTC)  # the moment every read is asked about
OCCURRED = dt.datetime(2025, 6, 18, 9, 30, tzinfo=UTC)  # when the heavy events happened

MAX_QUANTITY = 10**15
MAX_DURATION = 10**12
MAX_COST = Decimal("999999999999999.999999")  # cost must stay below 1e15
BIGINT_MAX = 2**63 - 1
HEAVY = 9300  # 9300 x 1e15 > 2^63 - 1: any bigint sum of them overflows
SESSIONS = 10  # session-kind events of one explicit session, each at the largest duration
PEERS = 5  # other users with one heavy event each, so no admin group is too small to show
ATTRS = {"voice": "af_alloy", "model": "kokoro", "session_id": "s-heavy"}


def batch(
    conn: psycopg.Connection,
    ids: list[str],
    user_id: str,
    kind: str,
    attributes: dict[str, Any],
    quantity: int = MAX_QUANTITY,
    duration_ms: int = MAX_DURATION,
    cost: Decimal = MAX_COST,
) -> int:
    n = len(ids)
    row = conn.execute(
        """select tally.record_usage_batch(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb[], %s)""",
        (
            ids,
            [user_id] * n,
            [kind] * n,
            [quantity] * n,
            [OCCURRED] * n,
            [duration_ms] * n,
            [cost] * n,
            ["succeeded"] * n,
            [None] * n,
            [True] * n,
            [json.dumps(attributes)] * n,
            [None] * n,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_amounts_beyond_the_bounds_are_refused_on_every_write_path(conn: psycopg.Connection) -> None:
    client = Client(conn)
    client.record("orig", "u", "tts", 5, occurred_at=OCCURRED)
    cases = [  # (column, value, is a correction)
        ("quantity", MAX_QUANTITY + 1, False),
        ("quantity", BIGINT_MAX, False),
        ("quantity", -MAX_QUANTITY - 1, True),
        ("quantity", -BIGINT_MAX - 1, True),
        ("duration_ms", MAX_DURATION + 1, False),
        ("duration_ms", BIGINT_MAX, False),
        ("duration_ms", -MAX_DURATION - 1, True),
    ]
    for column, value, correction in cases:
        corrects = "orig" if correction else None
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(
                f"insert into tally.usage_events (event_id, user_id, kind, {column}, corrects_event_id)"
                " values ('x', 'u', 'tts', %s, %s)",
                (value, corrects),
            )
        assert raised.value.sqlstate == "PT002" and raised.value.diag.column_name == column
        assert str(value) in (raised.value.diag.message_primary or "")
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(
                f"select tally.record_usage('x', 'u', 'tts', {column} => %s, corrects_event_id => %s)",
                (value, corrects),
            )
        assert raised.value.sqlstate == "PT002" and raised.value.diag.column_name == column
        with pytest.raises(NegativeAmount):
            client.record("x", "u", "tts", **{column: value}, corrects_event_id=corrects)  # type: ignore[arg-type]
        with pytest.raises(NegativeAmount):
            kwargs: dict[str, Any] = {"quantity": 1, column: value}
            client.record_many([dict(event_id="x", user_id="u", kind="tts", corrects_event_id=corrects, **kwargs)])
    with pytest.raises(psycopg.Error) as raised:
        conn.execute("select tally.check_quota('u', 'tts', %s)", (MAX_QUANTITY + 1,))
    assert raised.value.sqlstate == "PT011" and raised.value.diag.column_name == "amount"
    # Exactly at the bounds is accepted; nothing of the refused attempts was written.
    assert client.record("max", "u", "tts", MAX_QUANTITY, duration_ms=MAX_DURATION, occurred_at=OCCURRED)
    assert client.amend("u", "max", "max:fix", quantity_delta=-MAX_QUANTITY, duration_ms_delta=-MAX_DURATION)
    assert conn.execute("select count(*) from tally.usage_events where event_id = 'x'").fetchone() == (0,)
    assert conn.execute("select count(*) from tally.event_keys where event_id = 'x'").fetchone() == (0,)
    assert [(t.quantity, t.duration_ms) for t in client.lifetime_totals("u")] == [(5, 0)]


def test_the_largest_accepted_amounts_flow_through_every_merge_and_read(conn: psycopg.Connection) -> None:
    client = Client(conn)
    client.upsert_plan(
        "huge", tier=1, monthly_price="999999999999.99", limits={"tts": 999_999_999_999_999_999}, is_default=True
    )
    client.set_user_settings("heavy", time_zone="Pacific/Kiritimati", billing_anchor_day=28)
    client.start_subscription("heavy", "huge", started_at=OCCURRED - dt.timedelta(days=40))
    for p in range(PEERS):
        batch(conn, [f"peer-{p}"], f"peer-{p}", "tts", ATTRS)

    ids = [f"heavy-{i:05d}" for i in range(HEAVY)]
    half = HEAVY // 2
    assert batch(conn, ids[:half], "heavy", "tts", ATTRS) == half
    assert client.merge_pending() == half + PEERS
    assert batch(conn, ids[half:], "heavy", "tts", ATTRS) == HEAVY - half
    assert (
        batch(conn, [f"sess-{i}" for i in range(SESSIONS)], "heavy", "session", {"session_id": "s-explicit"})
        == SESSIONS
    )
    # One correction at the largest negative amounts (it amends, so the event count stays).
    assert client.amend(
        "heavy",
        ids[0],
        "heavy-fix",
        quantity_delta=-MAX_QUANTITY,
        duration_ms_delta=-MAX_DURATION,
        cost_delta=-MAX_COST,
    )

    tts_quantity = (HEAVY - 1) * MAX_QUANTITY
    assert tts_quantity > BIGINT_MAX
    values = argument_values("heavy", AT, dt.date(2025, 6, 1), dt.date(2025, 6, 30), ["tts", "session"])

    def check_user_reads(reads: dict[str, list[dict[str, Any]]]) -> None:
        kinds = {r["value"]: r for r in reads["lifetime_totals"]}
        assert kinds["tts"]["events"] == HEAVY
        assert kinds["tts"]["quantity"] == tts_quantity
        assert kinds["tts"]["duration_ms"] == (HEAVY - 1) * MAX_DURATION
        assert kinds["tts"]["cost"] == (HEAVY - 1) * MAX_COST
        assert kinds["session"]["duration_ms"] == SESSIONS * MAX_DURATION
        assert sum(r["quantity"] for r in reads["daily_totals"]) == tts_quantity + SESSIONS * MAX_QUANTITY
        assert {r["kind"]: r["quantity"] for r in reads["period_totals"]}["tts"] == tts_quantity
        total = next(r for r in reads["summary_card"] if r["section"] == "total")
        # characters of tts and the undeclared kind session (a unit of its own) add up to no number
        assert total["quantity"] is None
        card_kinds = {r["value"]: r for r in reads["summary_card"] if r["section"] == "kind"}
        assert card_kinds["tts"]["quantity"] == tts_quantity and card_kinds["tts"]["unit"] == "characters"
        for mixed in ("hour_of_week_heatmap", "calendar_heatmap", "monthly_summaries", "weekday_distribution"):
            assert {r["quantity"] for r in reads[mixed]} == {None}, mixed
        forecast = {r["kind"]: r for r in reads["quota_forecast"]}["tts"]
        assert forecast["used"] == tts_quantity and forecast["status"] == "reached"
        profile = reads["engagement_profile"][0]
        assert profile["sessions"] == 2
        assert profile["longest_session_ms"] == SESSIONS * MAX_DURATION
        assert profile["total_session_ms"] == SESSIONS * MAX_DURATION + MAX_DURATION
        assert sum(r["quantity"] for r in reads["export_rollups"] if r["dimension"] == "voice") == tts_quantity

    # Half merged, half pending: every read adds the two.
    check_user_reads(call_every_read(conn, values))
    assert client.merge_pending() > 0
    assert {r.status for r in client.admin.refresh()} == {"refreshed"}
    check_user_reads(call_every_read(conn, values))
    assert conn.execute("select tally.rebuild()").fetchone() is not None
    assert conn.execute("select tally.rebuild('heavy', 'voice')").fetchone() is not None
    assert conn.execute("select check_name, drifted from tally.verify() where drifted <> 0").fetchall() == []
    client.admin.refresh()
    reads = call_every_read(conn, values)
    check_user_reads(reads)

    platform_tts = tts_quantity + PEERS * MAX_QUANTITY
    assert {r["value"]: r["quantity"] for r in reads["admin_totals"]}["tts"] == platform_tts
    assert reads["admin_overview"][0]["duration_ms"] == (HEAVY - 1 + SESSIONS + PEERS) * MAX_DURATION
    assert reads["admin_overview"][0]["cost"] == (HEAVY - 1 + SESSIONS + PEERS) * MAX_COST
    by_day = {r["value"]: r["quantity"] for r in reads["admin_trend"] if r["day"] == OCCURRED.date()}
    assert by_day["tts"] == platform_tts
    assert (
        dict(conn.execute("select value, quantity from tally.admin_leaderboard('kind', 'all', 'quantity')").fetchall())[
            "tts"
        ]
        == platform_tts
    )
    assert conn.execute("select tally._duration_text(%s)", (SESSIONS * MAX_DURATION,)).fetchone() == (
        "2777777 h 46 min",
    )

    # The Python client: every figure annotated int is an int (exact), cost a Decimal.
    kw = {"at": AT}
    results: dict[str, Any] = {
        "lifetime_totals": client.lifetime_totals("heavy"),
        "daily_totals": client.daily_totals("heavy", "voice", dt.date(2025, 6, 1), dt.date(2025, 6, 30)),
        "period_totals": client.period_totals("heavy", AT),
        "summary_card": client.summary_card("heavy", **kw),
        "usage_history": client.usage_history(
            "heavy", "custom", from_day=dt.date(2025, 6, 1), to_day=dt.date(2025, 6, 30), **kw
        ),
        "engagement_profile": client.engagement_profile("heavy", **kw),
        "weekday_distribution": client.weekday_distribution("heavy", **kw),
        "hour_of_week_heatmap": client.hour_of_week_heatmap("heavy"),
        "calendar_heatmap": client.calendar_heatmap("heavy", 2025, **kw),
        "monthly_summaries": client.monthly_summaries("heavy", **kw),
        "quota_forecast": client.quota_forecast("heavy", **kw),
        "compare_usage": client.compare_usage("heavy", kind="tts", **kw),
        "usage_peak": client.usage_peak("heavy", kind="tts", **kw),
        "usage_anomalies": client.usage_anomalies("heavy", kind="tts", **kw),
        "usage_insights": client.usage_insights("heavy", **kw),
        "subscription_summary": client.subscription_summary("heavy", **kw),
        "recommended_plan": client.recommended_plan("heavy", **kw),
        "admin_overview": client.admin.overview(),
        "admin_totals": client.admin.totals(),
        "admin_leaderboard": client.admin.leaderboard("voice", "all", "quantity"),
        "admin_trend": client.admin.trend(from_day=dt.date(2025, 6, 1), to_day=dt.date(2025, 6, 30)),
        "admin_reliability": client.admin.reliability("all"),
    }
    assert int_fields_hold_ints(results) == []
    assert results["lifetime_totals"][0].quantity == tts_quantity
    assert results["summary_card"].total.quantity is None  # characters and sessions: two units
    assert results["summary_card"].kinds[0].quantity == tts_quantity
    assert results["engagement_profile"].longest_session_ms == SESSIONS * MAX_DURATION
    assert conn.execute("select tally.check_quota('peer-0', 'tts', %s, %s)", (MAX_QUANTITY, AT)).fetchone() == (
        999_999_999_999_999_999 - 2 * MAX_QUANTITY,
    )


def test_long_grouping_keys_and_empty_session_ids_do_not_stop_the_merge(conn: psycopg.Connection) -> None:
    client = Client(conn)
    client.declare_dimension("model_voice", ["model", "voice"])
    prefix = "".join(f"{i:08x}" for i in range(20))  # 160 characters
    voices = [prefix + "".join(f"{i:08x}" for i in range(n, n + 400)) for n in (1000, 5000)]  # 3360 each
    long_session = "".join(f"{i:08x}" for i in range(9000, 9400))
    for i, voice in enumerate(voices):
        client.record(
            f"long-{i}",
            "u",
            "tts",
            10,
            occurred_at=OCCURRED,
            duration_ms=1000,
            attributes={"voice": voice, "model": voice, "session_id": long_session},
        )
    client.record("no-session-1", "u", "tts", 1, occurred_at=OCCURRED, attributes={"session_id": ""})
    client.record("no-session-2", "u", "tts", 1, occurred_at=OCCURRED, attributes={"session_id": None})
    pending = {t.value: t.quantity for t in client.lifetime_totals("u", "voice")}
    assert client.merge_pending() == 4
    merged = {t.value: t.quantity for t in client.lifetime_totals("u", "voice")}
    assert merged == pending and sorted(merged.values()) == [10, 10]
    # Each long value is its first 160 characters, '...' and the MD5 of the whole: distinct and at most 200.
    assert all(len(v) == 195 and v.startswith(prefix + "...") for v in merged)
    assert sorted(merged) == sorted(
        prefix + "..." + conn.execute("select md5(%s)", (v,)).fetchone()[0]  # type: ignore[index]
        for v in voices
    )
    assert len(client.lifetime_totals("u", "model_voice")) == 2
    profile = client.engagement_profile("u", at=AT)
    assert profile.sessions == 1, "the long session_id is one session; an empty or null one is none"
    client.admin.refresh()
    conn.execute("select tally.rebuild()")
    assert conn.execute("select check_name, drifted from tally.verify() where drifted <> 0").fetchall() == []
    assert {t.value: t.quantity for t in client.lifetime_totals("u", "voice")} == merged
