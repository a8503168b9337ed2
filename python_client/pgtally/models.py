"""Typed results of the read API and the input of the batch write path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, TypeVar

T = TypeVar("T")

_INT_ANNOTATIONS = frozenset({"int", "int | None", "Optional[int]"})
_COLUMNS: dict[Any, tuple[frozenset[str], frozenset[str]]] = {}


def _columns(cls: Any) -> tuple[frozenset[str], frozenset[str]]:
    """The field names of a result dataclass, and those annotated ``int`` (or ``int | None``)."""
    found = _COLUMNS.get(cls)
    if found is None:
        found = (
            frozenset(f.name for f in fields(cls)),
            frozenset(f.name for f in fields(cls) if f.type is int or f.type in _INT_ANNOTATIONS),
        )
        _COLUMNS[cls] = found
    return found


def build(cls: type[T], row: Mapping[str, Any]) -> T:
    """The result dataclass ``cls`` from a ``dict_row``, ignoring columns a newer schema may add.

    Sums of amounts (quantity, duration_ms) are ``numeric`` in SQL, so they
    never overflow; psycopg returns them as ``Decimal``. A field annotated
    ``int`` gets an ``int`` (exact: the sums are integral); ``cost`` and the
    other ``Decimal`` fields stay ``Decimal``.
    """
    names, ints = _columns(cls)
    return cls(**{k: _as_int(v) if k in ints else v for k, v in row.items() if k in names})


def _as_int(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


def human_duration(ms: int | None) -> str:
    """A duration for people: ``14 h 12 min``, ``3 min 05 s``, ``42 s``."""
    if ms is None:
        return "unknown"
    seconds = round(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@dataclass(frozen=True)
class UsageEvent:
    """One event for ``Client.record_many`` (the columns of tally.usage_events)."""

    event_id: str
    user_id: str
    kind: str
    quantity: int = 0
    occurred_at: dt.datetime | None = None
    duration_ms: int | None = None
    cost: Decimal | int | str = 0
    status: str = "succeeded"
    error_code: str | None = None
    billable: bool = True
    attributes: Mapping[str, Any] = field(default_factory=dict)
    corrects_event_id: str | None = None

    @classmethod
    def from_mapping(cls, m: UsageEvent | Mapping[str, Any]) -> UsageEvent:
        """``m`` itself when it is a UsageEvent, else the event made of its keys."""
        return m if isinstance(m, UsageEvent) else cls(**m)


@dataclass(frozen=True)
class DimensionTotal:
    """Lifetime totals of one user for one dimension value."""

    value: str
    events: int
    quantity: int
    duration_ms: int | None
    cost: Decimal
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    failures: int

    @property
    def duration_text(self) -> str:
        """Total duration for people, e.g. ``14 h 12 min``."""
        return human_duration(self.duration_ms)


@dataclass(frozen=True)
class DailyTotal:
    """Totals of one user for one local day and dimension value."""

    day: dt.date
    value: str
    events: int
    quantity: int
    duration_ms: int
    cost: Decimal
    failures: int


@dataclass(frozen=True)
class PeriodTotal:
    """Billing-period counters of one user and kind (billable, succeeded usage)."""

    period_start: dt.date
    period_end: dt.date
    kind: str
    events: int
    quantity: int
    duration_ms: int
    cost: Decimal
