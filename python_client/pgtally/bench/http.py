"""HTTP benchmark: the API served by uvicorn over a loaded database, with concurrent clients.

Loads a year of usage with the deterministic workload generator (as ``pgtally bench reads``), merges,
analyzes and refreshes the analytics, then starts the API in its own process (``uvicorn --factory
pgtally.http:create_app_from_env``, one worker) and measures, with ``clients`` concurrent clients:

* ``GET /api/usage/summary`` and ``GET /api/usage/history?period=12m`` (days, and by month) for a sample of
  users (the 5 heaviest and up to 45 random ones), each with its own reader token;
* ``GET /api/admin/usage/analytics`` (the whole admin analytics in one call), one client;
* ``POST /api/usage/events`` with batches of ``batch_size`` new events: events recorded per second.

Latency is reported as the server measures it (the ``Server-Timing`` header the API sets on every response:
from the request reaching its route to the response; the same figure as the /metrics histogram) and as the
clients see it (with the HTTP round trip and the clients' own scheduling, on the same machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import random
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from .. import migrate, server
from ..client import Client
from ..demo.workload import generate_events
from ..http.auth import make_token
from .reads import _prepare, _set_time_zones, percentile, users_for

#: The target for the user endpoints (p99, server-side, 8 concurrent clients, 10M events).
USER_P99_MS = 15.0
_TIMING = re.compile(r"app;dur=([0-9.]+)")


@dataclass
class Figure:
    name: str
    calls: int
    p50_ms: float
    p99_ms: float
    client_p50_ms: float
    client_p99_ms: float
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def api_process(dsn: str, secret: str, pool: int) -> Iterator[str]:
    """The API in a uvicorn process of its own (so the clients do not share its interpreter); yields its URL."""
    port = _free_port()
    env = {
        **os.environ,
        "PGTALLY_DSN": dsn,
        "PGTALLY_JWT_SECRET": secret,
        "PGTALLY_POOL_MIN": str(pool),
        "PGTALLY_POOL_MAX": str(pool),
    }
    for name in ("PGTALLY_JWT_PUBLIC_KEY", "PGTALLY_JWT_PUBLIC_KEY_FILE", "PGTALLY_JWT_ISSUER", "PGTALLY_JWT_AUDIENCE"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "pgtally.http:create_app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API did not start: {proc.stderr.read() if proc.stderr else ''}")
            try:
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not answer within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _timed(
    http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[float, float, bool]:
    """Server-side and client-side milliseconds of one request, and whether it succeeded."""
    started = time.perf_counter()
    response = await http.request(method, path, headers=headers, content=body)
    client_ms = (time.perf_counter() - started) * 1000
    match = _TIMING.search(response.headers.get("server-timing", ""))
    return (float(match.group(1)) if match else client_ms), client_ms, response.status_code < 400


async def _run_clients(
    url: str, clients: int, jobs: Sequence[tuple[str, str, dict[str, str], bytes | None]]
) -> tuple[list[float], list[float], int, float]:
    """Send ``jobs`` with ``clients`` concurrent clients; server ms, client ms, errors, wall seconds."""
    server_ms: list[float] = []
    client_ms: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[str, str, dict[str, str], bytes | None]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            method, path, headers, body = queue.get_nowait()
            s, c, ok = await _timed(http, method, path, headers, body)
            server_ms.append(s)
            client_ms.append(c)
            errors += not ok

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    return server_ms, client_ms, errors, wall


def _figure(name: str, server_ms: list[float], client_ms: list[float], errors: int) -> Figure:
    return Figure(
        name,
        len(server_ms),
        percentile(server_ms, 0.5),
        percentile(server_ms, 0.99),
        percentile(client_ms, 0.5),
        percentile(client_ms, 0.99),
        errors,
    )


def _sample_users(dsn: str, seed: int) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                """select user_id from tally.user_totals where dimension = 'kind'
                    group by user_id order by sum(events + failures) desc, user_id"""
            ).fetchall()
        ]
    rng = random.Random(seed)
    return ids[:5] + rng.sample(ids[5:], min(len(ids) - 5, 45)) if len(ids) > 5 else ids


def _load(dsn: str, events: int, users: int, seed: int, now: dt.datetime, console: Console) -> float:
    _prepare(dsn)
    _set_time_zones(dsn, users, seed, 0)
    started = time.perf_counter()
    with console.status(f"loading {events:,} events for {users:,} users ..."), Client.connect(dsn) as client:
        client.record_many(generate_events(users, events, seed, now - dt.timedelta(days=365), now), chunk_size=50_000)
        while client.merge_pending(200_000):
            pass
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("vacuum analyze")
        client.admin.refresh()
    return time.perf_counter() - started


def _ingest_jobs(batches: int, batch_size: int, users: int, seed: int, now: dt.datetime, token: str) -> list[Any]:
    """JSON bodies of new events (ids of their own), a batch each."""
    stream = generate_events(users, batches * batch_size, seed + 1000, now - dt.timedelta(days=30), now)
    jobs = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for b in range(batches):
        batch = []
        for i, e in enumerate(itertools.islice(stream, batch_size)):
            batch.append(
                {
                    "event_id": f"http-bench-{b}-{i}",
                    "user_id": e.user_id,
                    "kind": e.kind,
                    "quantity": e.quantity,
                    "occurred_at": e.occurred_at.isoformat() if e.occurred_at else None,
                    "duration_ms": e.duration_ms,
                    "cost": str(e.cost),
                    "status": e.status,
                    "error_code": e.error_code,
                    "billable": e.billable,
                    "attributes": dict(e.attributes),
                }
            )
        jobs.append(("POST", "/api/usage/events", headers, json.dumps(batch).encode()))
    return jobs


def print_report(result: dict[str, Any], console: Console) -> None:
    p = result["parameters"]
    table = Table(
        title=f"pgtally HTTP API: {p['events']:,} events, {p['users']:,} users, {p['clients']} concurrent clients "
        f"(ms; server = Server-Timing, client = round trip; load average {result['machine']['load_average']:.1f})"
    )
    for col in ("request", "calls", "server p50", "server p99", "client p50", "client p99", "errors"):
        table.add_column(col, justify="left" if col == "request" else "right")
    for f in result["figures"]:
        good = f["name"].startswith("admin") or f["name"].endswith("one client") or f["p99_ms"] < USER_P99_MS
        table.add_row(
            f["name"],
            f"{f['calls']:,}",
            f"{f['p50_ms']:.2f}",
            f"{'[green]' if good else '[red]'}{f['p99_ms']:.2f}[/]",
            f"{f['client_p50_ms']:.2f}",
            f"{f['client_p99_ms']:.2f}",
            str(f["errors"]),
        )
    console.print(table)
    ingest = result["ingest"]
    console.print(
        f"ingest: {ingest['events']:,} events in batches of {ingest['batch_size']:,} with {p['clients']} clients: "
        f"[bold]{ingest['events_per_s']:,.0f} events/s[/] (batch p50 {ingest['batch_p50_ms']:.0f} ms, "
        f"p99 {ingest['batch_p99_ms']:.0f} ms, errors {ingest['errors']})"
    )
    verdict = result["verdict"]
    console.print(
        f"user endpoints p99 < {USER_P99_MS:g} ms (server-side): "
        + ("[green]met[/]" if verdict["met"] else "[red]not met[/]")
        + f" at {p['events']:,} events (the target is at 10M: --events 10000000)"
    )


def run_http_bench(
    *,
    events: int = 50_000,
    users: int | None = None,
    clients: int = 8,
    calls: int = 300,
    admin_calls: int = 20,
    ingest_batches: int = 24,
    batch_size: int = 1000,
    seed: int = 7,
    dsn: str | None = None,
    output: str | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Load, serve, measure, print a table and return (and write) the figures as JSON."""
    console = console or Console()
    users = users or users_for(events, 100_000)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if dsn is None:
            base = stack.enter_context(server.database(backend="local", settings=dict(server.FAST_UNSAFE)))
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute("drop database if exists pgtally_bench_http with (force)")
                conn.execute("create database pgtally_bench_http")
            dsn = psycopg.conninfo.make_conninfo(base, dbname="pgtally_bench_http")
            migrate.upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            version = conn.execute("show server_version").fetchone()
            if conn.execute("select count(*) from tally.usage_events").fetchone() != (0,):
                raise RuntimeError("bench http needs an empty pgtally database")
        load_s = _load(dsn, events, users, seed, now, console)
        sample = _sample_users(dsn, seed)
        secret = secrets.token_urlsafe(32)
        tokens = {u: {"Authorization": f"Bearer {make_token(secret, u, 'reader')}"} for u in sample}
        analyst = {"Authorization": f"Bearer {make_token(secret, 'bench-analyst', 'analyst')}"}
        writer = make_token(secret, "bench-producer", "writer")
        figures: list[Figure] = []
        with api_process(dsn, secret, clients + 2) as url:
            reads = {
                "summary": "/api/usage/summary",
                "history 12m (days)": "/api/usage/history?period=12m",
                "history 12m (months)": "/api/usage/history?period=12m&groupBy=month",
            }
            load = os.getloadavg()[0]
            with console.status("measuring the user endpoints ..."):
                for name, path in reads.items():
                    warm = [("GET", path, tokens[u], None) for u in sample]
                    asyncio.run(_run_clients(url, clients, warm))
                    jobs = [("GET", path, tokens[sample[i % len(sample)]], None) for i in range(calls)]
                    s, c, errors, _ = asyncio.run(_run_clients(url, clients, jobs))
                    figures.append(_figure(name, s, c, errors))
                # The same requests one at a time: the latency of a request alone, without queueing.
                for name, path in reads.items():
                    jobs = [("GET", path, tokens[sample[i % len(sample)]], None) for i in range(max(1, calls // 4))]
                    s, c, errors, _ = asyncio.run(_run_clients(url, 1, jobs))
                    figures.append(_figure(f"{name}, one client", s, c, errors))
            with console.status("measuring the admin analytics ..."):
                path = "/api/admin/usage/analytics"
                asyncio.run(_run_clients(url, 1, [("GET", path, analyst, None)] * 2))
                s, c, errors, _ = asyncio.run(_run_clients(url, 1, [("GET", path, analyst, None)] * admin_calls))
                figures.append(_figure("admin analytics (one client)", s, c, errors))
            with console.status(f"ingest: {ingest_batches} batches of {batch_size:,} ..."):
                jobs = _ingest_jobs(ingest_batches, batch_size, users, seed, now, writer)
                s, c, errors, wall = asyncio.run(_run_clients(url, clients, jobs))
    ingest = {
        "events": ingest_batches * batch_size,
        "batch_size": batch_size,
        "batches": ingest_batches,
        "events_per_s": ingest_batches * batch_size / wall if wall else 0.0,
        "batch_p50_ms": percentile(s, 0.5),
        "batch_p99_ms": percentile(s, 0.99),
        "errors": errors,
    }
    user_figures = [f for f in figures if not f.name.startswith("admin") and not f.name.endswith("one client")]
    result = {
        "benchmark": "http",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "server": version[0] if version else None,
            # Other work on the machine while measuring (1-minute load average): the figures depend on it.
            "load_average": load,
        },
        "parameters": {
            "events": events,
            "users": users,
            "clients": clients,
            "calls": calls,
            "admin_calls": admin_calls,
            "sample_users": len(sample),
            "seed": seed,
            "now": now.isoformat(),
            "load_s": load_s,
        },
        "figures": [f.as_dict() for f in figures],
        "ingest": ingest,
        "verdict": {
            "user_p99_ms": USER_P99_MS,
            "met": all(f.p99_ms < USER_P99_MS and not f.errors for f in user_figures),
        },
        "elapsed_s": time.perf_counter() - started,
    }
    print_report(result, console)
    if output:
        Path(output).write_text(json.dumps(result, indent=2, default=str))
    return result
