"""The report a person receives: HTML and PDF for any user, with the user's figures and charts that show.

The PDF is checked the way a reader sees it: its text (pdftotext) holds the
user's figures, and its first page rendered to PNG (pdftoppm, decoded here
with zlib) has the colours of the charts. A control shows the page check fails
on a page without charts.
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pgtally import Client
from pgtally.cli import main
from pgtally.demo.workload import generate_events
from pgtally.reports import ChromiumMissing, UnknownUser, html_to_pdf, render_html, render_pdf

END = dt.date(2025, 12, 31)
ARTIFACTS = Path(__file__).parent / "artifacts"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: install poppler-utils (scripts/setup.sh does it as root)")
    return found


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        [_tool("pdftotext"), "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def _first_page_png(pdf: bytes, tmp_path: Path) -> Path:
    path = tmp_path / "page.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        [_tool("pdftoppm"), "-png", "-r", "50", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")], check=True
    )
    return next(tmp_path.glob("page*.png"))


def decode_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB (or RGBA) PNG, with the standard library only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 3
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        f, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            a = cur[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if f == 1:
                cur[i] = (cur[i] + a) & 255
            elif f == 2:
                cur[i] = (cur[i] + b) & 255
            elif f == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(cur if channels == 3 else b"".join(cur[i : i + 3] for i in range(0, stride, 4))))
        previous = cur
    return width, height, rows


def coloured_fraction(path: Path) -> float:
    """The share of pixels with a clear colour (chart bars, lines, heatmap cells), not white, grey or black text."""
    width, height, rows = decode_png(path)
    coloured = 0
    for row in rows:
        for x in range(width):
            r, g, b = row[3 * x], row[3 * x + 1], row[3 * x + 2]
            coloured += max(r, g, b) - min(r, g, b) > 40
    return coloured / (width * height)


@pytest.fixture
def loaded(dsn: str) -> tuple[str, str]:
    """Half a year of usage of 20 users ending on END; returns (dsn, the heaviest user)."""
    end = dt.datetime.combine(END, dt.time(18), dt.timezone.utc)
    start = end - dt.timedelta(days=180)
    events = list(generate_events(20, 1500, 11, start, end))
    with Client.connect(dsn) as client:
        with client.connection() as conn:
            conn.execute("select tally.ensure_partitions(%s)", (start.date().replace(day=1),))
        client.upsert_plan("free", tier=0, monthly_price=0, limits={"tts": 50_000}, is_default=True)
        client.record_many(events)
        client.merge_pending()
    return dsn, Counter(e.user_id for e in events).most_common(1)[0][0]


def test_the_pdf_has_the_users_figures_as_text_and_charts_that_show(loaded: tuple[str, str], tmp_path: Path) -> None:
    dsn, user = loaded
    with psycopg.connect(dsn, autocommit=True) as conn:
        pdf = render_pdf(conn, user, end=END)
        card = Client(conn).summary_card(user, at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = _pdf_text(pdf, tmp_path)
    assert user in text and "through 2025-12-31" in text
    assert f"{card.total.events:,}" in text
    for line in card.kinds:
        assert f"{line.events:,}" in text, line
    assert "Limits this billing period" in text and "Active days over the last year" in text
    page = _first_page_png(pdf, tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(page, ARTIFACTS / "report-pdf-page-1.png")
    assert coloured_fraction(page) > 0.01, "the first page shows no chart"


def test_the_page_check_fails_on_a_page_without_charts(tmp_path: Path) -> None:
    pdf = html_to_pdf("<!DOCTYPE html><title>x</title><h1>Only text, no chart</h1><p>1,234 events</p>")
    assert "1,234 events" in _pdf_text(pdf, tmp_path)
    assert coloured_fraction(_first_page_png(pdf, tmp_path)) < 0.001


def test_a_user_with_one_event_gets_a_report(dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select tally.record_usage('only', 'newcomer', 'ocr', 1, occurred_at => '2025-12-10 09:00+00')")
        html = render_html(conn, "newcomer", end=END)
        pdf = render_pdf(conn, "newcomer", end=END)
    assert "<h1>newcomer</h1>" in html and "no data yet" in html  # the voice chart has nothing to show
    assert "ocr" in html and "1 day<" in html  # longest streak, in the singular
    text = _pdf_text(pdf, tmp_path)
    assert "newcomer" in text and "ocr" in text


def test_an_unknown_user_is_refused(dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(UnknownUser, match="'nobody'"):
        render_html(conn, "nobody")
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", "nobody", "--dsn", dsn, "--output", str(out)])
    assert res.exit_code == 1 and "no usage recorded for user 'nobody'" in res.output
    assert not out.exists()


def test_a_reader_sees_only_its_own_report(dsn: str, login_role) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select tally.record_usage('a1', 'alice', 'tts', 100, occurred_at => '2025-12-01 10:00+00')")
        conn.execute("select tally.record_usage('b1', 'bob', 'tts', 200, occurred_at => '2025-12-01 10:00+00')")
    reader = login_role("tally_reader")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=reader)) as conn:
        conn.execute("select set_config('tally.user_id', 'alice', true)")
        assert "<h1>alice</h1>" in render_html(conn, "alice", end=END)
        with pytest.raises(UnknownUser):
            render_html(conn, "bob", end=END)


def test_the_cli_writes_html_and_pdf(loaded: tuple[str, str], tmp_path: Path) -> None:
    dsn, user = loaded
    for fmt, magic in (("html", b"<!DOCTYPE html>"), ("pdf", b"%PDF-")):
        out = tmp_path / f"report.{fmt}"
        res = CliRunner().invoke(
            main, ["report", user, "--dsn", dsn, "--format", fmt, "--output", str(out), "--end", "2025-12-31", "--json"]
        )
        assert res.exit_code == 0, res.output
        assert out.read_bytes().startswith(magic)
        assert '"bytes": ' in res.output and f'"format": "{fmt}"' in res.output


def test_a_missing_chromium_is_a_clear_error(dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select tally.record_usage('e1', 'u1', 'tts', 5, occurred_at => '2025-12-01 10:00+00')")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ChromiumMissing, match="apt-get install chromium"):
        html_to_pdf("<p>x</p>")
    res = CliRunner().invoke(main, ["report", "u1", "--dsn", dsn, "--format", "pdf", "--output", str(tmp_path / "x")])
    assert res.exit_code == 1 and "no chromium" in res.output and "Traceback" not in res.output
