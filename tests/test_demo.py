"""The workload generator's promises (determinism, shape of the usage) and the demo end to end.

The demo runs with --dsn (loads every time) and in its own kept cluster (reuses its data, --fresh wipes it).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import shutil
import statistics
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from pgtally.cli import main
from pgtally.demo.workload import (
    CHARS_PER_SECOND,
    MAX_BLOCK_CHARS,
    MIN_BLOCK_CHARS,
    TIME_ZONES,
    TTS_PRICE_PER_CHAR,
    VOICES,
    generate_events,
    user_time_zones,
)
from pgtally.models import UsageEvent

END = dt.datetime(2025, 6, 1, 12, tzinfo=dt.timezone.utc)
START = END - dt.timedelta(days=365)
USERS, EVENTS, SEED = 100, 20_000, 11
#: The end of the demo's loaded year in the end-to-end test (30 users of the default seed check out twice by then).
DEMO_END = "2026-02-01T00:00"


@pytest.fixture(scope="module")
def events() -> list[UsageEvent]:
    """One mid-sized load shared by the shape tests (generation is deterministic)."""
    return list(generate_events(USERS, EVENTS, SEED, START, END))


def _firsts(events: list[UsageEvent]) -> list[UsageEvent]:
    """The events without their retries (first occurrence of every event_id)."""
    seen: set[str] = set()
    firsts = []
    for e in events:
        if e.event_id not in seen:
            seen.add(e.event_id)
            firsts.append(e)
    return firsts


def test_same_seed_same_events(events: list[UsageEvent]) -> None:
    assert list(generate_events(USERS, EVENTS, SEED, START, END)) == events
    other = list(generate_events(USERS, EVENTS, SEED + 1, START, END))
    assert [e.event_id for e in other] != [e.event_id for e in events]


def test_exact_count_range_and_order(events: list[UsageEvent]) -> None:
    assert len(events) == EVENTS
    assert all(START <= e.occurred_at < END for e in events)
    firsts = _firsts(events)
    assert all(a.occurred_at <= b.occurred_at for a, b in itertools.pairwise(firsts))
    assert list(generate_events(3, 0, SEED, START, END)) == []


def test_zipf_skew(events: list[UsageEvent]) -> None:
    per_user = Counter(e.user_id for e in events)
    counts = [per_user.get(u, 0) for u in user_time_zones(USERS, SEED)]
    assert max(counts) > 10 * statistics.median(counts)
    assert sum(1 for c in counts if c > 0) > USERS // 2  # a long tail, not a handful of users


def test_tts_blocks(events: list[UsageEvent]) -> None:
    tts = [e for e in events if e.kind == "tts"]
    assert len(tts) > 0.8 * len(events)
    assert all(MIN_BLOCK_CHARS <= e.quantity <= MAX_BLOCK_CHARS for e in tts)
    assert min(e.quantity for e in tts) < 100 and max(e.quantity for e in tts) > 300
    for e in (e for e in tts if e.status == "succeeded"):
        model, voice = e.attributes["model"], e.attributes["voice"]
        assert voice in VOICES[model]
        assert e.cost == e.quantity * TTS_PRICE_PER_CHAR[model]
        assert e.duration_ms is not None
        assert abs(e.duration_ms - e.quantity / CHARS_PER_SECOND * 1000) <= 0.15 * e.quantity / CHARS_PER_SECOND * 1000
        assert set(e.attributes) == {"voice", "model", "document_id", "session_id"}


def test_sessions_and_favourite_voices(events: list[UsageEvent]) -> None:
    sessions: dict[str, list[UsageEvent]] = defaultdict(list)
    for e in _firsts(events):
        if e.kind == "tts":
            sessions[e.attributes["session_id"]].append(e)
    assert statistics.median(len(blocks) for blocks in sessions.values()) > 5
    for blocks in sessions.values():
        assert len({(b.user_id, b.attributes["voice"], b.attributes["document_id"]) for b in blocks}) == 1
    voices_per_user: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for blocks in sessions.values():
        voices_per_user[blocks[0].user_id].add((blocks[0].attributes["model"], blocks[0].attributes["voice"]))
    assert max(len(v) for v in voices_per_user.values()) <= 3


def test_kinds_failures_and_funnel(events: list[UsageEvent]) -> None:
    kinds = Counter(e.kind for e in _firsts(events))
    assert {"tts", "ocr", "export"} <= set(kinds)
    funnel = [kinds[k] for k in ("paywall.viewed", "paywall.clicked", "checkout.started", "checkout.completed")]
    assert funnel[-1] > 0 and funnel == sorted(funnel, reverse=True)
    assert all(e.quantity == 0 and not e.billable for e in events if e.kind.startswith(("paywall.", "checkout.")))
    ocr = [e for e in events if e.kind == "ocr"]
    assert {e.attributes["model"] for e in ocr} == {"tesseract", "mistral-ocr"} and all(e.quantity == 1 for e in ocr)
    exports = [e for e in _firsts(events) if e.kind == "export"]
    formats = Counter(e.attributes["format"] for e in exports)
    assert set(formats) <= {"mp3", "m4a", "wav"} and formats.most_common(1)[0][0] == "mp3"
    failed = [e for e in exports if e.status == "failed"]
    assert 0 < len(failed) < 0.15 * len(exports) and all(e.error_code for e in failed)


def test_duplicates_are_retries(events: list[UsageEvent]) -> None:
    by_id: dict[str, list[UsageEvent]] = defaultdict(list)
    for e in events:
        by_id[e.event_id].append(e)
    retried = [copies for copies in by_id.values() if len(copies) > 1]
    assert 0.005 * EVENTS < len(retried) < 0.015 * EVENTS
    assert all(all(c == copies[0] for c in copies) for copies in retried)
    assert all(re.fullmatch(rf"{re.escape(e.kind)}-{SEED}-\d+", e.event_id) for e in events)


def test_time_zones_and_seasonality(events: list[UsageEvent]) -> None:
    zones = user_time_zones(USERS, SEED)
    assert len(zones) == USERS and set(zones.values()) <= {z for z, _ in TIME_ZONES}
    assert {e.user_id for e in events} <= set(zones)
    local = [e.occurred_at.astimezone(ZoneInfo(zones[e.user_id])) for e in events]
    evening = sum(1 for t in local if 18 <= t.hour < 24)
    night = sum(1 for t in local if 1 <= t.hour < 7)
    assert evening > 3 * night
    per_weekday = Counter(t.weekday() for t in local)
    assert (per_weekday[5] + per_weekday[6]) / 2 < statistics.mean(per_weekday[d] for d in range(5))


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        generate_events(10, 10, SEED, START.replace(tzinfo=None), END)
    with pytest.raises(ValueError):
        generate_events(10, 10, SEED, END, START)
    with pytest.raises(ValueError):
        generate_events(0, 10, SEED, START, END)


def test_demo_end_to_end(dsn: str, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    # A fixed end of the loaded year: the same events (and checkouts) whatever the day the test runs.
    result = CliRunner().invoke(
        main, ["demo", "--users", "30", "--events", "4000", "--dsn", dsn, "--report", str(report), "--end", DEMO_END]
    )
    assert result.exit_code == 0, result.output
    voices = "|".join(re.escape(v) for names in VOICES.values() for v in names)
    assert re.search(rf"\b(\d+ h \d\d min|\d+ min \d\d s|\d+ s) of ({voices})\b", result.output), result.output
    # Rich wraps the summary line at the test console's width.
    summary = re.search(
        r"4,000 events sent for 30 users: ([\d,]+) recorded,\s+([\d,]+)\s+duplicates\s+skipped", result.output
    )
    assert summary, result.output
    recorded, skipped = (int(g.replace(",", "")) for g in summary.groups())
    assert recorded + skipped == 4000 and skipped > 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from tally.usage_events").fetchone() == (recorded,)
        assert conn.execute("select count(*) from tally.pending_deltas").fetchone() == (0,)
        plans = conn.execute("select plan from tally.plans order by plan").fetchall()
        assert [p for (p,) in plans] == ["free", "pro", "team"]
        subscriptions = conn.execute("select count(*) from tally.subscriptions").fetchone()
    # The paywall funnel sold subscriptions; the card shows the plan and its limits; the dashboard follows.
    assert subscriptions and subscriptions[0] > 0
    assert re.search(r"plan (free|pro|team)\b.*this billing period", result.output), result.output
    for panel in ("pgtally admin dashboard", "data as of", "Top voice (30d)", "Funnel (30d)", "Cohort retention"):
        assert panel in result.output, panel
    assert "never refreshed" not in result.output
    html = report.read_text(encoding="utf-8")
    assert "HTML report of" in result.output and str(report.resolve()) in result.output.replace("\n", "")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 10 and 'id="admin"' in html

    # Into the same database again: nothing new is recorded (the same --end generates the same events) and
    # nobody's subscription history is started twice.
    again = CliRunner().invoke(
        main, ["demo", "--users", "30", "--events", "4000", "--dsn", dsn, "--report", str(report), "--end", DEMO_END]
    )
    assert again.exit_code == 0, again.output
    rerun = re.search(r"4,000 events sent for 30 users: ([\d,]+) recorded", again.output)
    assert rerun, again.output
    assert rerun.group(1) == "0", again.output
    with psycopg.connect(dsn) as conn:
        twice = conn.execute(
            "select count(*) from (select user_id from tally.subscriptions where plan = 'pro' "
            "group by user_id having count(*) > 1) t"
        ).fetchone()
    assert twice == (0,)


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A directory for the demo's kept cluster that the server's unprivileged user can reach (we may be root)."""
    parent = Path(tempfile.mkdtemp(prefix="pgtally-demo-test-"))
    os.chmod(parent, 0o755)
    yield parent / "cluster"
    shutil.rmtree(parent, ignore_errors=True)


def test_demo_keeps_its_cluster(cluster_dir: Path, tmp_path: Path) -> None:
    args = [
        "demo",
        "--users",
        "20",
        "--events",
        "1000",
        "--cluster-dir",
        str(cluster_dir),
        "--report",
        str(tmp_path / "report.html"),
    ]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "Creating the demo PostgreSQL" in first.output and "1,000 events sent for 20 users" in first.output
    assert (cluster_dir / "data" / "PG_VERSION").exists()

    second = CliRunner().invoke(main, args)  # reuses the data: no load, same card, report written again
    assert second.exit_code == 0, second.output
    assert "Reusing the demo data" in second.output and "events sent" not in second.output
    featured = re.search(r"The featured user, (user-\d+)", first.output)
    assert featured and f"The featured user, {featured.group(1)}" in second.output
    assert "pgtally admin dashboard" in second.output and (tmp_path / "report.html").exists()

    other = CliRunner().invoke(main, [*args, "--seed", "8"])  # other options: loads again into a new database
    assert other.exit_code == 0, other.output
    assert "loading again" in other.output and "1,000 events sent for 20 users" in other.output

    fresh = CliRunner().invoke(main, [*args, "--fresh"])
    assert fresh.exit_code == 0, fresh.output
    assert "--fresh: removing" in fresh.output and "Creating the demo PostgreSQL" in fresh.output
    assert "1,000 events sent for 20 users" in fresh.output
