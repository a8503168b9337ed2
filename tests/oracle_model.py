"""An independent, plain-Python model of pgtally's aggregates.

The model is fed the events that were *accepted* (first occurrence of a
user's event_id wins: the key is per user) and recomputes lifetime, daily and billing-period totals from
the documented contribution rules; it never looks at the database. The
check_* helpers at the end compare one read of the client with the model.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pgtally import Client, DailyTotal, DimensionTotal, PeriodTotal

UTC = dt.timezone.utc

DEFAULT_DIMENSIONS: dict[str, tuple[str, ...]] = {"kind": ("kind",), "voice": ("voice",), "model": ("model",)}


@dataclass(frozen=True)
class Ev:
    """One accepted row of the usage log."""

    event_id: str
    user_id: str
    kind: str
    occurred_at: dt.datetime
    quantity: int = 0
    duration_ms: int | None = None
    cost: Decimal = Decimal(0)
    status: str = "succeeded"
    billable: bool = True
    attributes: dict[str, Any] = field(default_factory=dict)
    corrects_event_id: str | None = None


def dimension_value(keys: tuple[str, ...], ev: Ev) -> str | None:
    parts = []
    for key in keys:
        v = ev.kind if key == "kind" else ev.attributes.get(key)
        if v is None:
            return None
        v = str(v)
        if v == "":
            return None
        parts.append(v)
    return "/".join(parts)


def contribution(ev: Ev) -> dict[str, Any]:
    """Signed contribution of one accepted row, by the documented rules."""
    correction = ev.corrects_event_id is not None
    counted = ev.status in ("succeeded", "reversed")
    if ev.status == "reversed":
        events = -1
    elif ev.status == "succeeded" and not correction:
        events = 1
    else:
        events = 0
    return {
        "events": events,
        "failures": 1 if ev.status == "failed" else 0,
        "quantity": ev.quantity if counted else 0,
        "duration_ms": (ev.duration_ms or 0) if counted else 0,
        # events whose duration is known (signed like events): none means the duration is unknown
        "timed": 0
        if ev.duration_ms is None or not counted
        else (-1 if ev.status == "reversed" else 0 if correction else 1),
        "cost": Decimal(ev.cost) if counted else Decimal(0),
        "is_use": ev.status == "succeeded" and not correction,
        "billable": ev.billable and counted,
    }


def period_start(d: dt.date, anchor: int) -> dt.date:
    if d.day >= anchor:
        return d.replace(day=anchor)
    prev = (d.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return prev.replace(day=anchor)


def add_month(d: dt.date) -> dt.date:
    return (d.replace(day=1) + dt.timedelta(days=32)).replace(day=d.day)


class Model:
    def __init__(self) -> None:
        self.events: dict[tuple[str, str], Ev] = {}  # (user_id, event_id) -> accepted, in acceptance order
        self.settings: dict[str, tuple[str, int]] = {}

    # -------------------------------------------------------------- inputs
    def set_user(self, user_id: str, time_zone: str = "UTC", anchor: int = 1) -> None:
        self.settings[user_id] = (time_zone, anchor)

    def offer(self, ev: Ev) -> bool:
        """Record ev unless its user's event_id is known; True when it was new."""
        if (ev.user_id, ev.event_id) in self.events:
            return False
        self.events[(ev.user_id, ev.event_id)] = ev
        return True

    def tz(self, user_id: str) -> ZoneInfo:
        return ZoneInfo(self.settings.get(user_id, ("UTC", 1))[0])

    def anchor(self, user_id: str) -> int:
        return self.settings.get(user_id, ("UTC", 1))[1]

    def local_day(self, user_id: str, at: dt.datetime) -> dt.date:
        return at.astimezone(self.tz(user_id)).date()

    def user_events(self, user_id: str) -> list[Ev]:
        return [e for e in self.events.values() if e.user_id == user_id]

    # ------------------------------------------------------------- outputs
    @staticmethod
    def _empty() -> dict[str, Any]:
        return {
            "events": 0,
            "failures": 0,
            "quantity": 0,
            "duration_ms": 0,
            "cost": Decimal(0),
            "first_at": None,
            "last_at": None,
        }

    @staticmethod
    def _add(acc: dict[str, Any], ev: Ev, c: dict[str, Any]) -> None:
        for k in ("events", "failures", "quantity", "duration_ms", "cost"):
            acc[k] += c[k]
        if c["is_use"]:
            acc["first_at"] = ev.occurred_at if acc["first_at"] is None else min(acc["first_at"], ev.occurred_at)
            acc["last_at"] = ev.occurred_at if acc["last_at"] is None else max(acc["last_at"], ev.occurred_at)

    def lifetime(self, user_id: str, dimension: str) -> dict[str, dict[str, Any]]:
        keys = DEFAULT_DIMENSIONS[dimension]
        out: dict[str, dict[str, Any]] = defaultdict(self._empty)
        timed: dict[str, int] = {}
        for ev in self.user_events(user_id):
            v = dimension_value(keys, ev)
            if v is not None:
                c = contribution(ev)
                self._add(out[v], ev, c)
                timed[v] = timed.get(v, 0) + c["timed"]
        # A lifetime duration is unknown (None) when no event behind it had one.
        return {
            v: {**acc, "duration_ms": acc["duration_ms"] if timed[v] or acc["duration_ms"] else None}
            for v, acc in out.items()
        }

    def daily(
        self, user_id: str, dimension: str, from_day: dt.date, to_day: dt.date
    ) -> dict[tuple[dt.date, str], dict[str, Any]]:
        keys = DEFAULT_DIMENSIONS[dimension]
        out: dict[tuple[dt.date, str], dict[str, Any]] = defaultdict(self._empty)
        for ev in self.user_events(user_id):
            v = dimension_value(keys, ev)
            day = self.local_day(user_id, ev.occurred_at)
            if v is not None and from_day <= day <= to_day:
                self._add(out[(day, v)], ev, contribution(ev))
        result = {}
        for k, acc in out.items():
            acc = dict(acc)
            del acc["first_at"], acc["last_at"]
            result[k] = acc
        return result

    def period(self, user_id: str, at: dt.datetime) -> tuple[dt.date, dict[str, dict[str, Any]]]:
        anchor = self.anchor(user_id)
        p_start = period_start(self.local_day(user_id, at), anchor)
        out: dict[str, dict[str, Any]] = {}
        for ev in self.user_events(user_id):
            c = contribution(ev)
            if not c["billable"]:
                continue
            if period_start(self.local_day(user_id, ev.occurred_at), anchor) != p_start:
                continue
            acc = out.setdefault(ev.kind, {"events": 0, "quantity": 0, "duration_ms": 0, "cost": Decimal(0)})
            for k in ("events", "quantity", "duration_ms", "cost"):
                acc[k] += c[k]
        return p_start, out


# --------------------------------------------------------------------------- comparisons


def check_lifetime(client: Client, model: Model, user: str, dim: str) -> None:
    rows = client.lifetime_totals(user, dim)
    assert all(isinstance(r, DimensionTotal) for r in rows)
    got = {
        r.value: {
            "events": r.events,
            "failures": r.failures,
            "quantity": r.quantity,
            "duration_ms": r.duration_ms,
            "cost": r.cost,
            "first_at": r.first_at,
            "last_at": r.last_at,
        }
        for r in rows
    }
    assert len(got) == len(rows), f"duplicate values in lifetime_totals({user}, {dim})"
    expected = model.lifetime(user, dim)
    assert got == expected, f"lifetime_totals({user!r}, {dim!r})"
    order = sorted(expected, key=lambda v: (-expected[v]["quantity"], v))
    assert [r.value for r in rows] == order, f"lifetime_totals({user!r}, {dim!r}) order"


def check_daily(client: Client, model: Model, user: str, dim: str, from_day: dt.date, to_day: dt.date) -> None:
    rows = client.daily_totals(user, dim, from_day, to_day)
    assert all(isinstance(r, DailyTotal) for r in rows)
    got = {
        (r.day, r.value): {
            "events": r.events,
            "failures": r.failures,
            "quantity": r.quantity,
            "duration_ms": r.duration_ms,
            "cost": r.cost,
        }
        for r in rows
    }
    assert len(got) == len(rows), f"duplicate keys in daily_totals({user}, {dim})"
    expected = model.daily(user, dim, from_day, to_day)
    assert got == expected, f"daily_totals({user!r}, {dim!r}, {from_day}, {to_day})"
    assert [(r.day, r.value) for r in rows] == sorted(expected), "daily_totals order"


def check_period(client: Client, model: Model, user: str, at: dt.datetime | None) -> None:
    rows = client.period_totals(user, at)
    assert all(isinstance(r, PeriodTotal) for r in rows)
    p_start, expected = model.period(user, at or dt.datetime.now(UTC))
    got = {
        r.kind: {"events": r.events, "quantity": r.quantity, "duration_ms": r.duration_ms, "cost": r.cost} for r in rows
    }
    assert got == expected, f"period_totals({user!r}, {at}) period starting {p_start}"
    for r in rows:
        assert (r.period_start, r.period_end) == (p_start, add_month(p_start)), r
    assert [r.kind for r in rows] == sorted(expected)
