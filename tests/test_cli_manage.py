"""The command line covers a DBA's manual SQL, and every command's output reads well when piped.

- plan, subscription, dimension and kind commands change what the SQL
  functions change, refuse bad values with one line and exit code 2, and say
  so with exit code 1 when the thing to show or remove does not exist;
- every command is enumerated from the click group: each one that prints data
  accepts --json and prints valid JSON, and run with COLUMNS=80 into a pipe it
  cuts no cell short (no "…") and writes no line wider than 80 columns. A new
  command fails these tests until it is added to the tables below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest
from click.testing import CliRunner

from pgtally.cli import main

ROOT = Path(__file__).resolve().parents[1]
LONG_USER = "customer-account-" + "0123456789abcdef" * 3  # 65 characters
# Refused at once (the discard port on this machine), so deliveries fail fast without any network.
LONG_URL = "http://127.0.0.1:9/services/" + "T00000000/B00000000/" * 5 + "XXXXXXXXXXXXXXXXXXXXXXXX"

#: Commands that print no data (so take no --json), and why.
NO_DATA = {
    "sql": "prints the install SQL itself",
    "export": "writes CSV (the data's own format) to a file or stdout",
    "demo": "a showcase: loads data, writes the HTML report and prints the demo's card and dashboard",
    "bench ingest": "writes its figures as JSON with --output",
    "bench reads": "writes its figures as JSON with --output",
    "bench all": "writes its figures as JSON with --output",
    "bench http": "writes its figures as JSON with --output",
    "bench memory": "writes its figures as JSON with --output",
    "bench citus": "writes its figures as JSON with --output",
    "serve": "runs the HTTP server",
    "distribute": "needs a Citus coordinator: tests/test_citus.py runs it there, with --json",
}


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def leaf_commands(group: click.Group = main, prefix: str = "") -> dict[str, click.Command]:
    """Every command of the CLI by its full name (``plan set``), groups walked recursively."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found.update(leaf_commands(command, f"{full} "))
        else:
            found[full] = command
    return found


# ------------------------------------------------------------------------ the DBA commands


def test_plans_are_set_listed_and_removed(dsn: str, conn: psycopg.Connection) -> None:
    res = run("plan", "set", "pro", "--dsn", dsn, "--tier", "2", "--price", "19.90", "--limit", "tts=1_000_000",
              "--limit", "ocr=unlimited", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["limits"] == {"tts": 1000000}
    assert run("plan", "set", "free", "--dsn", dsn, "--tier", "0", "--price", "0", "--default").exit_code == 0
    listed = json.loads(run("plan", "list", "--dsn", dsn, "--json").stdout)
    assert [(p["plan"], p["is_default"]) for p in listed] == [("free", True), ("pro", False)]
    assert conn.execute("select tally.plan_at('anyone')").fetchone() == ("free",)

    conn.execute("select tally.start_subscription('u1', 'pro', '2025-03-01 00:00+00')")
    res = run("plan", "remove", "pro", "--dsn", dsn)
    assert res.exit_code == 2 and "subscription history of 1 user" in res.output and "Traceback" not in res.output
    assert run("plan", "remove", "free", "--dsn", dsn).exit_code == 0
    res = run("plan", "remove", "free", "--dsn", dsn)
    assert res.exit_code == 1 and "there is no plan 'free'" in res.output
    assert conn.execute("select plan from tally.plans").fetchall() == [("pro",)]


def test_plan_input_errors_are_one_line_with_exit_code_2(dsn: str) -> None:
    for args, said in (
        (["--tier", "0", "--price", "0", "--limit", "tts"], "is not KIND=N"),
        (["--tier", "0", "--price", "0", "--limit", "tts=lots"], "whole number or 'unlimited'"),
        (["--tier", "0", "--price", "free"], "is not a decimal number"),
        (["--tier", "-1", "--price", "0"], "tier must be a non-negative integer"),
    ):
        res = run("plan", "set", "pro", "--dsn", dsn, *args)
        assert res.exit_code == 2, (args, res.output)
        assert said in res.output and "Traceback" not in res.output
    res = run("plan", "set", "Not A Name", "--dsn", dsn, "--tier", "0", "--price", "0")
    assert res.exit_code == 2 and "field plan" in res.output and len(res.stderr.strip().splitlines()) == 1


def test_subscriptions_start_show_and_end(dsn: str, conn: psycopg.Connection) -> None:
    conn.execute("""select tally.upsert_plan('pro', 1, 10, '{"tts": 5000}')""")
    res = run("subscription", "start", "u1", "pro", "--dsn", dsn, "--at", "2025-03-10T08:00:00", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["current_plan"] == "pro"
    shown = json.loads(run("subscription", "show", "u1", "--dsn", dsn, "--json").stdout)
    assert [(s["plan"], s["started_at"][:19], s["ended_at"]) for s in shown["subscriptions"]] == [
        ("pro", "2025-03-10 08:00:00", None)
    ]
    assert run("subscription", "end", "u1", "--dsn", dsn, "--at", "2025-04-10").exit_code == 0
    res = run("subscription", "end", "u1", "--dsn", dsn)
    assert res.exit_code == 1 and "no running subscription" in res.output
    res = run("subscription", "start", "u1", "gold", "--dsn", dsn)
    assert res.exit_code == 2 and "plan 'gold' does not exist" in res.output
    res = run("subscription", "show", "nobody", "--dsn", dsn)
    assert res.exit_code == 1 and "'nobody'" in res.output


def test_dimensions_are_declared_and_listed(dsn: str, conn: psycopg.Connection) -> None:
    res = run("dimension", "declare", "provider_model", "provider", "model", "--dsn", dsn, "--description", "both")
    assert res.exit_code == 0 and "pgtally rebuild --dimension provider_model" in " ".join(res.output.split())
    listed = json.loads(run("dimension", "list", "--dsn", dsn, "--json").stdout)
    assert {"name": "provider_model", "keys": ["provider", "model"]}.items() <= next(
        d for d in listed if d["name"] == "provider_model"
    ).items()
    res = run("dimension", "declare", "Bad-Name", "x", "--dsn", dsn)
    assert res.exit_code == 2 and "field name" in res.output


def _has_kinds(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regproc('tally.declare_kind') is not null").fetchone() == (True,)


def test_kinds_are_declared_and_listed(dsn: str, conn: psycopg.Connection) -> None:
    if not _has_kinds(conn):
        pytest.skip("this schema has no kinds registry yet (tally.kinds, tally.declare_kind)")
    res = run("kind", "declare", "stt", "--dsn", dsn, "--unit", "seconds", "--display-name", "Transcription",
              "--audio", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {
        "kind": "stt",
        "unit": "seconds",
        "display_name": "Transcription",
        "audio": True,
        "featured_dimension": None,
    }
    assert "stt" in [k["kind"] for k in json.loads(run("kind", "list", "--dsn", dsn, "--json").stdout)]
    res = run("kind", "declare", "stt", "--dsn", dsn, "--unit", "Not a unit!")
    assert res.exit_code == 2 and "field unit" in res.output


# ------------------------------------------------------------- every command: JSON and 80 columns


@pytest.fixture
def world(dsn: str) -> Iterator[str]:
    """A database with something to show for every command: long ids, names and URLs to stress the layout."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """select tally.upsert_plan('free', 0, 0, '{"tts": 1000, "ocr": 50}', true,
                      'The free plan for people trying the product out, with a modest monthly allowance')"""
        )
        if _has_kinds(conn):
            conn.execute(
                "select tally.declare_kind('tts', 'characters', 'Text to speech (neural voices)', true, 'voice')"
            )
        for i, (user, quantity, voice) in enumerate(
            ((LONG_USER, 900, "en-GB-Neural2-Female-Narrator-Long-Form"), ("u1", 1200, "af_alloy"))
        ):
            for day in range(1, 20):
                conn.execute(
                    """select tally.record_usage(%s, %s, 'tts', %s, occurred_at => %s, duration_ms => 754000,
                              cost => 0.0123, attributes => jsonb_build_object('voice', %s::text, 'model', 'kokoro'))""",
                    (f"e{i}-{day}", user, quantity // 19, f"2025-03-{day:02d} 10:00+00", voice),
                )
        conn.execute("select tally.merge_pending()")
        conn.execute("select * from tally.refresh_analytics()")
        conn.execute("select tally.start_subscription('u1', 'free', '2025-03-01 00:00+00')")
        conn.execute("select * from tally.add_webhook_endpoint(%s)", (LONG_URL,))
        conn.execute("select set_config('tally.user_id', %s, false)", (LONG_USER,))
        conn.execute("select * from tally.subscribe_reports('someone.with.a.long.address@example-company.example')")
    yield dsn


def _scenario(dsn: str, tmp: Path, as_json: bool) -> list[tuple[str, list[str]]]:
    """(command, arguments) for every command that prints data, in an order that works on ``world``."""
    j = ["--json"] if as_json else []
    d = ["--dsn", dsn, *j]
    suffix = "j" if as_json else "t"
    return [
        ("migrate", ["migrate", *d]),
        ("record", ["record", f"r-{suffix}", LONG_USER, "tts", "5", *d]),
        ("merge", ["merge", *d]),
        ("stats", ["stats", LONG_USER, "-d", "kind", "-d", "voice", *d]),
        ("history", ["history", LONG_USER, "--from", "2025-03-01", "--to", "2025-03-21", "-d", "voice", *d]),
        ("card", ["card", LONG_USER, *d]),
        ("verify", ["verify", *d]),
        ("rebuild", ["rebuild", "--user", "u1", *d]),
        ("retention", ["retention", "--keep", "20 years", *d]),
        ("refresh", ["refresh", *d]),
        ("admin", ["admin", "--window", "all", *d]),
        ("plan set", ["plan", "set", f"team-{suffix}", "--tier", "3", "--price", "99", "--limit", "tts=5000000", *d]),
        ("plan list", ["plan", "list", *d]),
        ("plan remove", ["plan", "remove", f"team-{suffix}", *d]),
        ("subscription start", ["subscription", "start", f"s-{suffix}", "free", "--at", "2025-03-02", *d]),
        ("subscription show", ["subscription", "show", "u1", *d]),
        ("subscription end", ["subscription", "end", f"s-{suffix}", "--at", "2025-03-03", *d]),
        ("dimension declare", ["dimension", "declare", f"provider_{suffix}", "provider", "model", *d]),
        ("dimension list", ["dimension", "list", *d]),
        (
            "kind declare",
            ["kind", "declare", f"ocr_{suffix}", "--unit", "pages", "--display-name", "Documents read", *d],
        ),
        ("kind list", ["kind", "list", *d]),
        ("report", ["report", LONG_USER, "--output", str(tmp / f"r-{suffix}.html"), "--end", "2025-03-31", *d]),
        ("send-reports", ["send-reports", "--month", "2025-03", "--dry-run", *d]),
        ("webhook add", ["webhook", "add", LONG_URL + suffix, *d]),
        ("webhook list", ["webhook", "list", *d]),
        ("webhook disable", ["webhook", "disable", "1", *d]),
        ("webhook enable", ["webhook", "enable", "1", *d]),
        ("webhook remove", ["webhook", "remove", "2", *d]),
        ("deliver-alerts", ["deliver-alerts", "--timeout", "1", *d]),
        ("alerts", ["alerts", *d]),
        ("forget", ["forget", f"s-{suffix}", "--yes", *d]),
        ("token", ["token", "u1", "--secret", "a-test-secret-that-is-long-enough-for-hs256", *j]),
    ]


def _runnable(dsn: str, name: str) -> bool:
    if name.startswith("kind "):
        with psycopg.connect(dsn) as conn:
            return _has_kinds(conn)
    return True


def test_every_command_that_prints_data_has_json_and_the_tests_cover_it(world: str, tmp_path: Path) -> None:
    commands = leaf_commands()
    covered = {name for name, _ in _scenario(world, tmp_path, True)}
    assert not set(NO_DATA) & covered
    for name, command in commands.items():
        if name in NO_DATA:
            continue
        assert any("--json" in p.opts for p in command.params), f"`pgtally {name}` prints data but takes no --json"
        assert name in covered, f"add `pgtally {name}` to _scenario in tests/test_cli_manage.py"


def test_every_command_prints_valid_json(world: str, tmp_path: Path) -> None:
    commands = leaf_commands()
    for name, args in _scenario(world, tmp_path, True):
        if name not in commands or not _runnable(world, name):
            continue
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, (name, res.output)
        try:
            json.loads(res.stdout)
        except ValueError:
            pytest.fail(f"`pgtally {name} --json` printed no valid JSON:\n{res.stdout}")


def test_every_command_fits_80_columns_in_a_pipe_without_cutting_cells(world: str, tmp_path: Path) -> None:
    commands = leaf_commands()
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT / "python_client")}
    env.pop("LINES", None)
    for name, args in _scenario(world, tmp_path, False):
        if name not in commands or not _runnable(world, name):
            continue
        run_ = subprocess.run(
            [sys.executable, "-m", "pgtally", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert run_.returncode == 0, (name, run_.stdout, run_.stderr)
        assert run_.stdout.strip(), name
        assert "…" not in run_.stdout, f"`pgtally {name}` cut a cell short:\n{run_.stdout}"
        # A line may be wider only when it is one word meant to be copied whole (a token, a secret).
        wide = [line for line in run_.stdout.splitlines() if len(line) > 80 and len(line.split()) != 1]
        assert not wide, f"`pgtally {name}` wrote lines wider than 80 columns:\n" + "\n".join(wide)
