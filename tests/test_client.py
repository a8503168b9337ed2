"""The Python client API: writes, validation errors, reads on a hand-built data set, pools, transactions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from pgtally import (
    AttributesTooLarge,
    Client,
    DailyTotal,
    DimensionTotal,
    FieldTooLong,
    ImmutableLog,
    InvalidArgument,
    InvalidAttributes,
    InvalidCorrection,
    MissingField,
    NegativeAmount,
    PeriodTotal,
    PgTallyError,
    TimestampOutOfRange,
    UnknownDimension,
    UnknownStatus,
    UsageEvent,
    ValidationError,
)
from pgtally.errors import translated

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 10, 10, 0, tzinfo=UTC)


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def client(conn: psycopg.Connection) -> Client:
    return Client(conn)


def count_events(conn: psycopg.Connection, pattern: str = "%") -> int:
    return conn.execute("select count(*) from tally.usage_events where event_id like %s", (pattern,)).fetchone()[0]


def kind_totals(client: Client, user: str) -> dict[str, tuple[int, int, int, Decimal, int]]:
    return {t.value: (t.events, t.quantity, t.duration_ms, t.cost, t.failures) for t in client.lifetime_totals(user)}


# --------------------------------------------------------------------------- record


def test_record_returns_true_then_false_for_duplicate(client: Client, conn: psycopg.Connection) -> None:
    assert client.record("job-1", "u1", "tts", 120, occurred_at=T0, attributes={"voice": "af_alloy"}) is True
    # Same key, different payload: skipped, the first version stays.
    assert client.record("job-1", "u1", "tts", 999, occurred_at=T0) is False
    assert count_events(conn) == 1
    assert kind_totals(client, "u1") == {"tts": (1, 120, None, Decimal(0), 0)}
    # The key is per user: another user's job-1 is that user's own event, counted once.
    assert client.record("job-1", "u2", "ocr", 5, occurred_at=T0) is True
    assert client.record("job-1", "u2", "ocr", 7, occurred_at=T0) is False
    assert count_events(conn) == 2
    assert kind_totals(client, "u2") == {"ocr": (1, 5, None, Decimal(0), 0)}
    client.merge_pending()
    assert client.record("job-1", "u1", "tts", 999) is False  # the window is forever, also after a merge
    assert kind_totals(client, "u1") == {"tts": (1, 120, None, Decimal(0), 0)}


def test_record_defaults(client: Client, conn: psycopg.Connection) -> None:
    before = conn.execute("select now()").fetchone()[0]
    assert client.record("d-1", "u1", "export") is True
    row = conn.execute(
        "select quantity, duration_ms, cost, status, billable, attributes, occurred_at >= %s, "
        "recorded_at is not null from tally.usage_events",
        (before,),
    ).fetchone()
    assert row == (0, None, Decimal(0), "succeeded", True, {}, True, True)
    assert kind_totals(client, "u1") == {"export": (1, 0, None, Decimal(0), 0)}


# --------------------------------------------------------------------------- validation

BAD_EVENTS: list[tuple[str, dict[str, Any], type[ValidationError], str]] = [
    ("empty event_id", dict(event_id=""), MissingField, "event_id"),
    ("empty user_id", dict(user_id=""), MissingField, "user_id"),
    ("empty kind", dict(kind=""), MissingField, "kind"),
    ("negative quantity", dict(quantity=-1), NegativeAmount, "quantity"),
    ("negative duration", dict(duration_ms=-1), NegativeAmount, "duration_ms"),
    ("negative cost", dict(cost="-0.01"), NegativeAmount, "cost"),
    ("NaN cost", dict(cost="NaN"), NegativeAmount, "cost"),
    ("unknown status", dict(status="done"), UnknownStatus, "status"),
    ("reversed without correction", dict(status="reversed"), UnknownStatus, "status"),
    ("before 2000", dict(occurred_at=at(1999, 12, 31, 23, 59)), TimestampOutOfRange, "occurred_at"),
    (
        "two days ahead",
        dict(occurred_at=dt.datetime.now(UTC) + dt.timedelta(days=2)),
        TimestampOutOfRange,
        "occurred_at",
    ),
    ("attributes over 16 kB", dict(attributes={"blob": os.urandom(12_000).hex()}), AttributesTooLarge, "attributes"),
    ("event_id too long", dict(event_id="e" * 201), FieldTooLong, "event_id"),
    ("user_id too long", dict(user_id="u" * 201), FieldTooLong, "user_id"),
    ("kind too long", dict(kind="k" * 65), FieldTooLong, "kind"),
    ("error_code too long", dict(status="failed", error_code="x" * 201), FieldTooLong, "error_code"),
    (
        "correction of unknown event",
        dict(corrects_event_id="nope", quantity=-1),
        InvalidCorrection,
        "corrects_event_id",
    ),
    (
        "correction of another user's event",
        dict(user_id="other", corrects_event_id="orig-1", quantity=-1),
        InvalidCorrection,
        "corrects_event_id",
    ),
    (
        "correction of itself",
        dict(event_id="self-1", corrects_event_id="self-1"),
        InvalidCorrection,
        "corrects_event_id",
    ),
]


def _bad(overrides: dict[str, Any]) -> dict[str, Any]:
    ev = dict(event_id="bad-1", user_id="u1", kind="tts", quantity=10, occurred_at=T0)
    ev.update(overrides)
    return ev


@pytest.mark.parametrize("overrides,exc,field", [b[1:] for b in BAD_EVENTS], ids=[b[0] for b in BAD_EVENTS])
def test_record_validation_error(
    client: Client, conn: psycopg.Connection, overrides: dict[str, Any], exc: type[ValidationError], field: str
) -> None:
    assert client.record("orig-1", "u1", "tts", 10, occurred_at=T0)
    ev = _bad(overrides)
    with pytest.raises(exc) as info:
        client.record(ev.pop("event_id"), ev.pop("user_id"), ev.pop("kind"), ev.pop("quantity"), **ev)
    assert type(info.value) is exc
    assert info.value.field == field
    assert info.value.sqlstate == exc.sqlstate
    assert isinstance(info.value.__cause__, psycopg.Error)
    assert count_events(conn) == 1
    assert kind_totals(client, "u1") == {"tts": (1, 10, None, Decimal(0), 0)}


@pytest.mark.parametrize("overrides,exc,field", [b[1:] for b in BAD_EVENTS], ids=[b[0] for b in BAD_EVENTS])
def test_record_many_bad_row_raises_and_writes_nothing(
    client: Client, conn: psycopg.Connection, overrides: dict[str, Any], exc: type[ValidationError], field: str
) -> None:
    assert client.record("orig-1", "u1", "tts", 10, occurred_at=T0)
    good = [UsageEvent(f"good-{i}", "u1", "tts", 1, occurred_at=T0) for i in range(5)]
    batch = [*good[:3], UsageEvent(**_bad(overrides)), *good[3:]]
    with pytest.raises(exc) as info:
        client.record_many(batch)
    assert info.value.field == field
    assert count_events(conn) == 1
    assert kind_totals(client, "u1") == {"tts": (1, 10, None, Decimal(0), 0)}
    # The same batch without the bad row goes through completely.
    assert client.record_many(good) == 5
    assert kind_totals(client, "u1") == {"tts": (6, 15, None, Decimal(0), 0)}


def test_attributes_must_be_an_object(conn: psycopg.Connection) -> None:
    # The client always sends a dict, so this is reachable only from SQL; the error still maps.
    with pytest.raises(InvalidAttributes) as info, translated():
        conn.execute("select tally.record_usage('a-1', 'u1', 'tts', 1, attributes => '[1, 2]')")
    assert info.value.field == "attributes"


def test_corrections_are_validated(client: Client) -> None:
    assert client.record("ok-1", "u1", "tts", 10, occurred_at=T0)
    assert client.record("fail-1", "u1", "tts", 10, occurred_at=T0, status="failed")
    for call in (
        lambda: client.reverse("u1", "missing", "r-1"),
        lambda: client.amend("u1", "missing", "a-1", quantity_delta=1),
        lambda: client.reverse("u1", "fail-1", "r-2"),
        lambda: client.amend("u1", "fail-1", "a-2", quantity_delta=1),
        # The key is per user: another user's event of that id is not an original of u2.
        lambda: client.reverse("u2", "ok-1", "r-4"),
    ):
        with pytest.raises(InvalidCorrection) as info:
            call()
        assert info.value.field == "corrects_event_id"
    assert client.reverse("u1", "ok-1", "ok-1:refund") is True
    assert client.reverse("u1", "ok-1", "ok-1:refund") is False  # a retry of the same reversal
    with pytest.raises(InvalidCorrection):
        client.reverse("u1", "ok-1", "ok-1:refund-again")  # a second, different reversal
    with pytest.raises(InvalidCorrection):
        client.reverse("u1", "ok-1:refund", "r-3")  # a reversal is not an original
    assert kind_totals(client, "u1") == {"tts": (0, 0, None, Decimal(0), 1)}


def test_a_resent_batch_with_a_new_correction_of_its_original_records_the_correction(client: Client) -> None:
    """A producer resends a batch whose original was recorded before, now with a reversal of it: the
    original is a duplicate, the reversal is validated against the recorded original and counts."""
    assert client.record_many([UsageEvent("o-1", "u1", "tts", 10, occurred_at=T0)]) == 1
    batch = [
        UsageEvent("o-1", "u1", "tts", 10, occurred_at=T0),
        UsageEvent("o-1:refund", "u1", "tts", -10, occurred_at=T0, status="reversed", corrects_event_id="o-1"),
    ]
    assert client.record_many(batch) == 1
    assert client.record_many(batch) == 0  # and resending it again is a duplicate, not an error
    assert kind_totals(client, "u1") == {"tts": (0, 0, None, Decimal(0), 0)}


def test_immutable_log_and_argument_errors(client: Client, conn: psycopg.Connection) -> None:
    assert client.record("e-1", "u1", "tts", 1)
    for sql in (
        "update tally.usage_events set quantity = 2",
        "delete from tally.usage_events",
        "truncate tally.usage_events",
    ):
        with pytest.raises(ImmutableLog), translated():
            conn.execute(sql)
    with pytest.raises(InvalidArgument) as info:
        client.daily_totals("u1", "kind", dt.date(2024, 3, 2), dt.date(2024, 3, 1))
    assert info.value.field == "to_day"
    with pytest.raises(InvalidArgument) as info:
        client.merge_pending(0)
    assert info.value.field == "max_rows"
    with pytest.raises(InvalidArgument) as info:
        client.set_user_settings("u1", time_zone="Mars/Olympus_Mons")
    assert info.value.field == "time_zone"
    with pytest.raises(InvalidArgument) as info:
        client.set_user_settings("u1", billing_anchor_day=29)
    assert info.value.field == "billing_anchor_day"
    assert kind_totals(client, "u1") == {"tts": (1, 1, None, Decimal(0), 0)}


def test_unknown_dimension(client: Client) -> None:
    assert client.record("e-1", "u1", "tts", 1)
    for call in (
        lambda: client.lifetime_totals("u1", "colour"),
        lambda: client.daily_totals("u1", "colour", dt.date(2024, 1, 1), dt.date(2024, 1, 2)),
    ):
        with pytest.raises(UnknownDimension) as info:
            call()
        assert info.value.field == "dimension"
        assert isinstance(info.value, PgTallyError) and not isinstance(info.value, ValidationError)


# --------------------------------------------------------------------------- record_many


def test_record_many_counts_new_events_across_chunks(client: Client, conn: psycopg.Connection) -> None:
    assert client.record("job-003", "u1", "tts", 1000, occurred_at=T0)  # recorded before: a duplicate
    events = [UsageEvent(f"job-{i:03d}", "u1", "tts", i, occurred_at=T0 + dt.timedelta(minutes=i)) for i in range(25)]
    events += [
        UsageEvent("job-007", "u1", "tts", 5000, occurred_at=T0),  # duplicate inside the batch
        {"event_id": "job-100", "user_id": "u1", "kind": "ocr", "quantity": 3, "occurred_at": T0},
    ]
    progress: list[int] = []
    assert client.record_many(events, chunk_size=10, progress=progress.append) == 25  # 27 sent, 2 duplicates
    assert progress == [10, 10, 7]
    assert count_events(conn) == 26
    # job-003 keeps its first version (1000), job-007 its first occurrence (7).
    assert kind_totals(client, "u1") == {
        "tts": (25, 1000 + sum(range(25)) - 3, None, Decimal(0), 0),
        "ocr": (1, 3, None, Decimal(0), 0),
    }
    assert client.record_many(events, chunk_size=10) == 0  # a full retry adds nothing
    assert client.record_many([]) == 0
    # An iterator (not a sequence) is chunked as it comes.
    assert (
        client.record_many((UsageEvent(f"gen-{i}", "u1", "ocr", 1, occurred_at=T0) for i in range(12)), chunk_size=5)
        == 12
    )
    assert kind_totals(client, "u1")["ocr"] == (13, 15, None, Decimal(0), 0)
    with pytest.raises(ValueError):
        client.record_many(events, chunk_size=0)


@pytest.mark.parametrize("encoding", ["UTF8", "LATIN1"])
def test_record_many_stores_text_exactly_whatever_the_connections_encoding(
    conn: psycopg.Connection, encoding: str
) -> None:
    """The chunk formatted ahead (UTF-8) is used only on a UTF-8 connection; any other encoding gets rows."""
    conn.execute(f"set client_encoding to '{encoding}'")
    events = [
        UsageEvent(f"enc-{i}", "usér-é", "tts", i, occurred_at=T0, attributes={"voice": "Zoë", "n": str(i)})
        for i in range(30)
    ]
    assert Client(conn).record_many(iter(events), chunk_size=7) == 30
    rows = conn.execute(
        "select user_id, attributes->>'voice', count(*) from tally.usage_events group by 1, 2"
    ).fetchall()
    assert rows == [("usér-é", "Zoë", 30)]


def test_record_many_reads_one_chunk_ahead_and_stops_at_a_bad_event(client: Client, conn: psycopg.Connection) -> None:
    """A bad event fails its own chunk; the chunks before it are recorded, nothing after it is sent."""

    def events() -> Iterator[UsageEvent | dict[str, object]]:
        for i in range(10):
            yield UsageEvent(f"ahead-{i}", "u1", "tts", 1, occurred_at=T0)
        yield {"event_id": "ahead-bad", "user_id": "u1", "kind": "tts", "quantity": 1, "no_such_field": 1}
        for i in range(10, 20):
            yield UsageEvent(f"ahead-{i}", "u1", "tts", 1, occurred_at=T0)

    with pytest.raises(TypeError):
        client.record_many(events(), chunk_size=4)
    # Chunks ahead-0..3 and ahead-4..7 are recorded; the third chunk (ahead-8, ahead-9, the bad one) is not.
    assert count_events(conn, "ahead-%") == 8


def test_the_chunk_formatted_ahead_leaves_the_callers_list_alone() -> None:
    """The helper thread sorts a copy: sorting the caller's list in place made it look empty to the other thread
    meanwhile, and record_many then returned 0 without recording anything."""
    from pgtally.core import _prepare_chunk

    chunk = [UsageEvent(f"e-{i}", f"u{9 - i}", "tts", i, occurred_at=T0) for i in range(10)]
    before = list(chunk)
    rows, text = _prepare_chunk(chunk)
    assert chunk == before  # same order: not sorted in place
    assert [r[1] for r in rows] == sorted(f"u{i}" for i in range(10))
    assert text is None or text.count(b"\n") == 10


def test_record_many_first_occurrence_in_batch_wins(client: Client) -> None:
    batch = [
        UsageEvent("b", "u1", "tts", 1, occurred_at=T0),
        UsageEvent("a", "u1", "tts", 10, occurred_at=T0),
        UsageEvent("b", "u1", "tts", 100, occurred_at=T0),
        UsageEvent("a", "u1", "tts", 1000, occurred_at=T0),
    ]
    assert client.record_many(batch) == 2
    assert kind_totals(client, "u1") == {"tts": (2, 11, None, Decimal(0), 0)}


def test_record_many_bad_row_in_later_chunk_retry_is_exact(client: Client) -> None:
    """Chunks commit one by one (documented); a fixed retry then counts every event exactly once."""
    events = [UsageEvent(f"job-{i:02d}", "u1", "tts", 1, occurred_at=T0) for i in range(10)]
    bad = [*events[:7], UsageEvent("job-07", "u1", "tts", -1, occurred_at=T0), *events[8:]]
    with pytest.raises(NegativeAmount):
        client.record_many(bad, chunk_size=4)
    # Chunks are job-00..03 (committed) and job-04..07 (rejected as a whole); job-08..09 never sent.
    assert kind_totals(client, "u1") == {"tts": (4, 4, None, Decimal(0), 0)}
    assert client.record_many(events, chunk_size=4) == 6
    assert kind_totals(client, "u1") == {"tts": (10, 10, None, Decimal(0), 0)}


def test_record_many_correction_with_its_original_in_one_batch(client: Client) -> None:
    """A correction may follow its original in the same batch, whatever the two event_ids are.

    record_usage_batch accepts an in-batch original when it comes earlier in the batch, but
    record_many re-sorts the batch by event_id, so a correction whose id sorts before its
    original's ('a-fix' < 'z-orig') is rejected as naming no recorded event.
    """
    assert (
        client.record_many(
            [
                UsageEvent("a-orig", "u1", "tts", 10, occurred_at=T0),
                UsageEvent("z-fix", "u1", "tts", -4, occurred_at=T0, corrects_event_id="a-orig"),
            ]
        )
        == 2
    )
    assert (
        client.record_many(
            [
                UsageEvent("z-orig", "u2", "tts", 10, occurred_at=T0),
                UsageEvent("a-fix", "u2", "tts", -4, occurred_at=T0, corrects_event_id="z-orig"),
            ]
        )
        == 2
    )
    assert kind_totals(client, "u1") == {"tts": (1, 6, None, Decimal(0), 0)}
    assert kind_totals(client, "u2") == {"tts": (1, 6, None, Decimal(0), 0)}


# --------------------------------------------------------------------------- reads on a hand-built data set


@pytest.fixture
def dataset(client: Client) -> Client:
    """User alice in Europe/Berlin, billing periods starting on the 15th.

    e3 at 2024-03-14 23:30 UTC is 2024-03-15 00:30 in Berlin (new local day and new period);
    e2 at 2024-03-30 23:30 UTC is 2024-03-31 00:30 in Berlin.
    """
    client.set_user_settings("alice", time_zone="Europe/Berlin", billing_anchor_day=15)
    kokoro = {"voice": "af_alloy", "model": "kokoro"}
    assert client.record(
        "e1",
        "alice",
        "tts",
        1000,
        occurred_at=at(2024, 3, 10, 10),
        duration_ms=60_000,
        cost="0.0100",
        attributes=kokoro,
    )
    assert client.record(
        "e2",
        "alice",
        "tts",
        500,
        occurred_at=at(2024, 3, 30, 23, 30),
        cost=Decimal("0.005"),
        attributes={"voice": "bm_lewis", "model": "kokoro"},
    )
    assert (
        client.record_many(
            [
                UsageEvent(
                    "e3",
                    "alice",
                    "ocr",
                    3,
                    occurred_at=at(2024, 3, 14, 23, 30),
                    duration_ms=1500,
                    cost="0.003",
                    attributes={"model": "tesseract", "voice": ""},
                ),
                UsageEvent(
                    "e4",
                    "alice",
                    "tts",
                    200,
                    occurred_at=at(2024, 3, 10, 11),
                    duration_ms=10,
                    cost="0.002",
                    status="failed",
                    error_code="provider_timeout",
                    attributes={"voice": "af_alloy"},
                ),
                UsageEvent(
                    "e5",
                    "alice",
                    "tts",
                    300,
                    occurred_at=at(2024, 3, 11, 8),
                    status="cancelled",
                    attributes={"voice": "af_alloy"},
                ),
                UsageEvent(
                    "e6",
                    "alice",
                    "tts",
                    50,
                    occurred_at=at(2024, 3, 20, 12),
                    duration_ms=1000,
                    billable=False,
                    attributes={"voice": "af_alloy"},
                ),
            ]
        )
        == 4
    )
    assert (
        client.amend("alice", "e1", "e1:recount", quantity_delta=100, duration_ms_delta=500, cost_delta="0.001") is True
    )
    assert client.reverse("alice", "e2", "e2:refund") is True
    assert client.record("e1", "alice", "tts", 7777, occurred_at=at(2024, 3, 10, 10)) is False
    # Another user's activity never shows up in alice's numbers.
    assert client.record("x1", "bob", "tts", 42, occurred_at=at(2024, 3, 10, 10), attributes=kokoro)
    return client


LIFETIME = {
    "kind": [
        DimensionTotal(
            "tts",
            events=2,
            quantity=1150,
            duration_ms=61_500,
            cost=Decimal("0.0110"),
            first_at=at(2024, 3, 10, 10),
            last_at=at(2024, 3, 30, 23, 30),
            failures=1,
        ),
        DimensionTotal(
            "ocr",
            events=1,
            quantity=3,
            duration_ms=1500,
            cost=Decimal("0.003"),
            first_at=at(2024, 3, 14, 23, 30),
            last_at=at(2024, 3, 14, 23, 30),
            failures=0,
        ),
    ],
    "voice": [
        DimensionTotal(
            "af_alloy",
            events=2,
            quantity=1150,
            duration_ms=61_500,
            cost=Decimal("0.0110"),
            first_at=at(2024, 3, 10, 10),
            last_at=at(2024, 3, 20, 12),
            failures=1,
        ),
        DimensionTotal(
            "bm_lewis",
            events=0,
            quantity=0,
            duration_ms=None,  # its one timed event was reversed: no duration is known
            cost=Decimal(0),
            first_at=at(2024, 3, 30, 23, 30),
            last_at=at(2024, 3, 30, 23, 30),
            failures=0,
        ),
    ],
    "model": [
        DimensionTotal(
            "kokoro",
            events=1,
            quantity=1100,
            duration_ms=60_500,
            cost=Decimal("0.0110"),
            first_at=at(2024, 3, 10, 10),
            last_at=at(2024, 3, 30, 23, 30),
            failures=0,
        ),
        DimensionTotal(
            "tesseract",
            events=1,
            quantity=3,
            duration_ms=1500,
            cost=Decimal("0.003"),
            first_at=at(2024, 3, 14, 23, 30),
            last_at=at(2024, 3, 14, 23, 30),
            failures=0,
        ),
    ],
}

DAILY_KIND = [
    DailyTotal(
        dt.date(2024, 3, 10), "tts", events=1, quantity=1100, duration_ms=60_500, cost=Decimal("0.011"), failures=1
    ),
    DailyTotal(dt.date(2024, 3, 11), "tts", events=0, quantity=0, duration_ms=0, cost=Decimal(0), failures=0),
    DailyTotal(dt.date(2024, 3, 15), "ocr", events=1, quantity=3, duration_ms=1500, cost=Decimal("0.003"), failures=0),
    DailyTotal(dt.date(2024, 3, 20), "tts", events=1, quantity=50, duration_ms=1000, cost=Decimal(0), failures=0),
    DailyTotal(dt.date(2024, 3, 31), "tts", events=0, quantity=0, duration_ms=0, cost=Decimal(0), failures=0),
]


@pytest.mark.parametrize("merged", [False, True], ids=["pending", "merged"])
def test_reads_on_hand_built_data(dataset: Client, merged: bool) -> None:
    client = dataset
    if merged:
        assert client.merge_pending() == 9  # 8 accepted events of alice + 1 of bob
    for dim, expected in LIFETIME.items():
        assert client.lifetime_totals("alice", dim) == expected, dim

    assert client.daily_totals("alice", "kind", dt.date(2024, 3, 1), dt.date(2024, 3, 31)) == DAILY_KIND
    # Range bounds are inclusive local days: e2 is on Berlin's 03-31, not UTC's 03-30.
    assert client.daily_totals("alice", "kind", dt.date(2024, 3, 11), dt.date(2024, 3, 30)) == DAILY_KIND[1:4]
    assert client.daily_totals("alice", "kind", dt.date(2024, 4, 1), dt.date(2024, 4, 30)) == []
    assert client.daily_totals("alice", "voice", dt.date(2024, 3, 14), dt.date(2024, 3, 15)) == []  # e3: voice ""
    assert client.daily_totals("alice", "model", dt.date(2024, 3, 10), dt.date(2024, 3, 10)) == [
        DailyTotal(dt.date(2024, 3, 10), "kokoro", 1, 1100, 60_500, Decimal("0.011"), 0)
    ]

    # Period containing 2024-03-20: 03-15 .. 04-15 (e2 and its refund, e3; e6 is not billable).
    assert client.period_totals("alice", at(2024, 3, 20, 12)) == [
        PeriodTotal(dt.date(2024, 3, 15), dt.date(2024, 4, 15), "ocr", 1, 3, 1500, Decimal("0.003")),
        PeriodTotal(dt.date(2024, 3, 15), dt.date(2024, 4, 15), "tts", 0, 0, 0, Decimal(0)),
    ]
    # Period containing 2024-03-12: 02-15 .. 03-15 (e1 and its recount; e4 failed, e5 cancelled).
    assert client.period_totals("alice", at(2024, 3, 12)) == [
        PeriodTotal(dt.date(2024, 2, 15), dt.date(2024, 3, 15), "tts", 1, 1100, 60_500, Decimal("0.011")),
    ]
    # 2024-03-14 23:15 UTC is already 03-15 in Berlin: the new period.
    assert [p.period_start for p in client.period_totals("alice", at(2024, 3, 14, 23, 15))] == [
        dt.date(2024, 3, 15)
    ] * 2
    assert client.period_totals("alice", at(2024, 5, 1)) == []
    assert client.period_totals("alice") == []  # now: nothing this period
    assert client.lifetime_totals("nobody") == []


def test_results_are_frozen_dataclasses(dataset: Client) -> None:
    rows: list[Any] = [
        *dataset.lifetime_totals("alice", "kind"),
        *dataset.daily_totals("alice", "kind", dt.date(2024, 3, 1), dt.date(2024, 3, 31)),
        *dataset.period_totals("alice", at(2024, 3, 20)),
    ]
    assert {type(r) for r in rows} == {DimensionTotal, DailyTotal, PeriodTotal}
    for r in rows:
        assert dataclasses.is_dataclass(r)
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.events = 0  # type: ignore[misc]
        assert isinstance(r.cost, Decimal) and isinstance(r.events, int)
    assert dataset.lifetime_totals("alice", "kind")[0].duration_text == "1 min 02 s"  # 61 500 ms


def test_declared_combined_dimension(client: Client) -> None:
    client.declare_dimension("model_voice", ["model", "voice"], "model and voice")
    client.declare_dimension("kind_voice", ["kind", "voice"])
    assert client.record("e1", "u1", "tts", 10, occurred_at=T0, attributes={"model": "kokoro", "voice": "af"})
    assert client.record("e2", "u1", "tts", 5, occurred_at=T0, attributes={"model": "kokoro"})  # no voice
    assert client.record("e3", "u1", "tts", 1, occurred_at=T0, attributes={"model": "kokoro", "voice": ""})
    for _ in range(2):
        assert [(t.value, t.events, t.quantity) for t in client.lifetime_totals("u1", "model_voice")] == [
            ("kokoro/af", 1, 10)
        ]
        assert [(t.value, t.events, t.quantity) for t in client.lifetime_totals("u1", "kind_voice")] == [
            ("tts/af", 1, 10)
        ]
        client.merge_pending()


# --------------------------------------------------------------------------- pools and transactions


def test_client_on_a_connection_pool(dsn: str) -> None:
    with ConnectionPool(dsn, min_size=1, max_size=3, open=True) as pool:
        client = Client(pool)
        client.set_user_settings("u1", time_zone="America/Los_Angeles")
        assert client.record("p-1", "u1", "tts", 10, occurred_at=T0) is True
        assert client.record("p-1", "u1", "tts", 10, occurred_at=T0) is False
        assert (
            client.record_many(
                [UsageEvent(f"p-{i}", "u1", "ocr", 2, occurred_at=T0) for i in range(2, 8)], chunk_size=4
            )
            == 6
        )
        assert client.amend("u1", "p-1", "p-1:fix", quantity_delta=5) is True
        with pytest.raises(NegativeAmount):
            client.record("p-bad", "u1", "tts", -1)
        assert client.record("p-9", "u1", "tts", 1, occurred_at=T0) is True  # the pool survived the error
        assert kind_totals(client, "u1") == {"tts": (2, 16, None, Decimal(0), 0), "ocr": (6, 12, None, Decimal(0), 0)}
        # 2024-03-10 10:00 UTC is 03-10 02:00 in Los Angeles.
        assert [
            (d.day, d.value, d.quantity)
            for d in client.daily_totals("u1", "kind", dt.date(2024, 3, 1), dt.date(2024, 3, 31))
        ] == [(dt.date(2024, 3, 10), "ocr", 12), (dt.date(2024, 3, 10), "tts", 16)]
        assert client.merge_pending() == 9
    # Everything was committed: another connection sees it.
    with psycopg.connect(dsn) as other:
        assert other.execute("select count(*) from tally.usage_events").fetchone() == (9,)


def test_record_rolls_back_with_the_callers_transaction(dsn: str, client: Client) -> None:
    with psycopg.connect(dsn) as tx_conn:  # not autocommit
        tx_client = Client(tx_conn)
        with pytest.raises(RuntimeError), tx_conn.transaction():
            tx_conn.execute("create table public.orders (id int)")
            assert tx_client.record("r-1", "u1", "tts", 10, occurred_at=T0) is True
            assert tx_client.record_many([UsageEvent("r-2", "u1", "tts", 5, occurred_at=T0)]) == 1
            assert kind_totals(tx_client, "u1") == {"tts": (2, 15, None, Decimal(0), 0)}  # own writes visible
            assert client.lifetime_totals("u1") == []  # others do not see them yet
            raise RuntimeError("the caller's work failed")
        assert kind_totals(tx_client, "u1") == {}
        assert tx_conn.execute("select to_regclass('public.orders')").fetchone() == (None,)
        # The keys were rolled back too: the same event_ids are new again, and commit with the caller.
        with tx_conn.transaction():
            assert tx_client.record("r-1", "u1", "tts", 10, occurred_at=T0) is True
            assert tx_client.record_many([UsageEvent("r-2", "u1", "tts", 5, occurred_at=T0)]) == 1
    assert kind_totals(client, "u1") == {"tts": (2, 15, None, Decimal(0), 0)}


def test_validation_error_inside_callers_transaction_keeps_it_usable(dsn: str, client: Client) -> None:
    """record_many uses a savepoint: its failure does not abort the caller's transaction."""
    with psycopg.connect(dsn) as tx_conn:
        tx_client = Client(tx_conn)
        with tx_conn.transaction():
            assert tx_client.record("k-1", "u1", "tts", 1, occurred_at=T0)
            with pytest.raises(NegativeAmount):
                tx_client.record_many(
                    [
                        UsageEvent("k-2", "u1", "tts", 1, occurred_at=T0),
                        UsageEvent("k-3", "u1", "tts", -1, occurred_at=T0),
                    ]
                )
            assert tx_client.record("k-4", "u1", "tts", 1, occurred_at=T0)
    assert kind_totals(client, "u1") == {"tts": (2, 2, None, Decimal(0), 0)}
    with psycopg.connect(dsn, autocommit=True) as other:
        assert count_events(other) == 2
