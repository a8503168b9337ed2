"""The `pgtally` command line against a real database."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from click.testing import CliRunner

from pgtally.cli import main


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_sql_prints_the_install_script_without_a_database() -> None:
    res = run("sql")
    assert res.exit_code == 0  # type: ignore[attr-defined]
    out = res.output  # type: ignore[attr-defined]
    assert "create table tally.usage_events" in out and out.rstrip().endswith("commit;")


def test_migrate_installs_into_an_empty_database(databases) -> None:  # type: ignore[no-untyped-def]
    dsn = databases.create(template="template0")
    res = run("migrate", "--dsn", dsn)
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    head = max(p.name[:4] for p in (Path(__file__).resolve().parents[1] / "migrations" / "versions").glob("[0-9]*.py"))
    assert f"revision {head}" in res.output  # type: ignore[attr-defined]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from tally.dimensions").fetchone() == (4,)  # kind, voice, model, plan


def test_stats_prints_a_card_and_json(conn: psycopg.Connection, dsn: str) -> None:
    conn.execute("""select tally.record_usage('e1', 'u1', 'tts', 140, duration_ms => 10000,
                                              attributes => '{"voice": "af_alloy", "model": "kokoro"}')""")
    conn.execute(
        "select tally.record_usage('e2', 'u1', 'tts', 60, duration_ms => 5000, attributes => '{\"voice\": \"am_adam\"}')"
    )
    res = run("stats", "u1", "--dsn", dsn)
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    assert "af_alloy" in res.output and "10 s" in res.output  # type: ignore[attr-defined]
    res = run("stats", "u1", "--dsn", dsn, "--json", "-d", "voice")
    data = json.loads(res.output)  # type: ignore[attr-defined]
    voices = {v["value"]: v for v in data["lifetime"]["voice"]}
    assert voices["af_alloy"]["quantity"] == 140 and voices["am_adam"]["duration_ms"] == 5000
    assert data["period"][0]["kind"] == "tts" and data["period"][0]["quantity"] == 200


def test_stats_unknown_dimension_is_a_clear_error(dsn: str) -> None:
    res = CliRunner().invoke(main, ["stats", "u1", "--dsn", dsn, "-d", "colour"])
    assert res.exit_code != 0
    assert "dimension 'colour' is not declared" in res.output


def test_merge_folds_pending_deltas(conn: psycopg.Connection, dsn: str) -> None:
    conn.execute("select tally.record_usage('e1', 'u1', 'tts', 5)")
    res = run("merge", "--dsn", dsn, "--all")
    assert res.exit_code == 0 and "merged 1 pending deltas" in res.output  # type: ignore[attr-defined]
    assert conn.execute("select count(*) from tally.pending_deltas").fetchone() == (0,)


def test_commands_explain_a_missing_dsn_schema_or_server(databases, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("DATABASE_URL", raising=False)
    res = CliRunner().invoke(main, ["stats", "u1"])
    assert res.exit_code != 0 and "pass --dsn or set DATABASE_URL" in res.output
    empty = databases.create(template="template0")
    res = CliRunner().invoke(main, ["stats", "u1", "--dsn", empty])
    assert res.exit_code != 0 and "run `pgtally migrate` first" in res.output
    res = CliRunner().invoke(main, ["stats", "u1", "--dsn", "postgresql://nobody@/x?host=/nonexistent&port=1"])
    assert res.exit_code != 0 and "cannot connect to the database" in res.output


def test_verify_exits_nonzero_on_drift_and_rebuild_repairs_it(conn: psycopg.Connection, dsn: str) -> None:
    conn.execute("select tally.record_usage('e1', 'u1', 'tts', 5)")
    conn.execute("select tally.merge_pending()")
    res = CliRunner().invoke(main, ["verify", "--dsn", dsn, "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["drifted"] == 0
    conn.execute("update tally.user_daily set quantity = 99")
    res = CliRunner().invoke(main, ["verify", "--dsn", dsn])
    assert res.exit_code == 1 and "u1/kind/" in res.output
    res = CliRunner().invoke(main, ["rebuild", "--dsn", dsn])
    assert res.exit_code == 0 and "rebuilt 1 user(s)" in res.output
    assert CliRunner().invoke(main, ["verify", "--dsn", dsn]).exit_code == 0


def test_forget_and_retention_commands(conn: psycopg.Connection, dsn: str) -> None:
    conn.execute("select tally.record_usage('e1', 'u1', 'tts', 5)")
    res = CliRunner().invoke(main, ["forget", "u1", "--dsn", dsn, "--yes"])
    assert res.exit_code == 0 and "u1 is now forgotten-" in res.output
    assert conn.execute("select count(*) from tally.usage_events where user_id = 'u1'").fetchone() == (0,)
    res = CliRunner().invoke(main, ["retention", "--dsn", dsn, "--keep", "5 years", "--json"])
    assert res.exit_code == 0 and json.loads(res.output) == []
    res = CliRunner().invoke(main, ["retention", "--dsn", dsn, "--keep", "1 hour"])
    assert res.exit_code != 0 and "keep must be at least 1 day" in res.output


def test_record_command_is_exactly_once_and_explains_errors(conn: psycopg.Connection, dsn: str) -> None:
    res = run("record", "job-1", "u1", "tts", "180", "--dsn", dsn, "--attr", "voice=af_alloy", "--duration-ms", "12857")
    assert res.exit_code == 0 and "recorded job-1" in res.output  # type: ignore[attr-defined]
    res = run("record", "job-1", "u1", "tts", "180", "--dsn", dsn, "--json")
    assert json.loads(res.output) == {"event_id": "job-1", "new": False}  # type: ignore[attr-defined]
    res = CliRunner().invoke(main, ["record", "--dsn", dsn, "--", "job-2", "u1", "tts", "-5"])
    assert res.exit_code != 0 and "PT002" in res.output and "field quantity" in res.output
    assert conn.execute("select attributes->>'voice', duration_ms from tally.usage_events").fetchall() == [
        ("af_alloy", 12857)
    ]


def test_python_dash_m_pgtally_has_every_command() -> None:
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "pgtally", "--help"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "python_client")},
    )
    for command in (
        "record",
        "stats",
        "card",
        "history",
        "export",
        "admin",
        "refresh",
        "verify",
        "rebuild",
        "demo",
        "bench",
    ):
        assert command in res.stdout, command


def test_input_errors_are_one_line_with_exit_code_2(dsn: str) -> None:
    for args, said in (
        (["record", "e1", "u1", "tts", "5", "--cost", "abc", "--dsn", dsn], "'abc' is not a decimal number"),
        (["record", "e1", "u1", "tts", "5", "--cost", "NaN", "--dsn", dsn], "not a finite decimal number"),
        (["history", "u1", "--from", "2026-01-01", "--dsn", dsn], "--from and --to go together"),
    ):
        res = run(*args)
        assert res.exit_code == 2, res.output  # type: ignore[attr-defined]
        assert said in res.output and "Traceback" not in res.output  # type: ignore[attr-defined]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from tally.usage_events").fetchone() == (0,)


def test_an_unknown_user_is_said_so_with_exit_code_1(dsn: str) -> None:
    for command in ("stats", "card"):
        res = run(command, "nobody", "--dsn", dsn)
        assert res.exit_code == 1, res.output  # type: ignore[attr-defined]
        assert "no usage recorded for user 'nobody'" in res.output  # type: ignore[attr-defined]
    assert run("record", "e1", "somebody", "tts", "5", "--dsn", dsn).exit_code == 0  # type: ignore[attr-defined]
    assert run("stats", "somebody", "--dsn", dsn).exit_code == 0  # type: ignore[attr-defined]
