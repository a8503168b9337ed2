"""Monthly e-mail summaries: one message per subscribed user and month, sent exactly once through an outbox.

Users subscribe with ``tally.subscribe_reports(email)`` and unsubscribe with
the token of the link every summary carries (``tally.unsubscribe_reports``).
:func:`send_reports` (``pgtally send-reports``) mails the summary of a
calendar month to every subscriber:

1. it inserts one ``tally.report_outbox`` row per subscriber and month
   (``on conflict do nothing``: a second run adds nothing);
2. it claims one unsent row at a time with ``SELECT ... FOR UPDATE SKIP
   LOCKED`` in a transaction, so two concurrent runs never work on the same
   row;
3. it renders the user's month (an HTML part with a bar chart in inline CSS,
   and a plain-text part with the same figures), sends it over SMTP, and marks
   the row sent in the same transaction.

A row marked sent is never sent again. A run killed before the commit leaves
its row unsent (the lock goes with the connection), so the next run sends it.
The one window left is a kill after the SMTP server accepted the message and
before the commit: the next run sends the message again, with the same
``Message-ID`` (derived from user and month), which lets a receiving system
drop the copy. docs/reports.md has the details.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import smtplib
from collections.abc import Callable, Sequence
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from typing import Any

import psycopg

from ..client import Client
from ..models import human_duration
from .html import kind_units

#: Colour of the bars of the chart (the report's first palette colour).
BAR_COLOUR = "#4e79a7"
#: Height in pixels of the tallest bar of the e-mail's chart.
CHART_HEIGHT = 80
#: Attempts per user and month after which a run stops retrying a failed summary.
MAX_ATTEMPTS = 5


# ------------------------------------------------------------------- the figures


@dataclasses.dataclass(frozen=True)
class KindMonth:
    """One kind's usage in the month: quantities of a kind are in its own unit and never added to another's."""

    kind: str
    display_name: str
    unit: str
    events: int
    quantity: Decimal
    duration_ms: Decimal
    cost: Decimal


@dataclasses.dataclass(frozen=True)
class MonthSummary:
    """The figures of one user's calendar month (local days of the user's time zone)."""

    user_id: str
    month: dt.date
    events: int
    failures: int
    active_days: int
    duration_ms: Decimal
    cost: Decimal
    kinds: tuple[KindMonth, ...]
    days: tuple[tuple[dt.date, int], ...]
    previous_events: int

    @property
    def label(self) -> str:
        """The month as YYYY-MM."""
        return f"{self.month:%Y-%m}"


def parse_month(text: str) -> dt.date:
    """The first day of a month given as YYYY-MM; ValueError otherwise."""
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"{text!r} is not a month like 2026-03 (YYYY-MM)") from None


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def month_summary(client: Client, user_id: str, month: dt.date) -> MonthSummary:
    """Reads one user's month: totals, per kind, events per local day, and the previous month's events."""
    month = month.replace(day=1)
    last = _next_month(month) - dt.timedelta(days=1)
    previous = (month - dt.timedelta(days=1)).replace(day=1)
    at = dt.datetime.combine(_next_month(month), dt.time(), dt.timezone.utc) + dt.timedelta(days=1)
    buckets = client.usage_history(user_id, "custom", "day", dimension="kind", from_day=month, to_day=last, at=at)
    before = client.usage_history(
        user_id, "custom", "month", from_day=previous, to_day=month - dt.timedelta(days=1), at=at
    )
    units = kind_units(client)
    per_day: dict[dt.date, int] = {}
    per_kind: dict[str, list[Any]] = {}
    for b in buckets:
        per_day[b.bucket_start] = per_day.get(b.bucket_start, 0) + b.events
        if b.value is None:
            continue
        k = per_kind.setdefault(b.value, [0, Decimal(0), Decimal(0), Decimal(0), 0])
        k[0] += b.events
        k[1] += Decimal(b.quantity or 0)
        k[2] += Decimal(b.duration_ms or 0)
        k[3] += Decimal(b.cost)
        k[4] += b.failures
    kinds = tuple(
        KindMonth(
            kind=kind,
            display_name=units.get(kind, (kind, ""))[0],
            unit=units.get(kind, ("", ""))[1],
            events=v[0],
            quantity=v[1],
            duration_ms=v[2],
            cost=v[3],
        )
        for kind, v in sorted(per_kind.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if v[0] or v[1] or v[4]
    )
    days = tuple(sorted(per_day.items()))
    return MonthSummary(
        user_id=user_id,
        month=month,
        events=sum(k.events for k in kinds),
        failures=sum(v[4] for v in per_kind.values()),
        active_days=sum(1 for _, n in days if n > 0),
        duration_ms=sum((k.duration_ms for k in kinds), Decimal(0)),
        cost=sum((k.cost for k in kinds), Decimal(0)),
        kinds=kinds,
        days=days,
        previous_events=sum(b.events for b in before),
    )


# ------------------------------------------------------------------ the message


def _n(value: int | Decimal) -> str:
    return f"{value:,}" if isinstance(value, int) or value == value.to_integral_value() else f"{value:,.2f}"


def _events(n: int) -> str:
    return f"{n:,} event{'' if n == 1 else 's'}"


def _quantity(k: KindMonth) -> str:
    return f"{_n(k.quantity)} {k.unit}".strip()


def _change(summary: MonthSummary) -> str:
    if not summary.previous_events:
        return "no events the month before"
    pct = (summary.events - summary.previous_events) * 100 / summary.previous_events
    return f"{pct:+.0f}% events against the month before ({summary.previous_events:,})"


def message_id(user_id: str, month: dt.date, domain: str) -> str:
    """The Message-ID of a user's summary of a month: the same for every attempt, so a resent copy is recognizable.

    A hash of user and month (the user id itself stays out of the header).
    """
    digest = hashlib.sha256(f"pgtally-monthly-report\0{user_id}\0{month:%Y-%m}".encode()).hexdigest()[:32]
    return f"<report-{month:%Y%m}-{digest}@{domain}>"


def chart_html(days: Sequence[tuple[dt.date, int]]) -> str:
    """Events per day as a bar chart of table cells and inline CSS (no SVG, no image: mail clients show it)."""
    top = max((n for _, n in days), default=0) or 1
    cells = "".join(
        '<td style="vertical-align:bottom;padding:0 1px">'
        f'<div title="{d:%Y-%m-%d}: {n:,} events" style="width:9px;height:{max(round(CHART_HEIGHT * n / top), 1 if n else 0)}px;'
        f'background:{BAR_COLOUR if n else "#ebedf0"};font-size:0;line-height:0">&nbsp;</div></td>'
        for d, n in days
    )
    labels = "".join(
        f'<td style="font-size:9px;color:#6a737d;text-align:center;padding:0">{d.day if d.day in (1, 10, 20) else ""}</td>'
        for d, _ in days
    )
    return (
        f'<table role="img" aria-label="Events per day" cellpadding="0" cellspacing="0" '
        f'style="border-collapse:collapse;height:{CHART_HEIGHT + 14}px"><tr style="height:{CHART_HEIGHT}px">{cells}</tr>'
        f"<tr>{labels}</tr></table>"
    )


def render_text(summary: MonthSummary, unsubscribe_link: str | None) -> str:
    """The plain-text part: the same figures as the HTML part, one per line."""
    lines = [
        f"Usage summary {summary.label} for {summary.user_id}",
        "",
        f"events: {summary.events:,}",
        f"active days: {summary.active_days}",
        f"duration: {human_duration(int(summary.duration_ms))}",
        f"cost: {summary.cost:,.2f}",
        f"failed operations: {summary.failures:,}",
        f"change: {_change(summary)}",
        "",
    ]
    for k in summary.kinds:
        lines.append(f"{k.display_name}: {_events(k.events)}, {_quantity(k)}, {human_duration(int(k.duration_ms))}")
    if not summary.kinds:
        lines.append("No usage this month.")
    busiest = max(summary.days, key=lambda d: d[1], default=None)
    if busiest and busiest[1]:
        lines += ["", f"busiest day: {busiest[0]:%Y-%m-%d} ({_events(busiest[1])})"]
    lines += ["", _footer_text(unsubscribe_link)]
    return "\n".join(lines) + "\n"


def _footer_text(unsubscribe_link: str | None) -> str:
    if unsubscribe_link:
        return f"You get this e-mail because you subscribed to monthly usage summaries. Unsubscribe: {unsubscribe_link}"
    return "You get this e-mail because you subscribed to monthly usage summaries."


def render_email_html(summary: MonthSummary, unsubscribe_link: str | None) -> str:
    """The HTML part: headline figures, a table per kind and the chart of events per day (inline CSS only)."""
    e = escape
    figures = [
        ("events", f"{summary.events:,}"),
        ("active days", str(summary.active_days)),
        ("duration", human_duration(int(summary.duration_ms))),
        ("cost", f"{summary.cost:,.2f}"),
    ]
    head = "".join(
        '<td style="padding:8px 14px 8px 0;vertical-align:top">'
        f'<div style="font-size:20px;font-weight:700">{e(v)}</div>'
        f'<div style="font-size:12px;color:#6a737d">{e(k)}</div></td>'
        for k, v in figures
    )
    cell = "padding:4px 8px;border-bottom:1px solid #e1e4e8"
    rows = "".join(
        f'<tr><td style="{cell}">{e(k.display_name)}</td><td style="{cell};text-align:right">{k.events:,}</td>'
        f'<td style="{cell};text-align:right">{e(_quantity(k))}</td>'
        f'<td style="{cell};text-align:right">{e(human_duration(int(k.duration_ms)))}</td></tr>'
        for k in summary.kinds
    )
    kinds = (
        '<table cellpadding="0" cellspacing="0" style="border-collapse:collapse;font-size:13px;margin:12px 0">'
        f'<tr><th style="{cell};text-align:left">kind</th><th style="{cell};text-align:right">events</th>'
        f'<th style="{cell};text-align:right">quantity</th><th style="{cell};text-align:right">duration</th></tr>'
        f"{rows}</table>"
        if summary.kinds
        else '<p style="color:#6a737d">No usage this month.</p>'
    )
    footer = e(_footer_text(None))
    if unsubscribe_link:
        footer += f' <a href="{e(unsubscribe_link, quote=True)}" style="color:#6a737d">Unsubscribe</a>.'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Usage summary {e(summary.label)}</title></head>
<body style="margin:0;padding:16px;background:#ffffff;color:#1b1f24;font:14px/1.45 -apple-system,'Segoe UI',Roboto,Arial,sans-serif">
<h1 style="font-size:20px;margin:0 0 4px">Usage summary {e(summary.label)}</h1>
<p style="margin:0 0 12px;color:#6a737d">{e(summary.user_id)} · {e(_change(summary))}</p>
<table cellpadding="0" cellspacing="0" style="border-collapse:collapse"><tr>{head}</tr></table>
{kinds}
<h2 style="font-size:14px;margin:16px 0 6px">Events per day</h2>
{chart_html(summary.days)}
<p style="margin:20px 0 0;font-size:12px;color:#6a737d">{footer}</p>
</body></html>
"""


def compose(
    summary: MonthSummary,
    *,
    sender: str,
    recipient: str,
    unsubscribe_link: str | None = None,
    msg_id: str | None = None,
) -> EmailMessage:
    """The e-mail of a month summary: text and HTML alternatives, a stable Message-ID, List-Unsubscribe headers."""
    domain = sender.rpartition("@")[2].strip(">") or "localhost"
    msg = EmailMessage()
    msg["Subject"] = f"Your usage in {summary.label}: {_events(summary.events)}"
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
    msg["Message-ID"] = msg_id or message_id(summary.user_id, summary.month, domain)
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe_link:
        msg["List-Unsubscribe"] = f"<{unsubscribe_link}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(render_text(summary, unsubscribe_link))
    msg.add_alternative(render_email_html(summary, unsubscribe_link), subtype="html")
    return msg


# -------------------------------------------------------------------- sending


@dataclasses.dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: host, port, STARTTLS, and a login when the server wants one."""

    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0


@dataclasses.dataclass(frozen=True)
class Delivery:
    """What a run did for one user: sent, failed (with the error), or would send (dry run)."""

    user_id: str
    email: str
    status: str
    message_id: str
    events: int
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class SendResult:
    """The outcome of one run of :func:`send_reports`."""

    month: dt.date
    deliveries: tuple[Delivery, ...]

    @property
    def sent(self) -> int:
        return sum(1 for d in self.deliveries if d.status == "sent")

    @property
    def failed(self) -> int:
        return sum(1 for d in self.deliveries if d.status == "failed")


class SmtpUnavailable(RuntimeError):
    """The SMTP server could not be reached or dropped the connection: the run stopped, nothing was marked."""


#: Errors about one message or recipient: that summary is marked failed and the run goes on.
_PER_MESSAGE = (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPNotSupportedError)


def unsubscribe_link(template: str | None, token: str) -> str | None:
    """The unsubscribe link of a subscriber: ``template`` with ``{token}`` replaced (None without a template)."""
    return template.replace("{token}", token) if template else None


def send_reports(
    conn: psycopg.Connection[Any],
    month: dt.date,
    *,
    smtp: SmtpSettings,
    sender: str = "pgtally <reports@localhost>",
    unsubscribe_url: str | None = None,
    dry_run: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
    after_accept: Callable[[str], None] | None = None,
) -> SendResult:
    """Sends the summary of ``month`` to every subscriber that has not got it yet; each user gets it once.

    ``conn`` is an autocommit connection of the owner (``tally_owner``).
    ``unsubscribe_url`` is the link with ``{token}`` where the subscriber's
    unsubscribe token goes, e.g. ``https://app.example/unsubscribe?token={token}``.
    ``dry_run`` renders and lists what would be sent, and writes and sends
    nothing. A failed summary (the server refused the recipient or the message)
    is marked failed and retried by the next run, up to ``max_attempts``;
    when the server cannot be reached the run stops with
    :class:`SmtpUnavailable`, leaving the current row unsent. ``after_accept``
    is called with the user id after the server accepted a message and before
    the row is marked sent (a test hook for the one window where a kill means
    a resend, with the same Message-ID). Example::

        with psycopg.connect(dsn, autocommit=True) as conn:
            send_reports(conn, dt.date(2026, 3, 1), smtp=SmtpSettings("mail.internal", 25),
                         unsubscribe_url="https://app.example/unsubscribe?token={token}")
    """
    month = month.replace(day=1)
    client = Client(conn)
    domain = sender.rpartition("@")[2].strip(">") or "localhost"
    token_sql = "rtrim(translate(encode(s.unsubscribe_token, 'base64'), '+/', '-_'), '=')"
    if dry_run:
        rows = conn.execute(
            f"""select s.user_id, s.email, {token_sql}
                  from tally.report_subscriptions s
                  left join tally.report_outbox o on o.user_id = s.user_id and o.month = %s
                 where o.status is distinct from 'sent' and coalesce(o.attempts, 0) < %s
                 order by s.user_id""",
            (month, max_attempts),
        ).fetchall()
        planned = []
        for user_id, email, _token in rows:
            summary = month_summary(client, user_id, month)
            planned.append(Delivery(user_id, email, "would send", message_id(user_id, month, domain), summary.events))
        return SendResult(month, tuple(planned))

    conn.execute(
        """insert into tally.report_outbox (user_id, month)
           select s.user_id, %s from tally.report_subscriptions s order by s.user_id
           on conflict do nothing""",
        (month,),
    )
    done: list[str] = []
    deliveries: list[Delivery] = []
    server: smtplib.SMTP | None = None
    try:
        while True:
            with conn.transaction():
                claimed = conn.execute(
                    f"""select o.user_id, s.email, {token_sql}
                          from tally.report_outbox o
                          join tally.report_subscriptions s on s.user_id = o.user_id
                         where o.month = %s and o.status <> 'sent' and o.attempts < %s and o.user_id <> all(%s)
                         order by o.user_id
                         limit 1
                           for update of o skip locked""",
                    (month, max_attempts, done),
                ).fetchone()
                if claimed is None:
                    break
                user_id, email, token = claimed
                done.append(user_id)
                summary = month_summary(client, user_id, month)
                msg_id = message_id(user_id, month, domain)
                msg = compose(
                    summary,
                    sender=sender,
                    recipient=email,
                    unsubscribe_link=unsubscribe_link(unsubscribe_url, token),
                    msg_id=msg_id,
                )
                if server is None:
                    server = _connect(smtp)
                try:
                    server.send_message(msg)
                except _PER_MESSAGE as exc:
                    error = f"{type(exc).__name__}: {exc}"[:2000]
                    conn.execute(
                        """update tally.report_outbox set status = 'failed', attempts = attempts + 1, last_error = %s
                            where user_id = %s and month = %s""",
                        (error, user_id, month),
                    )
                    deliveries.append(Delivery(user_id, email, "failed", msg_id, summary.events, error))
                    continue
                except (smtplib.SMTPException, OSError) as exc:
                    raise SmtpUnavailable(f"the SMTP server {smtp.host}:{smtp.port} failed: {exc}") from exc
                if after_accept is not None:
                    after_accept(user_id)
                conn.execute(
                    """update tally.report_outbox
                          set status = 'sent', attempts = attempts + 1, sent_at = now(), message_id = %s,
                              last_error = null
                        where user_id = %s and month = %s""",
                    (msg_id, user_id, month),
                )
                deliveries.append(Delivery(user_id, email, "sent", msg_id, summary.events))
    finally:
        if server is not None:
            try:
                server.quit()
            except (smtplib.SMTPException, OSError):
                server.close()
    return SendResult(month, tuple(deliveries))


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    """An SMTP session, with STARTTLS and a login when asked for."""
    try:
        server = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        if smtp.starttls:
            server.starttls()
        if smtp.username:
            server.login(smtp.username, smtp.password or "")
    except (smtplib.SMTPException, OSError) as exc:
        raise SmtpUnavailable(f"cannot reach the SMTP server {smtp.host}:{smtp.port}: {exc}") from exc
    return server


__all__ = [
    "Delivery",
    "KindMonth",
    "MonthSummary",
    "SendResult",
    "SmtpSettings",
    "SmtpUnavailable",
    "compose",
    "message_id",
    "month_summary",
    "parse_month",
    "send_reports",
]
