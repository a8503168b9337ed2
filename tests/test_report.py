"""The HTML report: self-contained, charts with real shapes, the user's numbers, and clean in a real browser.

The browser tests run Debian's headless Chromium on the rendered file: the DOM
after load must hold the charts, the page must log no console error, and a
screenshot is kept under tests/artifacts/ for people to look at.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgtally import Client, human_duration
from pgtally.demo.workload import generate_events, user_time_zones
from pgtally.reports.html import render_report

USERS, EVENTS, SEED = 40, 4000, 5
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Lines Chromium writes to stderr (with --enable-logging=stderr) for the page's console: an uncaught error, a
#: failed load, any console message (its level is not logged, and the report has no script that should log).
CONSOLE_ERROR = re.compile(r"Uncaught|ERROR:CONSOLE|:CONSOLE[:(]")


class Loaded:
    """A small year of usage in a fresh database, its heaviest user and the expectations from the generator."""

    def __init__(self, dsn: str) -> None:
        self.end = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
        start = self.end - dt.timedelta(days=365)
        events = list(generate_events(USERS, EVENTS, SEED, start, self.end))
        self.user = Counter(e.user_id for e in events).most_common(1)[0][0]
        firsts = {e.event_id: e for e in events if e.user_id == self.user}.values()  # retries count once
        self.listened_ms = sum(e.duration_ms or 0 for e in firsts if e.kind == "tts" and e.status == "succeeded")
        self.client = Client.connect(dsn)
        with self.client.connection() as conn:
            conn.execute("select tally.ensure_partitions(%s)", (start.date().replace(day=1),))
        for user_id, zone in user_time_zones(USERS, SEED).items():
            self.client.set_user_settings(user_id, time_zone=zone)
        self.client.upsert_plan("free", tier=0, monthly_price=0, limits={"tts": 50_000, "ocr": 20}, is_default=True)
        self.client.record_many(events)
        # The quota gauge shows the current billing period, which starts at the user's midnight on the
        # 1st: on the first hours of a month the generated year may not have reached it. One event now
        # (no duration, so the listening figures stay the generator's) gives the gauge its usage arc.
        self.client.record("report-now", self.user, "tts", 1000)
        self.client.admin.refresh()  # merges first
        # 40 users: per-day groups are tiny, so show every group (the owner's opt-out) to draw every admin chart.
        self.client.admin.set_min_group_size(1)

    def html(self) -> str:
        return render_report(self.client, self.user)


@pytest.fixture
def loaded(dsn: str) -> Iterator[Loaded]:
    data = Loaded(dsn)
    yield data
    data.client.close()


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.fail(
            "chromium is missing: the browser tests need it. Install it with `apt-get install chromium` "
            "(Debian/Ubuntu; scripts/setup.sh does it as root) and run the tests again."
        )
    return found


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a throwaway profile, no network chatter, console messages on stderr."""
    return subprocess.run(
        [
            _chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE_ERROR.search(line)]


def test_report_is_self_contained(loaded: Loaded) -> None:
    html = loaded.html()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # Nothing is fetched: no remote (or protocol-relative) src/href, no external script, stylesheet or CSS import.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"<script\b|<link\b|@import|url\(|<iframe\b|<img\b", html, re.IGNORECASE)
    assert "@media print" in html


def test_report_has_charts_with_shapes(loaded: Loaded) -> None:
    html = loaded.html()
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.DOTALL)
    assert len(svgs) >= 15, len(svgs)  # bars, line, stacked, heatmaps, gauge, sparklines, funnel, meters
    labels = re.findall(r'<svg [^>]*aria-label="([^"]*)"', html)
    for chart in (
        "Listening time per voice",
        "Listening hours per month",
        "Events per month by kind",
        "Activity per hour of the week",
        "Active days over the last year",
        "tts quota",
        "Paywall funnel",
        "DAU, last 30 days",
    ):
        assert chart in labels, (chart, labels)
    by_label = dict(zip(labels, svgs))
    assert by_label["Activity per hour of the week"].count("<rect") == 7 * 24
    assert by_label["Active days over the last year"].count("<rect") >= 365 + 5  # days and the legend
    assert by_label["Events per month by kind"].count("<rect") >= 12
    assert by_label["Listening hours per month"].count("<polyline") == 1
    assert by_label["Listening hours per month"].count("<circle") == 12
    assert by_label["tts quota"].count("<path") >= 2  # track and usage arcs
    # The line chart, and one sparkline for DAU and for each kind used in the last 30 days (how many kinds
    # the generated year used in its last month depends on the day the suite runs).
    sparks = re.findall(r'<div class="spark"><span>([^<]*)</span>', html)
    assert sparks[0] == "DAU" and "tts events" in sparks
    assert html.count("<polyline") == 1 + len(sparks)
    assert "no data yet" not in html


def test_report_shows_the_users_numbers(loaded: Loaded) -> None:
    html = loaded.html()
    card = loaded.client.summary_card(loaded.user)
    assert f"<h1>{loaded.user}</h1>" in html
    assert f"<b>{card.total.events:,}</b>" in html
    # The generator's own total of the user's listening, as a person reads it.
    assert f"<b>{human_duration(loaded.listened_ms)}</b><span>listened</span>" in html
    top = card.voices[0]
    assert f"<li><b>{top.duration_text}</b> of {top.value}</li>" in html
    assert "data as of <b>" in html and "never refreshed" not in html
    overview = loaded.client.admin.overview()
    assert overview is not None and f"<b>{overview.users:,}</b><span>users</span>" in html
    for step in ("paywall.viewed", "paywall.clicked", "checkout.started", "checkout.completed"):
        assert step in html


def test_report_escapes_text(dsn: str) -> None:
    hostile = "<script>alert('x')</script>&"
    with Client.connect(dsn) as client:
        client.record("e1", hostile, "tts", 200, duration_ms=14_000, attributes={"voice": "<img src=x onerror=y>"})
        client.admin.refresh()
        html = render_report(client, hostile)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in html
    assert "14 s</b> of &lt;img src=x onerror=y&gt;" in html


def test_report_in_chromium(loaded: Loaded, tmp_path: Path) -> None:
    html = loaded.html()
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")

    dom = _run_chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert dom.stdout.count("<svg") == html.count("<svg") >= 15
    assert dom.stdout.count("<rect") == html.count("<rect")
    assert f"<h1>{loaded.user}</h1>" in dom.stdout and 'id="admin"' in dom.stdout
    assert _console_errors(dom.stderr) == [], dom.stderr[-3000:]

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    run = _run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars", page.as_uri())
    assert run.returncode == 0, run.stderr[-3000:]
    assert _console_errors(run.stderr) == [], run.stderr[-3000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_console_error_detection_works(tmp_path: Path) -> None:
    """Control for the check above: a page that throws is caught by the same flags and pattern."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><title>x</title><script>undefinedFunction();</script>", encoding="utf-8")
    run = _run_chromium(tmp_path, "--dump-dom", page.as_uri())
    assert run.returncode == 0, run.stderr[-3000:]
    assert _console_errors(run.stderr), run.stderr[-3000:]
