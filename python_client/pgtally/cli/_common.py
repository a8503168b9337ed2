"""What every command of the `pgtally` command line shares: consoles, --dsn/--json options, connecting, JSON output."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import psycopg
from rich.console import Console

from ..errors import PgTallyError

console = Console()
err_console = Console(stderr=True)


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(_jsonable(obj), indent=2))


def require_dsn(dsn: str | None) -> str:
    if not dsn:
        raise click.UsageError("no database given: pass --dsn or set DATABASE_URL")
    return dsn


@contextmanager
def connect(dsn: str | None) -> Iterator[psycopg.Connection]:
    """Connect with an error message that says what to do."""
    dsn = require_dsn(dsn)
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise click.ClickException(
            f"cannot connect to the database ({exc}). Is the server running and the DSN right?"
        ) from exc
    with conn:
        installed = conn.execute("select to_regnamespace('tally') is not null").fetchone()
        if not installed or not installed[0]:
            raise click.ClickException(
                "the pgtally schema is not installed in this database: run `pgtally migrate` first"
            )
        yield conn


dsn_option = click.option("--dsn", envvar="DATABASE_URL", help="libpq DSN or URL (default: $DATABASE_URL).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


class InputError(click.ClickException):
    """A value the user gave is wrong (the database said so): one line on stderr, exit code 2 like click's usage errors."""

    exit_code = 2


def input_error(exc: Exception) -> click.ClickException:
    """The ClickException for a pgtally error: exit 2 for a refused argument or field, 1 otherwise."""
    if isinstance(exc, PgTallyError):
        field = f" (field {exc.field})" if exc.field else ""
        return InputError(f"{exc}{field}")
    if isinstance(exc, psycopg.Error):
        return click.ClickException(str(exc).splitlines()[0])
    return click.ClickException(str(exc))


#: Moments on the command line: an ISO date-time (with or without a UTC offset; naive is UTC) or a day.
MOMENT = click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"])


def utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A naive datetime from the command line is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment
