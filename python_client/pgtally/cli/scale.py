"""Commands for a scaled-out install: distribute (Citus)."""

from __future__ import annotations

import click
import psycopg

from .. import distribute as citus
from ._common import console, dsn_option, emit_json, json_option, require_dsn


@click.command()
@dsn_option
@json_option
def distribute(dsn: str | None, as_json: bool) -> None:
    """Distribute pgtally over a Citus cluster (run against the coordinator, as a superuser).

    Per-user tables are distributed by user_id, co-located with the usage log;
    small shared tables become reference tables. Safe to run again: a second
    run changes nothing and says so.
    """
    dsn = require_dsn(dsn)
    try:
        result = citus.distribute(dsn)
    except citus.DistributeError as exc:
        raise click.ClickException(str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to the database ({exc})") from exc
    if as_json:
        emit_json({"changed": result.changed, **{k: v for k, v in vars(result).items()}})
        return
    if not result.changed:
        console.print("already distributed: nothing to change")
        return
    if result.settings or result.roles:
        console.print("set: " + ", ".join(result.settings + result.roles))
    if result.triggers_dropped:
        console.print(
            f"dropped {len(result.triggers_dropped)} statement triggers of the log (Citus allows row triggers only)"
        )
    if result.reference:
        console.print("reference tables: " + ", ".join(result.reference))
    if result.distributed:
        console.print("distributed by user_id: " + ", ".join(result.distributed))


COMMANDS = (distribute,)
