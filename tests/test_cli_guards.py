"""`pgtally migrate --downgrade` refuses to drop data unless --drop-data is given."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner

from pgtally import migrate
from pgtally.cli import main


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def _counts(dsn: str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("""select (select count(*) from tally.usage_events), (select count(*) from tally.user_totals),
                                     (select count(*) from tally.plans), (select count(*) from public.alembic_version)""").fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def migrated(databases) -> str:  # type: ignore[no-untyped-def]
    """An empty database migrated to head with `pgtally migrate`."""
    dsn = databases.create(template="template0")
    res = run("migrate", "--dsn", dsn)
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    return dsn


def test_downgrade_to_base_refuses_while_the_log_has_rows(migrated: str) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        for i in range(3):
            conn.execute("select tally.record_usage(%s, 'u1', 'tts', 5, '2025-03-10 12:00+00')", (f"e{i}",))
        conn.execute("select tally.merge_pending()")
    before = _counts(migrated)
    assert before[0] == 3 and before[3] == 1
    res = run("migrate", "--dsn", migrated, "--downgrade", "--revision", "base")
    assert res.exit_code == 1, res.output  # type: ignore[attr-defined]
    output = res.output  # type: ignore[attr-defined]
    assert "Traceback" not in output and output.strip().count("\n") == 0, output
    assert "would drop 3 usage events" in output and "tally.user_totals" in output
    assert "nothing was changed" in output and "--drop-data" in output
    assert _counts(migrated) == before, "the log, the rollups and the revision are untouched"
    assert migrate.current_revision(migrated) is not None

    res = run("migrate", "--dsn", migrated, "--downgrade", "--revision", "base", "--drop-data")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    assert "base (not installed)" in res.output  # type: ignore[attr-defined]
    with psycopg.connect(migrated) as conn:
        assert conn.execute("select to_regnamespace('tally')").fetchone() == (None,)


def test_downgrade_of_an_installation_without_data_needs_no_flag(migrated: str) -> None:
    # Only what the installation wrote itself (the seeded dimensions): nothing to lose.
    res = run("migrate", "--dsn", migrated, "--downgrade", "--revision", "base")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    assert migrate.current_revision(migrated) is None
    res = run("migrate", "--dsn", migrated)  # and back
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]


def test_plans_and_subscriptions_are_data_too(migrated: str) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute("select tally.upsert_plan('pro', 1, 9.99, '{\"tts\": 1000}', false, null)")
        conn.execute("select tally.start_subscription('u1', 'pro', '2025-03-01 00:00+00')")
    with pytest.raises(migrate.DataLossRefused) as info:
        migrate.downgrade(migrated, "base")
    assert info.value.events == 0
    # The subscription also gave the user's settings its billing anchor (the subscription's day of month).
    assert info.value.rows == {
        "tally.plans": 1,
        "tally.plan_limits": 1,
        "tally.subscriptions": 1,
        "tally.user_settings": 1,
    }
    assert "would drop the rows of 4 tables" in str(info.value)
    with psycopg.connect(migrated) as conn:
        assert conn.execute("select count(*) from tally.subscriptions").fetchone() == (1,)
    migrate.downgrade(migrated, "base", drop_data=True)
    assert migrate.current_revision(migrated) is None


def test_drop_data_only_with_downgrade(migrated: str) -> None:
    res = run("migrate", "--dsn", migrated, "--drop-data")
    assert res.exit_code == 2 and "--drop-data only applies with --downgrade" in res.output  # type: ignore[attr-defined]
