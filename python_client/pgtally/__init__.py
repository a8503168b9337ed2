"""pgtally: a PostgreSQL-native usage ledger and engagement-analytics system.

Producers append to ``tally.usage_events``; triggers keep exact aggregates;
SQL functions are the read API, wrapped by :class:`Client`.
"""

from .aio import AsyncClient
from .client import Client
from .errors import (
    AttributesTooLarge,
    FieldTooLong,
    ImmutableLog,
    InvalidArgument,
    InvalidAttributes,
    InvalidCorrection,
    MissingField,
    NegativeAmount,
    PgTallyError,
    QuotaExceeded,
    ReadOnlyServer,
    SchemaNotInstalled,
    TimestampOutOfRange,
    UnknownDimension,
    UnknownStatus,
    ValidationError,
)
from .models import DailyTotal, DimensionTotal, PeriodTotal, UsageEvent, human_duration

__version__ = "0.8.0"

__all__ = [
    "AsyncClient",
    "AttributesTooLarge",
    "Client",
    "DailyTotal",
    "DimensionTotal",
    "FieldTooLong",
    "ImmutableLog",
    "InvalidArgument",
    "InvalidAttributes",
    "InvalidCorrection",
    "MissingField",
    "NegativeAmount",
    "PeriodTotal",
    "PgTallyError",
    "QuotaExceeded",
    "ReadOnlyServer",
    "SchemaNotInstalled",
    "TimestampOutOfRange",
    "UnknownDimension",
    "UnknownStatus",
    "UsageEvent",
    "ValidationError",
    "human_duration",
]
