"""Monthly e-mail summaries end to end against a real SMTP server (aiosmtpd): subscribe, send once, unsubscribe.

Every test records usage in March 2025 (fixed dates), subscribes users as a
tally_reader backend would, and sends the summaries of 2025-03 to an SMTP
server started here. What is checked is what recipients get: how many
messages, to whom, with which figures and Message-ID.
"""

from __future__ import annotations

import email
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from pgtally.cli import main
from pgtally.reports import SmtpSettings, send_reports
from pgtally.reports.email import message_id, parse_month

MONTH = parse_month("2025-03")
UNSUBSCRIBE = "https://app.example/unsubscribe?token={token}"
ROOT = Path(__file__).resolve().parents[1]


class Inbox:
    """An aiosmtpd handler keeping every message; ``delay`` slows each one down (for concurrent runs)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            time.sleep(self.delay)
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        with self.lock:
            self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, SmtpSettings, Callable[[float], None]]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()

    def slow(delay: float) -> None:
        inbox.delay = delay

    try:
        yield inbox, SmtpSettings("127.0.0.1", port), slow
    finally:
        controller.stop()


def _subscribe(dsn: str, role: str, user_id: str, address: str) -> str:
    """Subscribes as a tally_reader backend does for its user; returns the unsubscribe token."""
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=role)) as conn:
        conn.execute("select set_config('tally.user_id', %s, true)", (user_id,))
        row = conn.execute("select * from tally.subscribe_reports(%s)", (address,)).fetchone()
    assert row is not None and row[0] == user_id and row[1] == address
    return str(row[2])


def _unsubscribe(dsn: str, role: str, token: str) -> bool:
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=role)) as conn:  # no tally.user_id: the token is it
        return bool(conn.execute("select tally.unsubscribe_reports(%s)", (token,)).fetchone()[0])  # type: ignore[index]


@pytest.fixture
def usage(dsn: str, login_role: Callable[[str | None], str]) -> dict[str, Any]:
    """March 2025 usage of three users (and some in February), u1 and u2 subscribed, u3 subscribed then not."""
    reader = login_role("tally_reader")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for event_id, user, kind, quantity, at in (
            ("a1", "u1", "tts", 1200, "2025-03-03 10:00+00"),
            ("a2", "u1", "tts", 800, "2025-03-17 10:00+00"),
            ("a3", "u1", "ocr", 4, "2025-03-17 11:00+00"),
            ("a0", "u1", "tts", 999, "2025-02-20 10:00+00"),  # the month before: not in the figures
            ("b1", "u2", "ocr", 7, "2025-03-31 22:00+00"),
            ("c1", "u3", "tts", 50, "2025-03-05 10:00+00"),
        ):
            conn.execute(
                "select tally.record_usage(%s, %s, %s, %s, occurred_at => %s, duration_ms => 60000)",
                (event_id, user, kind, quantity, at),
            )
        conn.execute("select tally.merge_pending()")
    tokens = {user: _subscribe(dsn, reader, user, f"{user}@example.com") for user in ("u1", "u2", "u3")}
    assert _unsubscribe(dsn, reader, tokens["u3"])
    return {"reader": reader, "tokens": tokens}


def _outbox(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "select user_id, status, attempts, message_id is not null from tally.report_outbox order by user_id"
        ).fetchall()


def _send(dsn: str, settings: SmtpSettings, **kwargs: Any) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return send_reports(
            conn, MONTH, smtp=settings, sender="Usage <reports@app.example>", unsubscribe_url=UNSUBSCRIBE, **kwargs
        )


def test_each_subscriber_gets_one_summary_with_the_right_figures_even_when_run_twice(
    dsn: str, usage: dict[str, Any], smtp: tuple[Inbox, SmtpSettings, Any]
) -> None:
    inbox, settings, _ = smtp
    first = _send(dsn, settings)
    second = _send(dsn, settings)
    assert (first.sent, second.sent) == (2, 0)
    assert Counter(m["To"] for m in inbox.messages) == {"u1@example.com": 1, "u2@example.com": 1}
    assert inbox.to("u3@example.com") == []  # unsubscribed

    (msg,) = inbox.to("u1@example.com")
    assert msg["Message-ID"].strip() == message_id("u1", MONTH, "app.example")
    assert msg["Subject"] == "Your usage in 2025-03: 3 events"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "events: 3" in text and "active days: 2" in text
    # Per kind, by display name and unit when the kinds registry declares them; February's 999 is not in March.
    assert re.search(r"^(tts|Text to speech): 2 events, 2,000( characters)?, 2 min 00 s$", text, re.M), text
    assert re.search(r"^(ocr|OCR): 1 event, 4( pages)?, 1 min 00 s$", text, re.M), text
    assert "2,000" in html and "Events per day" in html and html.count('<td style="vertical-align:bottom') == 31
    link = UNSUBSCRIBE.replace("{token}", usage["tokens"]["u1"])
    assert link in text and link in html and msg["List-Unsubscribe"] == f"<{link}>"
    # A user's day is local: u2's event at 22:00 UTC on the 31st is in March in UTC.
    (msg2,) = inbox.to("u2@example.com")
    assert "events: 1" in msg2.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert _outbox(dsn) == [("u1", "sent", 1, True), ("u2", "sent", 1, True)]


def test_the_unsubscribe_token_works_once_and_a_wrong_one_does_nothing(
    dsn: str, usage: dict[str, Any], smtp: tuple[Inbox, SmtpSettings, Any]
) -> None:
    reader, token = usage["reader"], usage["tokens"]["u2"]
    # The last character's neighbour decodes to the same bytes (its 2 padding bits differ): refused too.
    alias = token[:-1] + chr(ord(token[-1]) + 1)
    for wrong in ("", "x", token[:-1] + ("A" if token[-1] != "A" else "B"), alias, token + "A", "' or true --"):
        assert not _unsubscribe(dsn, reader, wrong), wrong
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from tally.report_subscriptions").fetchone() == (2,)
    assert _unsubscribe(dsn, reader, token)
    assert not _unsubscribe(dsn, reader, token)  # used
    inbox, settings, _ = smtp
    assert _send(dsn, settings).sent == 1
    assert [m["To"] for m in inbox.messages] == ["u1@example.com"]


def test_a_run_killed_halfway_is_finished_by_the_next_with_at_most_the_documented_duplicate(
    dsn: str, usage: dict[str, Any], smtp: tuple[Inbox, SmtpSettings, Any], login_role: Any
) -> None:
    inbox, settings, _ = smtp
    reader = usage["reader"]
    for user in ("u4", "u5"):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "select tally.record_usage(%s, %s, 'tts', 10, occurred_at => '2025-03-09 10:00+00')", (user, user)
            )
        _subscribe(dsn, reader, user, f"{user}@example.com")
    # The sender dies (SIGKILL) right after the SMTP server accepted the second message, before its row is marked.
    script = textwrap.dedent(
        f"""
        import os, signal, psycopg
        from pgtally.reports import SmtpSettings, send_reports
        from pgtally.reports.email import parse_month
        accepted = []
        def die(user_id):
            accepted.append(user_id)
            if len(accepted) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        with psycopg.connect({dsn!r}, autocommit=True) as conn:
            send_reports(conn, parse_month("2025-03"), smtp=SmtpSettings("127.0.0.1", {settings.port}),
                         sender="Usage <reports@app.example>", unsubscribe_url={UNSUBSCRIBE!r}, after_accept=die)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT / "python_client")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert len(inbox.messages) == 2
    # Committed before the kill: sent. Accepted but not committed: still pending. Not reached: pending.
    assert [(u, s) for u, s, *_ in _outbox(dsn)] == [
        ("u1", "sent"),
        ("u2", "pending"),
        ("u4", "pending"),
        ("u5", "pending"),
    ]

    assert _send(dsn, settings).sent == 3
    assert _send(dsn, settings).sent == 0
    per_user = Counter(m["To"] for m in inbox.messages)
    assert per_user == {"u1@example.com": 1, "u2@example.com": 2, "u4@example.com": 1, "u5@example.com": 1}
    # The one duplicate is the window between the server's acceptance and the commit: same Message-ID, so a
    # receiving system can drop it.
    assert len({m["Message-ID"] for m in inbox.to("u2@example.com")}) == 1
    assert len({m["Message-ID"] for m in inbox.messages}) == 4
    assert all(s == "sent" for _, s, *_ in _outbox(dsn))


def test_two_concurrent_runs_never_send_the_same_summary(
    dsn: str, usage: dict[str, Any], smtp: tuple[Inbox, SmtpSettings, Any]
) -> None:
    inbox, settings, slow = smtp
    reader = usage["reader"]
    for i in range(6, 12):
        _subscribe(dsn, reader, f"u{i}", f"u{i}@example.com")
    slow(0.2)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(_send(dsn, settings))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(r.sent for r in results) == 8
    assert sum(1 for r in results if r.sent) >= 2, "the runs worked side by side"
    assert Counter(m["To"] for m in inbox.messages) == {f"u{i}@example.com": 1 for i in (1, 2, *range(6, 12))}


def test_dry_run_sends_and_writes_nothing(
    dsn: str, usage: dict[str, Any], smtp: tuple[Inbox, SmtpSettings, Any]
) -> None:
    inbox, settings, _ = smtp
    planned = _send(dsn, settings, dry_run=True)
    assert [(d.user_id, d.status, d.events) for d in planned.deliveries] == [
        ("u1", "would send", 3),
        ("u2", "would send", 1),
    ]
    assert inbox.messages == [] and _outbox(dsn) == []


def test_a_refused_recipient_is_marked_failed_and_retried(dsn: str, usage: dict[str, Any]) -> None:
    class Refusing(Inbox):
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            if address.startswith("u2@") and self.refuse:
                return "550 no such mailbox"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    refusing = Refusing()
    refusing.refuse = True  # type: ignore[attr-defined]
    port = _free_port()
    controller = Controller(refusing, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = _send(dsn, SmtpSettings("127.0.0.1", port))
        assert (result.sent, result.failed) == (1, 1)
        assert [(u, s, a) for u, s, a, _ in _outbox(dsn)] == [("u1", "sent", 1), ("u2", "failed", 1)]
        refusing.refuse = False  # type: ignore[attr-defined]
        result = _send(dsn, SmtpSettings("127.0.0.1", port))
        assert (result.sent, result.failed) == (1, 0)
        assert [(u, s, a) for u, s, a, _ in _outbox(dsn)] == [("u1", "sent", 1), ("u2", "sent", 2)]
        assert Counter(m["To"] for m in refusing.messages) == {"u1@example.com": 1, "u2@example.com": 1}
    finally:
        controller.stop()


def test_an_unreachable_server_stops_the_run_and_marks_nothing(dsn: str, usage: dict[str, Any]) -> None:
    res = CliRunner().invoke(
        main,
        [
            "send-reports",
            "--dsn",
            dsn,
            "--month",
            "2025-03",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(_free_port()),
        ],
    )
    assert res.exit_code == 1 and "next run" in res.output and "Traceback" not in res.output
    assert [(u, s, a) for u, s, a, _ in _outbox(dsn)] == [("u1", "pending", 0), ("u2", "pending", 0)]


def test_the_cli_sends_and_prints_json(dsn: str, usage: dict[str, Any], smtp: tuple[Inbox, SmtpSettings, Any]) -> None:
    inbox, settings, _ = smtp
    args = ["send-reports", "--dsn", dsn, "--month", "2025-03", "--smtp-host", "127.0.0.1"]
    args += ["--smtp-port", str(settings.port), "--from", "reports@app.example", "--unsubscribe-url", UNSUBSCRIBE]
    res = CliRunner().invoke(main, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert (data["sent"], data["failed"], data["month"]) == (2, 0, "2025-03")
    assert len(inbox.messages) == 2
    for bad, said in ((["--month", "2025-13"], "is not a month"), (["--unsubscribe-url", "https://x/"], "{token}")):
        res = CliRunner().invoke(main, [*args, *bad])
        assert res.exit_code == 2 and said in res.output, res.output


def test_subscribing_checks_the_address_and_the_session_user(dsn: str, login_role: Any) -> None:
    reader = login_role("tally_reader")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user=reader), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as no_user:
            conn.execute("select * from tally.subscribe_reports('a@example.com')")
        assert (no_user.value.sqlstate, no_user.value.diag.column_name) == ("PT011", "user_id")
        conn.execute("select set_config('tally.user_id', 'u1', false)")
        for bad in (
            "",
            "plain",
            "a@b",
            "a b@example.com",
            "a@example.com, b@example.com",
            "a@example.com\r\nBcc: x@y.z",
        ):
            with pytest.raises(psycopg.Error) as refused:
                conn.execute("select * from tally.subscribe_reports(%s)", (bad,))
            assert (refused.value.sqlstate, refused.value.diag.column_name) == ("PT011", "email"), bad
        first = conn.execute("select unsubscribe_token from tally.subscribe_reports('a@example.com')").fetchone()
        again = conn.execute(
            "select email_address, unsubscribe_token from tally.subscribe_reports('b@example.com')"
        ).fetchone()
        assert again == ("b@example.com", first[0])  # type: ignore[index]
        # Readers see their own subscription only.
        conn.execute("select set_config('tally.user_id', 'u2', false)")
        conn.execute("select * from tally.subscribe_reports('c@example.com')")
        assert conn.execute("select user_id, email from tally.report_subscriptions").fetchall() == [
            ("u2", "c@example.com")
        ]


def test_forgetting_a_user_deletes_the_address(dsn: str, usage: dict[str, Any]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("select tally.forget_user('u1')").fetchone()[0] is not None  # type: ignore[index]
        assert conn.execute("select user_id from tally.report_subscriptions").fetchall() == [("u2",)]
        assert conn.execute("select count(*) from tally.report_subscriptions where email like 'u1@%'").fetchone() == (
            0,
        )
