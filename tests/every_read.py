"""Every read of the SQL API, found in the catalog, called for one user.

The reads are the functions of schema ``tally`` that ``tally_reader`` or
``tally_analyst`` may execute, except internal helpers (a leading ``_``) and
those that write (refreshing the analytics, which the tests call on their own).
Each is called with every argument named in the given values (the user's id,
the moment ``at``, a range of days, ...), so no answer depends on today's date;
every other argument keeps its default. A new read function with a required
argument that has no value makes :func:`call_every_read` fail, so it cannot
silently escape the tests that use it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

# Functions executable by a reader or an analyst that are not reads (they write: refresh, e-mail subscriptions).
NOT_READS = {"refresh_analytics", "subscribe_reports", "unsubscribe_reports"}


def read_functions(conn: psycopg.Connection) -> list[tuple[str, list[tuple[str, str, bool]]]]:
    """(name, [(argument, type, has_default), ...]) of every read function, by name."""
    rows = conn.execute(
        """
        select p.proname, p.pronargs, p.pronargdefaults, coalesce(p.proargnames, '{}'),
               array(select format_type(t, null) from unnest(p.proargtypes) as t)
          from pg_proc p
         where p.pronamespace = 'tally'::regnamespace and p.prokind = 'f' and p.proname !~ '^_'
           and (has_function_privilege('tally_reader', p.oid, 'execute')
                or has_function_privilege('tally_analyst', p.oid, 'execute'))
         order by p.proname, p.oid
        """
    ).fetchall()
    found = []
    for name, nargs, ndefaults, argnames, argtypes in rows:
        if name in NOT_READS:
            continue
        args = [(argnames[i], argtypes[i], i >= nargs - ndefaults) for i in range(nargs)]
        found.append((name, args))
    return found


def argument_values(
    user_id: str, at: dt.datetime, first_day: dt.date, last_day: dt.date, kinds: list[str]
) -> dict[str, Any]:
    """Values for the arguments reads require (and for ``at``, so no read depends on today)."""
    return {
        "user_id": user_id,
        "at": at,
        "dimension": "kind",
        "from_day": first_day,
        "to_day": last_day,
        "from_at": dt.datetime.combine(first_day, dt.time(), dt.timezone.utc),
        "to_at": dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.timezone.utc),
        "steps": kinds,
        "kind": kinds[0],
    }


def call_every_read(conn: psycopg.Connection, values: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Calls every read function once with ``values``; returns its rows by function name."""
    results: dict[str, list[dict[str, Any]]] = {}
    for name, args in read_functions(conn):
        given = []
        for arg, typ, has_default in args:
            if arg in values:
                given.append((arg, typ))
            else:
                assert has_default, f"tally.{name}: no test value for its required argument {arg} ({typ})"
        query = sql.SQL("select * from tally.{}({})").format(
            sql.Identifier(name),
            sql.SQL(", ").join(
                sql.SQL("{} => {}::{}").format(sql.Identifier(a), sql.Placeholder(), sql.SQL(t)) for a, t in given
            ),
        )
        with conn.cursor(row_factory=dict_row) as cur:
            results[name] = cur.execute(query, [values[a] for a, _ in given]).fetchall()
    return results


def int_fields_hold_ints(obj: Any, where: str = "result") -> list[str]:
    """Fields of result dataclasses annotated int that hold something else (e.g. a Decimal)."""
    wrong: list[str] = []
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            wrong += int_fields_hold_ints(item, f"{where}[{i}]")
    elif isinstance(obj, dict):
        for k, item in obj.items():
            wrong += int_fields_hold_ints(item, f"{where}[{k!r}]")
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            expected = {"int": int, "int | None": int, "Decimal": Decimal, "Decimal | None": Decimal}.get(str(f.type))
            if expected is not None and not (value is None or isinstance(value, expected)):
                wrong.append(f"{where}.{f.name} = {value!r}")
            else:
                wrong += int_fields_hold_ints(value, f"{where}.{f.name}")
    return wrong
