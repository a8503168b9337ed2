"""docs/grafana-dashboard.json: valid JSON whose every panel query runs as a tally_analyst login.

Grafana reads the admin analytics straight from PostgreSQL, so each query must call only functions that exist
and that analysts may execute; the queries are run here as an analyst (Grafana's macros replaced by the
values Grafana would send), after a refresh, so a renamed function or a changed signature fails this test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg

from pgtally import Client

DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"
MACROS = {
    "$__timeFrom()": "'2026-01-01T00:00:00Z'",
    "$__timeTo()": "'2026-02-01T00:00:00Z'",
    "$window": "7d",
}


def queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    assert board["panels"] and board["uid"] and board["__inputs"][0]["pluginId"] == "grafana-postgresql-datasource"
    found = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            assert target["rawQuery"] and target["datasource"]["uid"] == "${DS_PGTALLY}", panel["title"]
            found.append((panel["title"], target["rawSql"]))
    return found


def test_every_function_the_dashboard_names_is_executable_by_analysts(conn: psycopg.Connection) -> None:
    names = {name for _, sql in queries() for name in re.findall(r"\btally\.([a-z_0-9]+)\s*\(", sql)}
    assert {"admin_overview", "admin_trend", "admin_leaderboard", "admin_funnel", "analytics_freshness"} <= names
    for name in sorted(names):
        rows = conn.execute(
            """select has_function_privilege('tally_analyst', p.oid, 'EXECUTE')
                 from pg_proc p where p.pronamespace = 'tally'::regnamespace and p.proname = %s""",
            (name,),
        ).fetchall()
        assert rows, f"the dashboard calls tally.{name}, which does not exist"
        assert all(ok for (ok,) in rows), f"tally_analyst may not execute tally.{name}"


def test_every_panel_query_runs_as_an_analyst(dsn: str, login_role) -> None:  # type: ignore[no-untyped-def]
    with Client.connect(dsn) as owner:
        owner.record("g1", "u1", "tts", 100, duration_ms=5000, attributes={"voice": "af_alloy", "model": "kokoro"})
        owner.admin.refresh()
    analyst = login_role("tally_analyst")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=analyst), autocommit=True) as conn:
        for title, sql in queries():
            for macro, value in MACROS.items():
                sql = sql.replace(macro, value)
            try:
                conn.execute(sql).fetchall()
            except psycopg.Error as exc:
                raise AssertionError(f"panel {title!r}: {exc}\n{sql}") from exc
