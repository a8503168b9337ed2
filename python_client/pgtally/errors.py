"""Exceptions raised by the pgtally client, one per SQLSTATE of class PT.

The database raises ``PTnnn`` errors whose message names the field; the client
re-raises them as these classes, keeping ``sqlstate``, ``field`` and the
original psycopg error as ``__cause__``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg


class PgTallyError(Exception):
    """Base class of every pgtally error."""

    sqlstate: str | None = None

    def __init__(self, message: str, *, field: str | None = None, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if sqlstate:
            self.sqlstate = sqlstate


class ValidationError(PgTallyError):
    """An event was rejected; ``field`` names the offending column."""


class MissingField(ValidationError):
    sqlstate = "PT001"


class NegativeAmount(ValidationError):
    sqlstate = "PT002"


class UnknownStatus(ValidationError):
    sqlstate = "PT003"


class TimestampOutOfRange(ValidationError):
    sqlstate = "PT004"


class InvalidAttributes(ValidationError):
    sqlstate = "PT005"


class AttributesTooLarge(ValidationError):
    sqlstate = "PT006"


class FieldTooLong(ValidationError):
    sqlstate = "PT007"


class InvalidCorrection(ValidationError):
    sqlstate = "PT008"


class ImmutableLog(PgTallyError):
    sqlstate = "PT009"


class UnknownDimension(PgTallyError):
    sqlstate = "PT010"


class InvalidArgument(PgTallyError):
    sqlstate = "PT011"


class QuotaExceeded(PgTallyError):
    sqlstate = "PT012"


class ReadOnlyServer(PgTallyError):
    """The server is a read-only hot standby (or the transaction is READ ONLY): writes, quota checks and
    refreshes must go to the primary. Raised for pgtally's PT013 (``tally.check_quota`` on a standby) and for
    PostgreSQL's 25006 (read_only_sql_transaction), with ``sqlstate`` telling which."""

    sqlstate = "PT013"


class SchemaNotInstalled(PgTallyError):
    """The database has no (or an outdated) pgtally schema: run `pgtally migrate`."""


BY_SQLSTATE: dict[str, type[PgTallyError]] = {
    cls.sqlstate: cls
    for cls in (
        MissingField,
        NegativeAmount,
        UnknownStatus,
        TimestampOutOfRange,
        InvalidAttributes,
        AttributesTooLarge,
        FieldTooLong,
        InvalidCorrection,
        ImmutableLog,
        UnknownDimension,
        InvalidArgument,
        QuotaExceeded,
        ReadOnlyServer,
    )
    if cls.sqlstate
}


def from_psycopg(exc: psycopg.Error) -> PgTallyError | None:
    """The pgtally exception for a database error, or None when it is not one of ours."""
    state = exc.sqlstate or ""
    diag = exc.diag
    if state in BY_SQLSTATE:
        return BY_SQLSTATE[state](diag.message_primary or str(exc), field=diag.column_name, sqlstate=state)
    if state == "25006":
        return ReadOnlyServer(
            f"{diag.message_primary or exc}: this server is a read-only hot standby (or the transaction is"
            " READ ONLY); send writes, quota checks and refreshes to the primary"
            " (pgtally.Client(primary, replicas=[...]) routes them there)",
            sqlstate=state,
        )
    if state in ("42883", "42P01", "3F000") and "tally" in (diag.message_primary or ""):
        return SchemaNotInstalled(
            f"{diag.message_primary}: the pgtally schema is missing or outdated; run `pgtally migrate`",
            sqlstate=state,
        )
    return None


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Re-raise pgtally's database errors as their exception classes."""
    try:
        yield
    except psycopg.Error as exc:
        mapped = from_psycopg(exc)
        if mapped is None:
            raise
        raise mapped from exc
