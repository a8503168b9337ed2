"""Commands for what people receive: the usage report, the monthly e-mail summaries, threshold alerts and webhooks."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import click

from ..alerts import webhooks
from ..errors import PgTallyError, translated
from ..reports import email as mail
from ..reports.html import UnknownUser, render_html
from ..reports.pdf import ChromiumMissing, PdfFailed, html_to_pdf
from ..terminal import Col, fitted_table
from ._common import connect, console, dsn_option, emit_json, input_error, json_option


@click.command()
@dsn_option
@json_option
@click.argument("user_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "pdf"]),
    default="html",
    show_default=True,
    help="A self-contained HTML page, or the same page printed to PDF by headless Chromium.",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write.",
)
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Last day of the report, local (default: now).")
def report(dsn: str | None, as_json: bool, user_id: str, fmt: str, output: Path, end: dt.datetime | None) -> None:
    """Write the usage report of USER_ID (charts and figures) as HTML or PDF; exit 1 for an unknown user."""
    with connect(dsn) as conn:
        try:
            html = render_html(conn, user_id, end=end.date() if end else None)
        except UnknownUser as exc:
            click.echo(f"pgtally: {exc}", err=True)
            raise SystemExit(1) from exc
    try:
        data = html.encode("utf-8") if fmt == "html" else html_to_pdf(html)
    except (ChromiumMissing, PdfFailed) as exc:
        raise click.ClickException(str(exc)) from exc
    output.write_bytes(data)
    if as_json:
        emit_json({"user_id": user_id, "format": fmt, "output": str(output), "bytes": len(data)})
    else:
        console.print(f"wrote the {fmt.upper()} report of {user_id} to {output} ({len(data):,} bytes)")


def _month(ctx: click.Context, param: click.Parameter, value: str) -> dt.date:
    try:
        return mail.parse_month(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("send-reports")
@dsn_option
@json_option
@click.option("--month", required=True, callback=_month, help="The calendar month to summarize, YYYY-MM.")
@click.option("--smtp-host", default="localhost", show_default=True, help="SMTP server.")
@click.option("--smtp-port", default=25, show_default=True, type=click.IntRange(1, 65535), help="SMTP port.")
@click.option("--starttls", is_flag=True, help="Upgrade the SMTP connection with STARTTLS.")
@click.option("--smtp-user", help="SMTP login (the password comes from $PGTALLY_SMTP_PASSWORD).")
@click.option("--from", "sender", default="pgtally <reports@localhost>", show_default=True, help="From address.")
@click.option(
    "--unsubscribe-url",
    envvar="PGTALLY_UNSUBSCRIBE_URL",
    help="The unsubscribe link, {token} standing for the subscriber's token "
    "(e.g. https://app.example/unsubscribe?token={token}; default: $PGTALLY_UNSUBSCRIBE_URL).",
)
@click.option(
    "--max-attempts",
    default=mail.MAX_ATTEMPTS,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Stop retrying a summary that failed this many times.",
)
@click.option("--dry-run", is_flag=True, help="List what would be sent; send and write nothing.")
def send_reports(
    dsn: str | None,
    as_json: bool,
    month: dt.date,
    smtp_host: str,
    smtp_port: int,
    starttls: bool,
    smtp_user: str | None,
    sender: str,
    unsubscribe_url: str | None,
    max_attempts: int,
    dry_run: bool,
) -> None:
    """Mail the summary of --month to every subscriber that has not got it: once per user and month.

    Safe to run again, or from several hosts at once (cron or pg_cron): the
    outbox sends each user's summary once; a run that was stopped halfway is
    finished by the next one.
    """
    if unsubscribe_url is not None and "{token}" not in unsubscribe_url:
        raise click.BadParameter("the URL must contain {token}", param_hint="--unsubscribe-url")
    smtp = mail.SmtpSettings(
        smtp_host, smtp_port, starttls, smtp_user, os.environ.get("PGTALLY_SMTP_PASSWORD") if smtp_user else None
    )
    with connect(dsn) as conn:
        try:
            result = mail.send_reports(
                conn,
                month,
                smtp=smtp,
                sender=sender,
                unsubscribe_url=unsubscribe_url,
                dry_run=dry_run,
                max_attempts=max_attempts,
            )
        except mail.SmtpUnavailable as exc:
            raise click.ClickException(f"{exc}; the summaries not sent yet go out on the next run") from exc
    if as_json:
        emit_json(
            {
                "month": f"{month:%Y-%m}",
                "dry_run": dry_run,
                "sent": result.sent,
                "failed": result.failed,
                "deliveries": result.deliveries,
            }
        )
    else:
        console.print(
            fitted_table(
                console,
                f"summaries of {month:%Y-%m}" + (" (dry run: nothing sent)" if dry_run else ""),
                [
                    "user",
                    Col("e-mail", "left"),
                    Col("status", "left"),
                    Col("events"),
                    Col("error", "left", drop=1),
                ],
                [[d.user_id, d.email, d.status, f"{d.events:,}", d.error or ""] for d in result.deliveries],
            )
        )
        console.print(f"{result.sent} sent, {result.failed} failed")
    if result.failed:
        raise SystemExit(1)


# --------------------------------------------------------------------- webhooks


@click.group()
def webhook() -> None:
    """Webhook endpoints that receive the threshold alerts (signed per Standard Webhooks)."""


def _print_endpoints(endpoints: list[webhooks.Endpoint], title: str) -> None:
    console.print(
        fitted_table(
            console,
            title,
            [Col("id"), Col("url", "left"), Col("enabled", "left"), Col("added", "left", drop=1)],
            [
                [str(e.endpoint_id), e.url, "yes" if e.enabled else "no", f"{e.created_at:%Y-%m-%d %H:%M}"]
                for e in endpoints
            ],
        )
    )


@webhook.command("add")
@dsn_option
@json_option
@click.argument("url")
@click.option("--secret", help="Signing secret whsec_<base64> (default: a new random one, printed once).")
@click.option("--description", help="A description for people.")
def webhook_add(dsn: str | None, as_json: bool, url: str, secret: str | None, description: str | None) -> None:
    """Add endpoint URL: it receives the alerts recorded from now on. Prints its signing secret once."""
    with connect(dsn) as conn:
        try:
            with translated():
                endpoint, key = webhooks.add_endpoint(conn, url, secret=secret, description=description)
        except PgTallyError as exc:
            raise input_error(exc) from exc
    if as_json:
        emit_json({"endpoint": endpoint, "secret": key})
        return
    _print_endpoints([endpoint], "webhook endpoint added")
    console.print("signing secret (give it to the receiver; it is not shown again):")
    console.print(key, soft_wrap=True)


@webhook.command("list")
@dsn_option
@json_option
def webhook_list(dsn: str | None, as_json: bool) -> None:
    """Every endpoint (without secrets)."""
    with connect(dsn) as conn:
        endpoints = webhooks.list_endpoints(conn)
    if as_json:
        emit_json(endpoints)
        return
    _print_endpoints(endpoints, "webhook endpoints")


def _change_endpoint(dsn: str | None, as_json: bool, endpoint_id: int, action: str) -> None:
    with connect(dsn) as conn:
        if action == "remove":
            ok = webhooks.remove_endpoint(conn, endpoint_id)
        else:
            ok = webhooks.set_enabled(conn, endpoint_id, action == "enable")
    if as_json:
        emit_json({"endpoint_id": endpoint_id, "action": action, "done": ok})
    elif ok:
        console.print(f"{action}d webhook endpoint {endpoint_id}")
    if not ok:
        click.echo(f"pgtally: there is no webhook endpoint {endpoint_id}", err=True)
        raise SystemExit(1)


@webhook.command("remove")
@dsn_option
@json_option
@click.argument("endpoint_id", type=int)
def webhook_remove(dsn: str | None, as_json: bool, endpoint_id: int) -> None:
    """Remove endpoint ENDPOINT_ID with its delivery log; exit 1 when there is none."""
    _change_endpoint(dsn, as_json, endpoint_id, "remove")


@webhook.command("disable")
@dsn_option
@json_option
@click.argument("endpoint_id", type=int)
def webhook_disable(dsn: str | None, as_json: bool, endpoint_id: int) -> None:
    """Pause deliveries to ENDPOINT_ID (alerts recorded meanwhile are not sent to it)."""
    _change_endpoint(dsn, as_json, endpoint_id, "disable")


@webhook.command("enable")
@dsn_option
@json_option
@click.argument("endpoint_id", type=int)
def webhook_enable(dsn: str | None, as_json: bool, endpoint_id: int) -> None:
    """Resume deliveries to ENDPOINT_ID."""
    _change_endpoint(dsn, as_json, endpoint_id, "enable")


@click.command("deliver-alerts")
@dsn_option
@json_option
@click.option(
    "--max-attempts",
    default=webhooks.MAX_ATTEMPTS,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Attempts per alert and endpoint before giving up.",
)
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 300), help="Seconds per POST.")
def deliver_alerts(dsn: str | None, as_json: bool, max_attempts: int, timeout: float) -> None:
    """Post the due threshold alerts to every enabled webhook endpoint (schedule it every minute).

    A failed delivery is retried by a later run after 1, 2, 4, ... minutes
    (at most 6 hours apart); a delivered alert is never posted again.
    """
    with connect(dsn) as conn:
        run = webhooks.deliver_alerts(conn, max_attempts=max_attempts, timeout=timeout)
    if as_json:
        emit_json({"delivered": run.delivered, "failed": run.failed, "attempts": run.attempts})
        return
    console.print(
        fitted_table(
            console,
            "alert deliveries",
            [
                Col("alert", "left", drop=2),
                Col("endpoint"),
                Col("attempt"),
                Col("result", "left"),
                Col("next attempt", "left", drop=1),
            ],
            [
                [
                    a.alert_id,
                    str(a.endpoint_id),
                    str(a.attempt),
                    "delivered" if a.delivered else (a.error or "failed"),
                    f"{a.next_attempt_at:%Y-%m-%d %H:%M:%S}" if a.next_attempt_at else "",
                ]
                for a in run.attempts
            ],
        )
    )
    console.print(f"{run.delivered} delivered, {run.failed} failed")


@click.command("alerts")
@dsn_option
@json_option
@click.option("--user", "user_id", help="Only this user's alerts.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="Latest alerts to show.")
def alerts(dsn: str | None, as_json: bool, user_id: str | None, limit: int) -> None:
    """The threshold alerts recorded (latest first) and whether every endpoint got them."""
    with connect(dsn) as conn:
        rows = conn.execute(
            """select a.alert_id, a.user_id, a.kind, a.threshold, a.period_start, a.period_end, a.plan,
                      a.monthly_limit, a.quantity, a.created_at,
                      count(d.endpoint_id) filter (where d.delivered_at is not null) as delivered,
                      count(d.endpoint_id) as endpoints
                 from tally.quota_alerts a
                 left join tally.alert_deliveries d on d.alert_id = a.alert_id
                where %(user)s::text is null or a.user_id = %(user)s
                group by a.alert_id, a.user_id, a.period_start, a.kind, a.threshold
                order by a.created_at desc, a.user_id, a.kind, a.threshold
                limit %(limit)s""",
            {"user": user_id, "limit": limit},
        ).fetchall()
    keys = (
        "alert_id",
        "user_id",
        "kind",
        "threshold",
        "period_start",
        "period_end",
        "plan",
        "monthly_limit",
        "quantity",
        "created_at",
        "delivered",
        "endpoints",
    )
    items: list[dict[str, Any]] = [dict(zip(keys, r)) for r in rows]
    if as_json:
        emit_json(items)
        return
    console.print(
        fitted_table(
            console,
            "threshold alerts" + (f" of {user_id}" if user_id else ""),
            [
                "user",
                Col("kind", "left"),
                Col("threshold"),
                Col("period", "left"),
                Col("used of limit"),
                Col("delivered"),
                Col("plan", "left", drop=1),
                Col("recorded", "left", drop=2),
            ],
            [
                [
                    i["user_id"],
                    i["kind"],
                    f"{i['threshold']}%",
                    f"{i['period_start']} .. {i['period_end']}",
                    f"{i['quantity']:,} of {i['monthly_limit']:,}",
                    f"{i['delivered']}/{i['endpoints']}",
                    i["plan"],
                    f"{i['created_at']:%Y-%m-%d %H:%M}",
                ]
                for i in items
            ],
        )
    )


COMMANDS = (report, send_reports, webhook, deliver_alerts, alerts)
