"""Record usage inside a SQLAlchemy session's transaction.

The usage row is written on the session's own connection, so it commits or
rolls back together with the business rows of the same unit of work::

    from pgtally.sqlalchemy import record_usage

    with Session(engine) as session, session.begin():
        session.add(Export(document_id=doc.id, format="mp3"))
        record_usage(session, event_id=f"export-{job_id}", user_id=user.id, kind="export",
                     quantity=1, attributes={"format": "mp3"})
    # both rows are committed here, or neither is
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .errors import from_psycopg

_RECORD = text(
    "select tally.record_usage("
    "event_id => :event_id, user_id => :user_id, kind => :kind, quantity => :quantity,"
    " occurred_at => coalesce(cast(:occurred_at as timestamptz), now()), duration_ms => :duration_ms,"
    " cost => cast(:cost as numeric), status => :status, error_code => :error_code, billable => :billable,"
    " attributes => cast(:attributes as jsonb), corrects_event_id => :corrects_event_id)"
)


def record_usage(
    session: Session,
    *,
    event_id: str,
    user_id: str,
    kind: str,
    quantity: int = 0,
    occurred_at: dt.datetime | None = None,
    duration_ms: int | None = None,
    cost: Decimal | int | str = 0,
    status: str = "succeeded",
    error_code: str | None = None,
    billable: bool = True,
    attributes: Mapping[str, Any] | None = None,
    corrects_event_id: str | None = None,
) -> bool:
    """Record one usage event in the session's transaction; True when new, False for a duplicate event_id.

    Errors of class PT are raised as :mod:`pgtally.errors` exceptions (the
    session's transaction is then failed, as for any database error).
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
        attributes=json.dumps(dict(attributes or {})),
        corrects_event_id=corrects_event_id,
    )
    try:
        return bool(session.execute(_RECORD, params).scalar_one())
    except DBAPIError as exc:
        mapped = from_psycopg(exc.orig) if exc.orig is not None else None  # type: ignore[arg-type]
        if mapped is None:
            raise
        raise mapped from exc
