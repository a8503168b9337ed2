"""Writes and the core reads (lifetime, daily, billing-period totals), written once for both clients.

:class:`CoreApi` is mixed into :class:`pgtally.Client` and :class:`pgtally.AsyncClient`
(see :mod:`pgtally._query` for how one generator method serves both).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from psycopg.adapt import Transformer
from psycopg.types.json import Jsonb

try:  # psycopg's COPY row formatter (not part of its public API: without it, rows are written one by one)
    from psycopg._copy_base import TextFormatter as _TextFormatter
except ImportError:  # pragma: no cover - older or newer psycopg
    _TextFormatter = None  # type: ignore[assignment,misc]

from ._query import Call, api_method, copy_in, rows, scalar
from .models import DailyTotal, DimensionTotal, PeriodTotal, UsageEvent

RECORD_SQL = """
select tally.record_usage(
  event_id => %(event_id)s, user_id => %(user_id)s, kind => %(kind)s, quantity => %(quantity)s,
  occurred_at => coalesce(%(occurred_at)s::timestamptz, now()), duration_ms => %(duration_ms)s,
  cost => %(cost)s::numeric, status => %(status)s, error_code => %(error_code)s, billable => %(billable)s,
  attributes => %(attributes)s::jsonb, corrects_event_id => %(corrects_event_id)s)
"""

STAGING_COLUMNS = (
    "event_id",
    "user_id",
    "kind",
    "quantity",
    "occurred_at",
    "duration_ms",
    "cost",
    "status",
    "error_code",
    "billable",
    "attributes",
    "corrects_event_id",
)
STAGING_COPY = f"copy pg_temp.tally_staging ({', '.join(STAGING_COLUMNS)}) from stdin"


def staging_row(e: UsageEvent) -> tuple[Any, ...]:
    """One event as a row of STAGING_COLUMNS, for COPY into the staging table (sync and async clients)."""
    return (
        e.event_id,
        e.user_id,
        e.kind,
        e.quantity,
        e.occurred_at,
        e.duration_ms,
        e.cost,
        e.status,
        e.error_code,
        e.billable,
        Jsonb(dict(e.attributes)),
        e.corrects_event_id,
    )


def _copy_text(rows: Sequence[tuple[Any, ...]]) -> bytes | None:
    """``rows`` as the text COPY reads (UTF-8), as psycopg's ``write_row`` would send them; None when this
    psycopg does not expose its row formatter (the driver then writes the rows itself)."""
    if _TextFormatter is None:
        return None
    formatter = _TextFormatter(Transformer())
    out = bytearray()
    for row in rows:
        out += formatter.write_row(row)
    out += formatter.end()
    return bytes(out)


def _prepare_chunk(chunk: list[UsageEvent]) -> tuple[list[tuple[Any, ...]], bytes | None]:
    """A chunk of record_many, sorted by (user_id, event_id), as staging rows and their COPY text.

    Runs in a helper thread: it must not change ``chunk``, which the caller's thread reads meanwhile
    (``list.sort`` in place makes a list look empty to other threads until it is sorted)."""
    rows = [staging_row(e) for e in sorted(chunk, key=lambda e: (e.user_id, e.event_id))]
    return rows, _copy_text(rows)


class CoreApi:
    """Writes and the core reads, written once for the sync and the async client."""

    # ------------------------------------------------------------------ writes

    @api_method
    def record(
        self,
        event_id: str,
        user_id: str,
        kind: str,
        quantity: int = 0,
        *,
        occurred_at: dt.datetime | None = None,
        duration_ms: int | None = None,
        cost: Decimal | int | str = 0,
        status: str = "succeeded",
        error_code: str | None = None,
        billable: bool = True,
        attributes: Mapping[str, Any] | None = None,
        corrects_event_id: str | None = None,
    ) -> Call[bool]:
        """Record one usage event; True when new, False when ``event_id`` was already recorded.

        Runs in the connection's current transaction, so it commits or rolls
        back with the caller's own writes. Example::

            tally.record("ocr-page-9", "user-42", "ocr", 1, cost="0.0015", attributes={"model": "tesseract"})
        """
        params = dict(
            event_id=event_id,
            user_id=user_id,
            kind=kind,
            quantity=quantity,
            occurred_at=occurred_at,
            duration_ms=duration_ms,
            cost=str(cost),
            status=status,
            error_code=error_code,
            billable=billable,
            attributes=Jsonb(dict(attributes or {})),
            corrects_event_id=corrects_event_id,
        )
        return bool((yield from scalar(RECORD_SQL, params)))

    @api_method
    def reverse(self, user_id: str, original_event_id: str, event_id: str) -> Call[bool]:
        """Reverse a user's succeeded event (booked in its own buckets); True when the reversal is new.

        Event ids are keys per user, so the user is named. Example:
        ``tally.reverse("u1", "tts-job-1", "tts-job-1:refund")``
        """
        return bool(
            (yield from scalar("select tally.reverse_usage(%s, %s, %s)", (user_id, original_event_id, event_id)))
        )

    @api_method
    def amend(
        self,
        user_id: str,
        original_event_id: str,
        event_id: str,
        *,
        quantity_delta: int = 0,
        duration_ms_delta: int | None = None,
        cost_delta: Decimal | int | str = 0,
    ) -> Call[bool]:
        """Amend a user's event by signed deltas booked in its own buckets; True when the amendment is new.

        Example: ``tally.amend("u1", "tts-job-1", "tts-job-1:recount", quantity_delta=-12)``
        """
        return bool(
            (
                yield from scalar(
                    "select tally.amend_usage(%s, %s, %s, %s, %s, %s::numeric)",
                    (user_id, original_event_id, event_id, quantity_delta, duration_ms_delta, str(cost_delta)),
                )
            )
        )

    @api_method
    def set_user_settings(self, user_id: str, *, time_zone: str = "UTC", billing_anchor_day: int = 1) -> Call[None]:
        """Set a user's time zone and billing anchor day. Example: ``tally.set_user_settings("u1", time_zone="Europe/Berlin")``"""
        (yield from scalar("select tally.set_user_settings(%s, %s, %s)", (user_id, time_zone, billing_anchor_day)))

    @api_method
    def declare_dimension(self, name: str, keys: Sequence[str], description: str | None = None) -> Call[None]:
        """Declare a dimension from attribute keys. Example: ``tally.declare_dimension("voice_model", ["model", "voice"])``"""
        (yield from scalar("select tally.declare_dimension(%s, %s, %s)", (name, list(keys), description)))

    @api_method
    def declare_kind(
        self,
        kind: str,
        unit: str,
        display_name: str | None = None,
        *,
        audio: bool = False,
        featured_dimension: str | None = None,
    ) -> Call[None]:
        """Declare a kind: the unit its quantity counts in, a display name, whether its duration is
        audio, and the dimension its summary card features. Quantities of different units are
        never added. Example: ``tally.declare_kind("tts", "characters", "Text to speech", audio=True,
        featured_dimension="voice")``
        """
        (
            yield from scalar(
                "select tally.declare_kind(%s, %s, %s, %s, %s)", (kind, unit, display_name, audio, featured_dimension)
            )
        )

    @api_method
    def merge_pending(self, max_rows: int = 100_000) -> Call[int]:
        """Fold pending deltas into the rollups; returns how many merged (0 when another merge runs)."""
        return int((yield from scalar("select tally.merge_pending(%s)", (max_rows,))) or 0)

    # ------------------------------------------------------------------- reads

    @api_method
    def lifetime_totals(self, user_id: str, dimension: str = "kind") -> Call[list[DimensionTotal]]:
        """Lifetime totals of a user per value of ``dimension``, largest quantity first.

        Example: ``[t.value for t in tally.lifetime_totals("user-42", "voice")]``
        """
        return (yield from rows("select * from tally.lifetime_totals(%s, %s)", (user_id, dimension), DimensionTotal))

    @api_method
    def daily_totals(self, user_id: str, dimension: str, from_day: dt.date, to_day: dt.date) -> Call[list[DailyTotal]]:
        """Totals of a user per local day and value of ``dimension`` (days with activity only).

        Example: ``tally.daily_totals("user-42", "kind", date(2026, 11, 1), date(2026, 11, 30))``
        """
        return (
            yield from rows(
                "select * from tally.daily_totals(%s, %s, %s, %s)",
                (user_id, dimension, from_day, to_day),
                DailyTotal,
            )
        )

    @api_method
    def period_totals(self, user_id: str, at: dt.datetime | None = None) -> Call[list[PeriodTotal]]:
        """Billing-period counters per kind for the period containing ``at`` (default now).

        Example: ``{p.kind: p.quantity for p in tally.period_totals("user-42")}``
        """
        return (
            yield from rows(
                "select * from tally.period_totals(%s, coalesce(%s::timestamptz, now()))",
                (user_id, at),
                PeriodTotal,
            )
        )

    # ------------------------------------------------------------------ batches

    @api_method
    def record_many(
        self,
        events: Iterable[UsageEvent | Mapping[str, Any]],
        *,
        chunk_size: int = 5000,
        progress: Callable[[int], None] | None = None,
    ) -> Call[int]:
        """Record many events set-wise; returns how many were new (duplicates are skipped).

        Each chunk of ``chunk_size`` events is COPYed into the session's
        staging table and recorded set-wise by ``tally.record_usage_staged``
        (validation all-or-nothing per chunk, keys inserted in (user_id, event_id) order
        so concurrent overlapping batches cannot deadlock; a sequence is
        sorted as a whole). Each chunk is its own transaction in autocommit
        mode, a savepoint inside the caller's transaction. ``progress`` is called with
        the number of events sent after each chunk. ``events`` is read one chunk ahead: while
        the server records a chunk, a helper thread sorts and formats the next. Example::

            n = tally.record_many(UsageEvent(f"job-{i}", "user-42", "tts", 120) for i in range(100_000))
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        iterator: Iterator[UsageEvent | Mapping[str, Any]] = iter(events)
        if isinstance(events, Sequence):
            ordered = sorted((UsageEvent.from_mapping(e) for e in events), key=lambda e: (e.user_id, e.event_id))
            iterator = iter(ordered)

        def pull() -> list[UsageEvent]:
            return [UsageEvent.from_mapping(e) for e in itertools.islice(iterator, chunk_size)]

        def pull_ahead() -> tuple[list[UsageEvent], Exception | None]:
            # An event that cannot be read fails after the chunks before it are recorded, as without read-ahead.
            try:
                return pull(), None
            except Exception as exc:
                return [], exc

        # One chunk ahead: while the server records a chunk, a helper thread sorts and formats the next one
        # (the client's share of the work, as long as the server's on 2 cores). The events are read from
        # ``events`` in this thread only.
        ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgtally-record-many")
        try:
            chunk = pull()
            prepared = ahead.submit(_prepare_chunk, chunk)
            added = 0
            while chunk:
                following, failure = pull_ahead()
                rows, text = prepared.result()
                if following:
                    prepared = ahead.submit(_prepare_chunk, following)
                new = yield from copy_in(
                    "select tally.begin_staging()", STAGING_COPY, rows, "select tally.record_usage_staged()", text
                )
                added += int(new or 0)
                if progress:
                    progress(len(chunk))
                if failure is not None:
                    raise failure
                chunk = following
            return added
        finally:
            ahead.shutdown(wait=False, cancel_futures=True)
