"""`pgtally bench http` at a tiny scale: it loads, serves, measures and writes figures of the documented shape."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from click.testing import CliRunner

from pgtally.cli import main


def test_bench_http_tiny_run(dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    res = CliRunner().invoke(
        main,
        [
            "bench",
            "http",
            "--dsn",
            dsn,
            "--events",
            "3000",
            "--users",
            "200",
            "--clients",
            "4",
            "--calls",
            "24",
            "--admin-calls",
            "2",
            "--ingest-batches",
            "3",
            "--batch-size",
            "200",
            "--output",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    names = [f["name"] for f in data["figures"]]
    reads = ["summary", "history 12m (days)", "history 12m (months)"]
    assert names == [*reads, *(f"{r}, one client" for r in reads), "admin analytics (one client)"]
    calls = {**dict.fromkeys(reads, 24), **{f"{r}, one client": 6 for r in reads}, names[-1]: 2}
    for f in data["figures"]:
        assert f["errors"] == 0 and f["calls"] == calls[f["name"]], f
        assert 0 < f["p50_ms"] <= f["p99_ms"] and f["p50_ms"] <= f["client_p50_ms"], f
    ingest = data["ingest"]
    assert (ingest["events"], ingest["batch_size"], ingest["errors"]) == (600, 200, 0) and ingest["events_per_s"] > 0
    assert data["parameters"]["events"] == 3000 and data["verdict"]["user_p99_ms"] == 15.0
    assert "events/s" in res.output and "summary" in res.output
    with psycopg.connect(dsn) as conn:
        recorded = conn.execute("select count(*) from tally.usage_events where event_id like 'http-bench-%'").fetchone()
    assert recorded == (600,), "the ingest batches went through the API into the log"
