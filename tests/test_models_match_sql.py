"""Every result dataclass has exactly the columns of the SQL function that fills it.

The pairs are found by running each API method of the client against a
recorder instead of a database: every query it yields names a ``tally.``
function and the dataclass its rows become. The columns come from the catalog
(the function's OUT and TABLE arguments), so renaming, adding or dropping a
column on either side fails here instead of turning into a silently missing
field (``pgtally.models.build`` ignores unknown columns).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
import io
import re
from typing import Any

import psycopg
import pytest

from pgtally import admin_models, models, user_models
from pgtally._query import Query, Rows, api_method
from pgtally.admin import AdminApi
from pgtally.core import CoreApi
from pgtally.user_reads import UserReadsMixin

_FUNCTION = re.compile(r"\btally\.(\w+)\(")
#: Dataclasses that are not one row of one function: the batch input and results assembled from several reads.
NOT_A_ROW = {models.UsageEvent, user_models.SummaryCard, admin_models.Dashboard}
#: The summary card's rows: one function, a ``section`` column telling which of these a row becomes.
SUMMARY_CARD = (user_models.SummaryLine, user_models.PeriodUsage)


def _argument(parameter: inspect.Parameter) -> Any:
    """A plausible value for a required parameter, by its annotation (the methods only put them in params)."""
    annotation = str(parameter.annotation)
    if "Iterable[" in annotation or "Sequence[" in annotation:
        return []
    if "IO[" in annotation:
        return io.BytesIO()
    if "dt.datetime" in annotation:
        return dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    if "dt.date" in annotation:
        return dt.date(2026, 3, 1)
    if "int" in annotation:
        return 1
    return "x"


def _recorded_queries(method: api_method[..., Any]) -> list[Query]:
    """The queries an API method yields, each answered with no rows (or 0)."""
    parameters = list(inspect.signature(method.fn).parameters.values())[1:]
    args = [_argument(p) for p in parameters if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    kwargs = {p.name: _argument(p) for p in parameters if p.default is p.empty and p.kind is p.KEYWORD_ONLY}
    call = method.call(object(), *args, **kwargs)  # no method uses its self but to call another
    queries: list[Query] = []
    answer: Any = None
    try:
        while True:
            query = call.send(answer)
            queries.append(query)
            answer = [] if isinstance(query, Rows) else 0
    except (StopIteration, IndexError):  # IndexError: a method reading the first of its (here no) rows
        return queries


def _filled_by() -> dict[type, set[str]]:
    """Each result dataclass and the tally functions whose rows the client turns into it."""
    found: dict[type, set[str]] = {}
    for api in (CoreApi, UserReadsMixin, AdminApi):
        for name, value in vars(api).items():
            if not isinstance(value, api_method):
                continue
            for query in _recorded_queries(value):
                if isinstance(query, Rows) and isinstance(query.build, functools.partial):
                    cls = query.build.args[0]
                    found.setdefault(cls, set()).update(_FUNCTION.findall(query.sql))
                elif isinstance(query, Rows):
                    assert name == "summary_card", f"{api.__name__}.{name} builds rows without a result dataclass"
    return found


def _result_columns(conn: psycopg.Connection, function: str) -> list[str]:
    rows = conn.execute(
        """select a.name
             from pg_proc p
             join pg_namespace n on n.oid = p.pronamespace
            cross join lateral unnest(p.proargnames, p.proargmodes) with ordinality as a(name, mode, ord)
            where n.nspname = 'tally' and p.proname = %s and a.mode in ('o', 't')
            order by a.ord""",
        (function,),
    ).fetchall()
    return [r[0] for r in rows]


def test_every_result_dataclass_is_filled_by_a_function() -> None:
    result_classes = {
        cls
        for module in (models, user_models, admin_models)
        for cls in vars(module).values()
        if dataclasses.is_dataclass(cls) and isinstance(cls, type) and cls.__module__ == module.__name__
    }
    unfilled = result_classes - set(_filled_by()) - NOT_A_ROW - set(SUMMARY_CARD)
    assert unfilled == set(), "a result dataclass that no API method builds from a tally function"


@pytest.mark.parametrize("cls", sorted(_filled_by(), key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_dataclass_fields_are_the_function_columns(conn: psycopg.Connection, cls: type) -> None:
    fields = [f.name for f in dataclasses.fields(cls)]
    for function in _filled_by()[cls]:
        columns = _result_columns(conn, function)
        assert columns, f"tally.{function} has no OUT or TABLE columns"
        assert fields == columns, f"{cls.__name__} does not match the columns of tally.{function}"


def test_summary_card_rows_hold_every_field_of_their_dataclasses(conn: psycopg.Connection) -> None:
    columns = set(_result_columns(conn, "summary_card"))
    assert {"section", "value", "plan", "period_start", "period_end"} <= columns
    for cls in SUMMARY_CARD:
        fields = {f.name for f in dataclasses.fields(cls)} - {"kind"}  # PeriodUsage.kind is the row's value
        assert fields <= columns, f"{cls.__name__} has fields tally.summary_card does not return"
