"""`pgtally bench memory` and `pgtally bench all`: the client's memory is measured in processes of its own,
the export covers exactly the events recorded, and `bench all` writes one JSON document with a key per part."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pgtally.bench.memory_child import CHECKPOINTS, USER, WINDOW, WINDOW_START, Checkpoints, CountingSink, events
from pgtally.cli import main
from pgtally.cli.bench import PARTS


def test_the_events_are_lazy_deterministic_unique_and_in_a_past_window() -> None:
    # A generator, not a list: the first events of a trillion come at once.
    first = list(itertools.islice(events(10**12), 3))
    assert [e.event_id for e in first] == ["mem-0", "mem-1", "mem-2"]
    for n in (1, 7, 1000):
        made = list(events(n))
        assert made == list(events(n)), "the load is deterministic"
        assert len({e.event_id for e in made}) == n and {e.user_id for e in made} == {USER}
        times = [e.occurred_at for e in made]
        assert all(t is not None and WINDOW_START <= t < WINDOW_START + WINDOW for t in times)
    assert dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) >= WINDOW_START + WINDOW, "every event is in the past"


def test_checkpoints_sample_at_fixed_fractions_even_with_chunks_larger_than_them() -> None:
    lines: list[str] = []
    marks = Checkpoints(1000, lines.append)
    for _ in range(100):
        marks.advance(10)
    assert [s["fraction"] for s in marks.samples] == list(CHECKPOINTS)
    assert [s["done"] for s in marks.samples] == [10, 100, 250, 500, 750, 1000]
    assert 90 <= len(lines) <= 101 and lines[-1].startswith("progress 1000 ")
    summary = marks.summary()
    assert summary["rss_at_10pct_kib"] > 0 and isinstance(summary["growth"], float)

    marks = Checkpoints(100, lambda _: None)
    marks.advance(60)
    marks.advance(40)
    assert [s["done"] for s in marks.samples] == [60, 60, 60, 60, 100, 100]


def test_the_counting_sink_counts_rows_after_the_header_and_bytes() -> None:
    marks = Checkpoints(3, lambda _: None)
    sink = CountingSink(marks)
    for chunk in (b"event_id,kind\n", b"a,tts\n", memoryview(b"b,tts\n"), b"c,tts\n"):
        assert sink.write(chunk) == len(chunk)
    assert (sink.rows, sink.bytes, marks.done) == (3, 32, 3)


def test_bench_memory_small_run(dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    res = CliRunner().invoke(
        main,
        ["bench", "memory", "--dsn", dsn, "--events", "20000", "--chunk-size", "2000", "--output", str(out)],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    floor, record, export = data["baseline"], data["record_many"], data["export"]
    assert floor["peak_rss_kib"] > 0 and record["peak_rss_kib"] > 0 and export["peak_rss_kib"] > 0
    assert record["added"] == 20000 and export["rows"] == 20000 and export["bytes"] > 20000 * 50
    for part in (record, export):
        assert [c["fraction"] for c in part["checkpoints"]] == list(CHECKPOINTS)
        assert isinstance(part["growth"], float) and part["growth"] > 0
        assert part["peak_above_baseline_kib"] == part["peak_rss_kib"] - floor["peak_rss_kib"]
        assert part["peak_rss_kib"] >= part["rss_at_end_kib"] > 0
    assert "record_many" in res.output and "CSV export" in res.output and "bare client" in res.output
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from tally.usage_events where user_id = %s", [USER]).fetchone() == (20000,)


def test_a_database_already_holding_the_benchmark_user_is_refused(conn: psycopg.Connection, dsn: str) -> None:
    conn.execute("select tally.record_usage('mem-0', %s, 'tts', 1, '2025-01-01 00:00+00')", [USER])
    res = CliRunner().invoke(main, ["bench", "memory", "--dsn", dsn, "--events", "10"])
    assert res.exit_code == 1 and "already holds events of memory-bench-user" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["bench", "memory", "--events", "0"], "--events must be at least 1 (got 0)"),
        (["bench", "memory", "--chunk-size", "-5"], "--chunk-size must be at least 1 (got -5)"),
        (["bench", "all", "--memory-events", "0"], "--memory-events must be at least 1 (got 0)"),
    ],
)
def test_bad_values_exit_2_with_one_line(args: list[str], said: str) -> None:
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and said in res.stderr and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_bench_all_writes_one_document_with_a_key_per_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pgtally.server.citus.citus_missing", lambda: "no Citus on this test machine")
    out = tmp_path / "all.json"
    skip = ["--skip", "ingest", "--skip", "reads", "--skip", "http"]
    res = CliRunner().invoke(
        main, ["bench", "all", *skip, "--memory-events", "3000", "--output", str(out)], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert list(data) == list(PARTS) == ["ingest", "reads", "memory", "http", "citus"]
    assert data["ingest"] == data["reads"] == data["http"] == {"skipped": "left out with --skip"}
    assert data["citus"] == {"skipped": "no Citus on this test machine"}
    assert "citus: skipped (no Citus on this test machine)" in res.output
    assert data["memory"]["record_many"]["added"] == data["memory"]["export"]["rows"] == 3000
