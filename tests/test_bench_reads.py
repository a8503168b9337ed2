"""`pgtally bench reads`: a tiny cumulative run (two sizes) writes the JSON that docs/benchmarks.md and the chart use."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgtally.bench.reads import parse_size, steady_events
from pgtally.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_parse_size() -> None:
    assert [parse_size(s) for s in ("1M", "300k", "2500", "2.5M", "10_000")] == [
        1_000_000,
        300_000,
        2500,
        2_500_000,
        10_000,
    ]
    with pytest.raises(ValueError):
        parse_size("lots")


def test_bench_reads_small_run(dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "reads.json"
    res = CliRunner().invoke(
        main,
        [
            "bench",
            "reads",
            "--dsn",
            dsn,
            "--sizes",
            "3k,6k",
            "--users-per-10m",
            "2000000",
            "--calls",
            "8",
            "--raw-calls",
            "4",
            "--dashboard-calls",
            "2",
            "--refreshes",
            "2",
            "--output",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert [s["events"] for s in data["stages"]] == [3000, 6000]
    last = data["stages"][-1]
    # ~1% generated retries are deduplicated; one event was recorded before the first stage's steady refresh.
    assert 5900 <= last["rows"]["usage_events"] - steady_events(3000) <= 6000
    names = [r["name"] for r in last["user_reads"]]
    assert names == ["summary card", "12-month history, months", "12-month history, days", "peer percentile"]
    assert all(r["raw_p50_ms"] > 0 for r in last["user_reads"][:3])
    assert len(last["dashboard_reads"]) == 12 and last["dashboard"]["p99_ms"] > 0
    assert set(data["verdicts"]) == {"user_reads", "admin_reads", "growth"}
    assert set(data["verdicts"]["growth"]["p99_growth"]) >= {"summary card", "whole dashboard"}
    # The chart renders from the JSON.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import plot_latency
    finally:
        sys.path.pop(0)
    svg = plot_latency.render(data)
    assert svg.startswith("<svg") and "summary card p99" in svg
