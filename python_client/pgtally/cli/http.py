"""`pgtally serve` (the HTTP API on uvicorn) and `pgtally token` (a token for local use); needs ``pgtally[http]``."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import psycopg

from ._common import emit_json

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    m = _DURATION.match(value)
    if not m or int(m.group(1)) == 0:
        raise click.BadParameter(f"{value!r} is not a duration like 30m, 12h or 7d")
    return dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def _needs_http_extra() -> None:
    """One line saying what to install when the HTTP API's dependencies are missing."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "jwt", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        raise click.ClickException(f"the HTTP API needs `pip install 'pgtally[http]'` (missing: {', '.join(missing)})")


def _secret(explicit: str | None, *, create: bool) -> tuple[str, str]:
    """The HS256 secret and where it comes from: --secret, $PGTALLY_JWT_SECRET, or the development secret file."""
    from ..http.settings import dev_secret, dev_secret_file

    if explicit:
        return explicit, "--secret"
    if os.environ.get("PGTALLY_JWT_SECRET"):
        return os.environ["PGTALLY_JWT_SECRET"], "$PGTALLY_JWT_SECRET"
    path = dev_secret_file()
    secret = dev_secret(path, create=create)
    if secret is None:
        raise click.UsageError(f"no secret: set PGTALLY_JWT_SECRET, pass --secret, or create {path}")
    return secret, str(path)


@click.command()
@click.argument("user_id")
@click.option(
    "--role",
    type=click.Choice(["reader", "analyst", "writer"]),
    default="reader",
    show_default=True,
    help="reader: the user's own usage; analyst: the admin routes; writer: ingest.",
)
@click.option("--secret", help="HS256 secret (default: $PGTALLY_JWT_SECRET, else the development secret).")
@click.option(
    "--expires",
    default="12h",
    show_default=True,
    callback=_duration,
    help="Lifetime of the token: 30m, 12h, 7d ...",
)
@click.option("--issuer", envvar="PGTALLY_JWT_ISSUER", help="iss claim (when the server requires one).")
@click.option("--audience", envvar="PGTALLY_JWT_AUDIENCE", help="aud claim (when the server requires one).")
@click.option("--json", "as_json", is_flag=True, help="Print the token and its claims as JSON.")
def token(
    user_id: str,
    role: str,
    secret: str | None,
    expires: dt.timedelta,
    issuer: str | None,
    audience: str | None,
    as_json: bool,
) -> None:
    """Print a JWT for USER_ID to call the HTTP API locally (HS256).

    The secret is --secret, else $PGTALLY_JWT_SECRET, else the development secret in .pgtally/dev-jwt-secret
    (created when missing; `pgtally serve` uses the same one). Use it as `Authorization: Bearer <token>`.
    """
    _needs_http_extra()
    from ..http.auth import MAX_USER_ID, make_token

    if not user_id or len(user_id) > MAX_USER_ID:
        raise click.BadParameter(f"a user id of 1 to {MAX_USER_ID} characters", param_hint="USER_ID")
    key, source = _secret(secret, create=True)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    text = make_token(key, user_id, role, expires_in=expires, issuer=issuer, audience=audience, now=now)
    if as_json:
        emit_json(
            {
                "token": text,
                "user_id": user_id,
                "role": role,
                "expires_at": (now + expires).isoformat(),
                "secret_from": source,
            }
        )
    else:
        click.echo(text)


@contextlib.contextmanager
def _demo_dsn(cluster_dir: Path) -> Iterator[tuple[str, str | None]]:
    """The demo's kept cluster, started for the server's lifetime: its DSN and the featured user."""
    from .. import server
    from ..demo.run import DEMO_DATABASE, _read_mark

    if not (cluster_dir / "data" / "PG_VERSION").exists():
        raise click.ClickException(f"no demo data in {cluster_dir}: run `pgtally demo` first")
    if (cluster_dir / "data" / "postmaster.pid").exists():
        server.LocalCluster(cluster_dir.resolve()).stop()
    with server.database(backend="local", settings=server.FAST_UNSAFE, keep_dir=cluster_dir.resolve()) as url:
        mark = _read_mark(url)
        if mark is None:
            raise click.ClickException(f"the demo cluster in {cluster_dir} holds no demo data: run `pgtally demo`")
        yield psycopg.conninfo.make_conninfo(url, dbname=DEMO_DATABASE), mark.featured


@click.command()
@click.option(
    "--dsn", envvar=["PGTALLY_DSN", "DATABASE_URL"], help="Login role's DSN (default: $PGTALLY_DSN, $DATABASE_URL)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--demo", is_flag=True, help="Serve the database of `pgtally demo` (starts its kept cluster).")
@click.option(
    "--cluster-dir",
    default=".pgtally/demo-cluster",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="With --demo: where the demo keeps its cluster.",
)
@click.option(
    "--maintenance-dsn",
    envvar="PGTALLY_MAINTENANCE_DSN",
    help="A tally_owner member's DSN: backlog gauges in /metrics and --merge-every (with --demo: the demo's).",
)
@click.option(
    "--merge-every",
    type=click.FloatRange(min=1),
    default=None,
    help="Merge pending deltas every this many seconds (needs a maintenance DSN; with --demo: 60).",
)
@click.option("--pool-size", default=10, show_default=True, type=click.IntRange(1, 1000), help="Most connections.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(
    dsn: str | None,
    host: str,
    port: int,
    demo: bool,
    cluster_dir: Path,
    maintenance_dsn: str | None,
    merge_every: float | None,
    pool_size: int,
    log_level: str,
) -> None:
    """Serve the HTTP API (interactive docs at /docs, OpenAPI at /openapi.json, metrics at /metrics).

    The DSN's role must be a member of tally_reader, tally_analyst and tally_writer: each request runs as one of
    them (SET LOCAL ROLE) with the token's user id, so row-level security keeps users apart (docs/http.md).
    Tokens are checked with $PGTALLY_JWT_SECRET (HS256) and/or $PGTALLY_JWT_PUBLIC_KEY(_FILE) (RS256); without
    either, with the development secret that `pgtally token` signs with.
    """
    _needs_http_extra()
    import uvicorn

    from ..http import RequestIdFilter, Settings, create_app

    given = click.get_current_context().get_parameter_source("dsn")
    if demo and given is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--demo serves the demo's own database: leave out --dsn")
    with contextlib.ExitStack() as stack:
        featured = None
        if demo:
            dsn, featured = stack.enter_context(_demo_dsn(cluster_dir))
            maintenance_dsn = maintenance_dsn or dsn
            merge_every = merge_every or 60.0
        if not dsn:
            raise click.UsageError("no database given: pass --dsn, set PGTALLY_DSN or DATABASE_URL, or use --demo")
        if merge_every and not maintenance_dsn:
            raise click.UsageError("--merge-every needs --maintenance-dsn (a role that may run tally.merge_pending)")
        settings = Settings.from_env(
            dsn=dsn, maintenance_dsn=maintenance_dsn, merge_interval_s=merge_every, pool_max_size=pool_size
        )
        secret_note = None
        if not settings.jwt_secret and not settings.jwt_public_key:
            secret, source = _secret(None, create=True)
            settings = settings.replace(jwt_secret=secret)
            secret_note = f"development secret from {source}: for local use only"
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
        logger = logging.getLogger("pgtally.http")  # and pgtally.http.access: a line per request, with its id
        logger.handlers[:] = [handler]
        logger.setLevel(log_level.upper())
        logger.propagate = False
        app = create_app(settings)
        base = f"http://{host}:{port}"
        click.echo(f"pgtally API on {base} (docs: {base}/docs, OpenAPI: {base}/openapi.json, metrics: {base}/metrics)")
        if secret_note:
            click.echo(f"Tokens: {secret_note}; get one with `pgtally token USER [--role analyst|writer]`.")
        if featured:
            click.echo(f"Demo: the featured user is {featured}: `pgtally token {featured}`.")
        # uvicorn re-raises SIGTERM after its graceful shutdown: make that an exit through this block, so that the
        # demo's cluster (and anything else entered above) is stopped too.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        except KeyboardInterrupt:  # Ctrl+C: uvicorn shut down gracefully already
            pass


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


COMMANDS = (serve, token)
