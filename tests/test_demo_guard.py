"""`pgtally demo --dsn` refuses a database holding data it did not write, unless --yes-write-fake-data.

An empty database, or one holding only a previous demo load (recognised by the
mark the demo leaves on the database), is loaded without the flag.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pgtally.cli import main

FOREIGN = {
    "events": [
        "select tally.record_usage('order-1', 'acct-1', 'tts', 1200, '2025-03-10 12:00+00')",
        "select tally.record_usage('order-2', 'acct-2', 'ocr', 3, '2025-03-11 12:00+00')",
    ],
    "plans": ["select tally.upsert_plan('pro', 1, 49, '{\"tts\": 5000000}', false, 'our real pro plan')"],
    "subscriptions": [
        "select tally.upsert_plan('gold', 1, 49, '{}', false, null)",
        "select tally.start_subscription('acct-1', 'gold', '2025-03-01 00:00+00')",
    ],
    "settings": ["select tally.set_user_settings('acct-1', 'Europe/Paris')"],
}


def demo(dsn: str, tmp_path: Path, *extra: str) -> object:
    return CliRunner().invoke(
        main,
        [
            "demo",
            "--users",
            "8",
            "--events",
            "400",
            "--end",
            "2025-06-01",
            "--dsn",
            dsn,
            "--report",
            str(tmp_path / "report.html"),
            *extra,
        ],
    )


def snapshot(dsn: str) -> tuple[object, ...]:
    """Everything the demo would change: the log, the plans with their limits, subscriptions, settings."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("""select (select count(*) from tally.usage_events),
                                     (select coalesce(jsonb_agg(p order by plan), '[]') from tally.plans p),
                                     (select coalesce(jsonb_agg(l order by plan, kind), '[]') from tally.plan_limits l),
                                     (select count(*) from tally.subscriptions), (select count(*) from tally.user_settings)""").fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def installed(dsn: str) -> str:
    """An empty database with pgtally installed (what an application has before it writes)."""
    return dsn


@pytest.mark.parametrize("data", FOREIGN)
def test_demo_refuses_a_database_with_other_data(installed: str, tmp_path: Path, data: str) -> None:
    with psycopg.connect(installed, autocommit=True) as conn:
        for statement in FOREIGN[data]:
            conn.execute(statement)
    before = snapshot(installed)
    res = demo(installed, tmp_path)
    assert res.exit_code == 1, res.output  # type: ignore[attr-defined]
    output = res.output  # type: ignore[attr-defined]
    assert "Traceback" not in output and output.strip().count("\n") == 0, output
    assert "refusing to load fake demo data" in output and "--yes-write-fake-data" in output
    assert snapshot(installed) == before, "nothing was written"
    assert not (tmp_path / "report.html").exists()


def test_demo_writes_into_other_data_only_when_told(installed: str, tmp_path: Path) -> None:
    with psycopg.connect(installed, autocommit=True) as conn:
        for statement in FOREIGN["events"] + FOREIGN["plans"]:
            conn.execute(statement)
    res = demo(installed, tmp_path, "--yes-write-fake-data")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    assert "--yes-write-fake-data: adding fake demo data" in res.output  # type: ignore[attr-defined]
    with psycopg.connect(installed) as conn:
        assert conn.execute("select count(*) > 2 from tally.usage_events").fetchone() == (True,)
        assert conn.execute("select count(*) from tally.usage_events where event_id like 'order-%'").fetchone() == (2,)
    # The database is not marked as the demo's: the next run must be told again.
    before = snapshot(installed)
    res = demo(installed, tmp_path)
    assert res.exit_code == 1 and "refusing" in res.output  # type: ignore[attr-defined]
    assert snapshot(installed) == before


def test_demo_reloads_its_own_database_but_not_once_others_wrote(installed: str, tmp_path: Path) -> None:
    empty = installed
    first = demo(empty, tmp_path)
    assert first.exit_code == 0, first.output  # type: ignore[attr-defined]
    again = demo(empty, tmp_path)  # only the demo's own data: no flag needed
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    assert "holds only a previous demo load" in again.output  # type: ignore[attr-defined]
    # An application starts writing into it: the demo's data are no longer all there is.
    with psycopg.connect(empty, autocommit=True) as conn:
        conn.execute(FOREIGN["events"][0])
    before = snapshot(empty)
    res = demo(empty, tmp_path)
    assert res.exit_code == 1, res.output  # type: ignore[attr-defined]
    assert "refusing to load fake demo data" in res.output and "usage events" in res.output  # type: ignore[attr-defined]
    assert snapshot(empty) == before
