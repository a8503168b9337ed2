"""``POST /api/usage/events``: a batch of usage events from a producer in any language, as tally_writer.

The answer says, per event, ``recorded``, ``duplicate`` (its user's event_id was recorded before, or earlier in
the batch) or ``rejected`` with the database's SQLSTATE, field and message; the valid events of a batch are
recorded even when others are rejected.

How: the whole batch goes through the library's set-wise path (``record_many``: COPY into the staging table,
``tally.record_usage_staged``) inside a savepoint. It returns how many events were new; when that is every
distinct (user_id, event_id) (or none), each event's outcome follows. Otherwise (a mix of new and already recorded
events, or a rejection, which fails the set-wise path as a whole) the savepoint is rolled back and each
event is recorded alone with ``tally.record_usage`` in its own savepoint: originals first, then corrections,
each group in batch order. Everything commits together at the end.
"""

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Body, Depends

from ..aio import AsyncClient
from ..errors import PgTallyError
from ..models import UsageEvent
from .auth import Identity, Role
from .problems import problem_responses
from .schemas import EventResult, IngestEvent, IngestResponse

if TYPE_CHECKING:
    from .app import PgTallyAPI


class _Mixed(Exception):
    """The set-wise path recorded some events but not all: roll it back and record one by one."""


@dataclass(frozen=True)
class Outcome:
    status: Literal["recorded", "duplicate", "rejected"]
    sqlstate: str | None = None
    field: str | None = None
    message: str | None = None


RECORDED = Outcome("recorded")
DUPLICATE = Outcome("duplicate")


def to_usage_event(e: IngestEvent) -> UsageEvent:
    occurred = e.occurred_at
    if occurred is not None and occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=dt.timezone.utc)
    return UsageEvent(
        event_id=e.event_id,
        user_id=e.user_id,
        kind=e.kind,
        quantity=e.quantity,
        occurred_at=occurred,
        duration_ms=e.duration_ms,
        cost=e.cost,
        status=e.status,
        error_code=e.error_code,
        billable=e.billable,
        attributes=e.attributes,
        corrects_event_id=e.corrects_event_id,
    )


def _rejection(exc: Exception) -> Outcome:
    if isinstance(exc, PgTallyError):
        return Outcome("rejected", exc.sqlstate, exc.field, exc.message)
    assert isinstance(exc, psycopg.Error)
    diag = exc.diag
    # A value PostgreSQL itself refuses (out of bigint, a NUL character): its own SQLSTATE, class 22.
    return Outcome("rejected", exc.sqlstate or "22000", diag.column_name, diag.message_primary or str(exc))


def _rejectable(exc: Exception) -> bool:
    """Errors about the events themselves (not the connection): the batch can be retried one event at a time."""
    return isinstance(exc, PgTallyError) or (
        isinstance(exc, psycopg.Error) and not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    )


async def record_batch(conn: psycopg.AsyncConnection[Any], events: list[UsageEvent]) -> list[Outcome]:
    """Record ``events`` in the connection's transaction; the outcome of each, in order."""
    if not events:
        return []
    tally = AsyncClient(conn, retries=0)
    first: dict[tuple[str, str], int] = {}
    for i, e in enumerate(events):
        first.setdefault((e.user_id, e.event_id), i)
    try:
        async with conn.transaction():
            added = await tally.record_many(events, chunk_size=len(events))
            if added not in (0, len(first)):
                raise _Mixed
        return [RECORDED if first[(e.user_id, e.event_id)] == i and added else DUPLICATE for i, e in enumerate(events)]
    except _Mixed:
        pass
    except Exception as exc:
        if not _rejectable(exc):
            raise
    outcomes: list[Outcome] = [DUPLICATE] * len(events)
    # Originals before corrections, so that a correction may come before its original in the batch.
    for i in sorted(range(len(events)), key=lambda i: (events[i].corrects_event_id is not None, i)):
        e = events[i]
        try:
            async with conn.transaction():
                new = await tally.record(
                    e.event_id,
                    e.user_id,
                    e.kind,
                    e.quantity,
                    occurred_at=e.occurred_at,
                    duration_ms=e.duration_ms,
                    cost=e.cost,
                    status=e.status,
                    error_code=e.error_code,
                    billable=e.billable,
                    attributes=e.attributes,
                    corrects_event_id=e.corrects_event_id,
                )
            outcomes[i] = RECORDED if new else DUPLICATE
        except Exception as exc:
            if not _rejectable(exc):
                raise
            outcomes[i] = _rejection(exc)
    return outcomes


def build(api: "PgTallyAPI") -> APIRouter:
    router = APIRouter(tags=["ingest"], route_class=api.route)
    Writer = Annotated[Identity, Depends(api.requires(Role.writer))]

    @router.post(
        "/api/usage/events",
        response_model=IngestResponse,
        responses=problem_responses(400, 401, 403, 422, 500, 503),
        summary="Record a batch of usage events",
    )
    async def ingest(
        identity: Writer,
        events: Annotated[
            list[IngestEvent],
            Body(max_length=api.settings.max_batch, description="The events, a JSON array (the producer contract)."),
        ],
    ) -> IngestResponse:
        """Record usage events for any users (a writer token: a producer service). Each event is recorded once
        by its user and event_id (the key is per user) however often it is sent: a retried batch answers ``duplicate``. Values the
        database refuses reject that event only, with its SQLSTATE (PT001-PT008), field and message; an event
        that does not match the schema (a missing event_id, an attributes value that is not an object) fails
        the whole request with 422."""
        usage = [to_usage_event(e) for e in events]
        async with api.db.session(identity, Role.writer) as conn:
            outcomes = await record_batch(conn, usage)
        results = [
            EventResult(
                index=i, event_id=e.event_id, status=o.status, sqlstate=o.sqlstate, field=o.field, message=o.message
            )
            for i, (e, o) in enumerate(zip(usage, outcomes))
        ]
        recorded = sum(o.status == "recorded" for o in outcomes)
        duplicates = sum(o.status == "duplicate" for o in outcomes)
        rejected = [o.sqlstate or "" for o in outcomes if o.status == "rejected"]
        api.metrics.count_ingest(recorded, duplicates, rejected)
        return IngestResponse(recorded=recorded, duplicates=duplicates, rejected=len(rejected), results=results)

    return router
