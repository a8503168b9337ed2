"""Commands for the reference data a DBA or support engineer otherwise edits with SQL: plans, subscriptions,
dimensions and kinds.

Each command calls the SQL function a DBA would call (``tally.upsert_plan``,
``tally.start_subscription``, ``tally.declare_dimension``, ``tally.declare_kind``,
...), so the database's checks apply; a value it refuses is one line on
stderr and exit code 2.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
import psycopg

from ..client import Client
from ..errors import PgTallyError, translated
from ..terminal import Col, fitted_table
from ._common import MOMENT, connect, console, dsn_option, emit_json, input_error, json_option, utc
from .user import _decimal


def _limits(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, int | None]:
    """--limit KIND=N (or KIND=unlimited), repeatable."""
    limits: dict[str, int | None] = {}
    for item in values:
        kind, sep, value = item.partition("=")
        if not sep or not kind:
            raise click.BadParameter(f"{item!r} is not KIND=N (e.g. tts=50000, or tts=unlimited)")
        if value == "unlimited":
            limits[kind] = None
            continue
        try:
            limits[kind] = int(value.replace("_", "").replace(",", ""))
        except ValueError:
            raise click.BadParameter(f"{item!r}: the limit must be a whole number or 'unlimited'") from None
    return limits


def _plans(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    rows = conn.execute(
        """select p.plan, p.tier, p.monthly_price, p.is_default, p.description,
                  coalesce(jsonb_object_agg(l.kind, l.monthly_limit order by l.kind)
                             filter (where l.kind is not null), '{}'::jsonb)
             from tally.plans p
             left join tally.plan_limits l on l.plan = p.plan
            group by p.plan
            order by p.tier, p.plan"""
    ).fetchall()
    return [
        {
            "plan": plan,
            "tier": tier,
            "monthly_price": price,
            "is_default": default,
            "description": description,
            "limits": limits,
        }
        for plan, tier, price, default, description, limits in rows
    ]


def _print_plans(plans: list[dict[str, Any]], title: str) -> None:
    console.print(
        fitted_table(
            console,
            title,
            [
                "plan",
                Col("tier"),
                Col("monthly price"),
                Col("default", "left"),
                Col("limits per billing period", "left"),
                Col("description", "left", drop=1),
            ],
            [
                [
                    p["plan"],
                    str(p["tier"]),
                    f"{p['monthly_price']:,}",
                    "yes" if p["is_default"] else "",
                    "\n".join(f"{k}: {v:,}" for k, v in p["limits"].items()) or "unlimited",
                    p["description"] or "",
                ]
                for p in plans
            ],
        )
    )


# ------------------------------------------------------------------------ plan


@click.group()
def plan() -> None:
    """Plans: tier, monthly price and per-kind limits per billing period."""


@plan.command("set")
@dsn_option
@json_option
@click.argument("name")
@click.option("--tier", type=int, required=True, help="Rank of the plan (higher is better), 0 or more.")
@click.option("--price", "price", required=True, callback=_decimal, help="Monthly price, an exact decimal.")
@click.option(
    "--limit",
    "limits",
    multiple=True,
    callback=_limits,
    metavar="KIND=N",
    help="Limit per billing period (repeatable; KIND=unlimited or leaving a kind out means no limit). "
    "The limits given replace all the plan's limits.",
)
@click.option("--default", "is_default", is_flag=True, help="Make it the plan of users without a subscription.")
@click.option("--description", help="A description for people.")
def plan_set(
    dsn: str | None,
    as_json: bool,
    name: str,
    tier: int,
    price: str,
    limits: dict[str, int | None],
    is_default: bool,
    description: str | None,
) -> None:
    """Create or change plan NAME (running subscriptions keep the price they started with)."""
    with connect(dsn) as conn:
        try:
            Client(conn).upsert_plan(
                name, tier=tier, monthly_price=price, limits=limits, is_default=is_default, description=description
            )
        except PgTallyError as exc:
            raise input_error(exc) from exc
        plans = [p for p in _plans(conn) if p["plan"] == name]
    if as_json:
        emit_json(plans[0])
        return
    _print_plans(plans, f"plan {name} saved")


@plan.command("list")
@dsn_option
@json_option
def plan_list(dsn: str | None, as_json: bool) -> None:
    """Every plan with its limits, by tier."""
    with connect(dsn) as conn:
        plans = _plans(conn)
    if as_json:
        emit_json(plans)
        return
    _print_plans(plans, "plans")


@plan.command("remove")
@dsn_option
@json_option
@click.argument("name")
def plan_remove(dsn: str | None, as_json: bool, name: str) -> None:
    """Remove plan NAME and its limits (refused while any subscription refers to it); exit 1 when there is none."""
    with connect(dsn) as conn:
        try:
            with translated():
                removed = bool(conn.execute("select tally.remove_plan(%s)", (name,)).fetchone()[0])  # type: ignore[index]
        except PgTallyError as exc:
            raise input_error(exc) from exc
    if as_json:
        emit_json({"plan": name, "removed": removed})
    elif removed:
        console.print(f"removed plan {name}")
    if not removed:
        click.echo(f"pgtally: there is no plan {name!r}", err=True)
        raise SystemExit(1)


# ---------------------------------------------------------------- subscription


@click.group()
def subscription() -> None:
    """A user's subscriptions: start (or change plan), end, show."""


@subscription.command("start")
@dsn_option
@json_option
@click.argument("user_id")
@click.argument("plan_name", metavar="PLAN")
@click.option("--at", "at", type=MOMENT, help="When it starts (default now; naive times are UTC).")
def subscription_start(dsn: str | None, as_json: bool, user_id: str, plan_name: str, at: dt.datetime | None) -> None:
    """Start USER_ID's subscription to PLAN; a running one ends at that moment (a plan change)."""
    with connect(dsn) as conn:
        client = Client(conn)
        try:
            client.start_subscription(user_id, plan_name, utc(at))
            summary = client.subscription_summary(user_id)
        except PgTallyError as exc:
            raise input_error(exc) from exc
    if as_json:
        emit_json(summary)
        return
    console.print(f"{user_id} is on plan {summary.current_plan} (subscriptions: {summary.subscriptions})")


@subscription.command("end")
@dsn_option
@json_option
@click.argument("user_id")
@click.option("--at", "at", type=MOMENT, help="When it ends (default now; naive times are UTC).")
def subscription_end(dsn: str | None, as_json: bool, user_id: str, at: dt.datetime | None) -> None:
    """End USER_ID's running subscription (the user falls back to the default plan); exit 1 when none runs."""
    with connect(dsn) as conn:
        try:
            ended = Client(conn).end_subscription(user_id, utc(at))
        except PgTallyError as exc:
            raise input_error(exc) from exc
    if as_json:
        emit_json({"user_id": user_id, "ended": ended})
    elif ended:
        console.print(f"ended the subscription of {user_id}")
    if not ended:
        click.echo(f"pgtally: {user_id!r} has no running subscription", err=True)
        raise SystemExit(1)


@subscription.command("show")
@dsn_option
@json_option
@click.argument("user_id")
def subscription_show(dsn: str | None, as_json: bool, user_id: str) -> None:
    """USER_ID's plan, subscription history, months paid and revenue; exit 1 for an unknown user."""
    with connect(dsn) as conn:
        client = Client(conn)
        summary = client.subscription_summary(user_id)
        history = conn.execute(
            """select started_at, ended_at, plan, monthly_price from tally.subscriptions
                where user_id = %s order by started_at""",
            (user_id,),
        ).fetchall()
        if not history and not client.lifetime_totals(user_id, "kind"):
            click.echo(f"pgtally: no usage or subscription recorded for user {user_id!r}", err=True)
            raise SystemExit(1)
    rows = [{"started_at": s, "ended_at": e, "plan": p, "monthly_price": price} for s, e, p, price in history]
    if as_json:
        emit_json({"summary": summary, "subscriptions": rows})
        return
    console.print(
        f"{user_id}: plan [bold]{summary.current_plan or '-'}[/bold]; {summary.months_subscribed} month(s) paid, "
        f"highest plan {summary.highest_plan or '-'}, revenue {summary.revenue:,}"
    )
    console.print(
        fitted_table(
            console,
            f"{user_id}: subscriptions",
            [Col("started", "left"), Col("ended", "left"), Col("plan", "left"), Col("monthly price")],
            [
                [
                    f"{r['started_at']:%Y-%m-%d %H:%M %Z}",
                    f"{r['ended_at']:%Y-%m-%d %H:%M %Z}" if r["ended_at"] else "running",
                    r["plan"],
                    f"{r['monthly_price']:,}",
                ]
                for r in rows
            ],
        )
    )


# ------------------------------------------------------------------- dimension


@click.group()
def dimension() -> None:
    """Dimensions: the attribute keys usage is broken down by (voice, model, provider, ...)."""


@dimension.command("declare")
@dsn_option
@json_option
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@click.option("--description", help="A description for people.")
def dimension_declare(
    dsn: str | None, as_json: bool, name: str, keys: tuple[str, ...], description: str | None
) -> None:
    """Declare dimension NAME from attribute KEYS (1 to 4; the key kind is the kind column).

    New events count at once; run `pgtally rebuild --dimension NAME` to backfill history.
    """
    with connect(dsn) as conn:
        try:
            Client(conn).declare_dimension(name, list(keys), description)
        except PgTallyError as exc:
            raise input_error(exc) from exc
    if as_json:
        emit_json({"name": name, "keys": list(keys), "description": description})
        return
    console.print(f"declared dimension {name} ({' / '.join(keys)}); backfill with: pgtally rebuild --dimension {name}")


@dimension.command("list")
@dsn_option
@json_option
def dimension_list(dsn: str | None, as_json: bool) -> None:
    """Every declared dimension with its keys."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "select name, keys, description, declared_at from tally.dimensions order by name"
        ).fetchall()
    items = [{"name": n, "keys": list(k), "description": d, "declared_at": at} for n, k, d, at in rows]
    if as_json:
        emit_json(items)
        return
    console.print(
        fitted_table(
            console,
            "dimensions",
            ["name", Col("keys", "left"), Col("description", "left", drop=1)],
            [[i["name"], " / ".join(i["keys"]), i["description"] or ""] for i in items],
        )
    )


# ------------------------------------------------------------------------ kind


def _require_kinds(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("select to_regclass('tally.kinds') is not null").fetchone()
    if not row or not row[0]:
        raise click.ClickException("this database has no kinds registry (tally.kinds): run `pgtally migrate`")


@click.group()
def kind() -> None:
    """Kinds of usage: the unit of each kind's quantity, its display name, audio or not, featured dimension."""


@kind.command("declare")
@dsn_option
@json_option
@click.argument("name")
@click.option("--unit", required=True, help="Unit of the quantity: characters, pages, tokens, seconds, ...")
@click.option("--display-name", help="Name shown to people (default: the kind).")
@click.option("--audio/--not-audio", default=False, show_default=True, help="Whether its duration is audio.")
@click.option("--featured-dimension", help="The dimension its summary card ranks (voice, model, ...).")
def kind_declare(
    dsn: str | None,
    as_json: bool,
    name: str,
    unit: str,
    display_name: str | None,
    audio: bool,
    featured_dimension: str | None,
) -> None:
    """Declare kind NAME (or change its declaration); reads apply it at once."""
    with connect(dsn) as conn:
        _require_kinds(conn)
        try:
            with translated():
                conn.execute(
                    "select tally.declare_kind(%s, %s, %s, %s, %s)",
                    (name, unit, display_name, audio, featured_dimension),
                )
        except PgTallyError as exc:
            raise input_error(exc) from exc
        items = _kinds(conn, name)
    if as_json:
        emit_json(items[0])
        return
    _print_kinds(items, f"kind {name} declared")


def _kinds(conn: psycopg.Connection[Any], only: str | None = None) -> list[dict[str, Any]]:
    rows = conn.execute(
        """select kind, unit, display_name, audio, featured_dimension from tally.kinds
            where %(only)s::text is null or kind = %(only)s order by kind""",
        {"only": only},
    ).fetchall()
    return [{"kind": k, "unit": u, "display_name": n, "audio": a, "featured_dimension": f} for k, u, n, a, f in rows]


def _print_kinds(items: list[dict[str, Any]], title: str) -> None:
    console.print(
        fitted_table(
            console,
            title,
            ["kind", Col("unit", "left"), Col("display name", "left"), Col("audio", "left"), Col("featured", "left")],
            [
                [i["kind"], i["unit"], i["display_name"], "yes" if i["audio"] else "", i["featured_dimension"] or ""]
                for i in items
            ],
        )
    )


@kind.command("list")
@dsn_option
@json_option
def kind_list(dsn: str | None, as_json: bool) -> None:
    """Every declared kind."""
    with connect(dsn) as conn:
        _require_kinds(conn)
        items = _kinds(conn)
    if as_json:
        emit_json(items)
        return
    _print_kinds(items, "kinds")


COMMANDS = (plan, subscription, dimension, kind)
