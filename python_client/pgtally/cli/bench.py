"""`pgtally bench`: the ingest, read, memory, HTTP and Citus benchmarks (needs ``pgtally[demo]``; the work is in :mod:`pgtally.bench`)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ._common import InputError, console, err_console

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def bench() -> None:
    """Benchmarks that print ratios against baselines measured in the same run."""


@bench.command("ingest")
@click.option("--seconds", default=10.0, show_default=True, help="Duration of each timed single-row run.")
@click.option("--clients", default=8, show_default=True, help="Concurrent writer connections.")
@click.option("--batch-events", default=200_000, show_default=True, help="Events in the batch (COPY) comparison.")
@click.option("--users", default=10_000, show_default=True, help="Distinct users in the many-users runs.")
@click.option("--dsn", envvar="PGTALLY_BENCH_DSN", help="Benchmark this server instead of a throwaway one.")
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
@click.option("--rounds", default=2, show_default=True, help="Alternating rounds per figure (the median is reported).")
@click.option(
    "--tests",
    "only",
    default="many-users,hot-user,batch,csv",
    show_default=True,
    help="Which figures to measure: many-users, hot-user (one user), batch (record_many), csv (psql \\copy).",
)
@click.option(
    "--fast/--durable",
    default=False,
    show_default=True,
    help="--fast turns fsync and synchronous_commit off on the throwaway server (CPU-bound ratios).",
)
def bench_ingest(
    seconds: float,
    clients: int,
    batch_events: int,
    users: int,
    dsn: str | None,
    output: str | None,
    rounds: int,
    only: str,
    fast: bool,
) -> None:
    """Ingest with pgtally's triggers vs the same inserts into a bare table."""
    from ..bench.ingest import run_ingest_bench

    wanted = {t.strip().lower() for t in only.split(",") if t.strip()}
    if not wanted <= {"many-users", "hot-user", "batch", "csv"}:
        raise click.BadParameter("choose among many-users, hot-user, batch, csv", param_hint="--tests")
    run_ingest_bench(
        seconds=seconds,
        clients=clients,
        batch_events=batch_events,
        users=users,
        dsn=dsn,
        output=output,
        console=console,
        rounds=rounds,
        only=wanted,
        durable=not fast,
    )


def _sizes(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    from ..bench.reads import parse_size

    try:
        sizes = sorted({parse_size(v) for v in value.split(",") if v.strip()})
    except ValueError as exc:
        raise click.BadParameter(f"sizes like 1M,3M,10M or 300k ({exc})") from exc
    if not sizes or sizes[0] < 1000:
        raise click.BadParameter("each size must be at least 1000 events")
    return sizes


def _read_options(f: F) -> F:
    opts = [
        click.option(
            "--sizes",
            default="1M,3M,10M",
            show_default=True,
            callback=_sizes,
            help="Data sizes in events, loaded cumulatively into one server and measured at each.",
        ),
        click.option(
            "--users-per-10m",
            default=100_000,
            show_default=True,
            help="Users scale with events: this many at 10M (at least 1,000).",
        ),
        click.option(
            "--calls", default=400, show_default=True, help="Timed calls per user read (heaviest user: calls/4)."
        ),
        click.option("--raw-calls", default=50, show_default=True, help="Timed calls per read from the raw log."),
        click.option("--dashboard-calls", default=40, show_default=True, help="Timed calls of the whole dashboard."),
        click.option(
            "--refreshes", default=3, show_default=True, help="refresh_analytics() runs per size (first + steady)."
        ),
        click.option(
            "--chunk-size", default=50_000, show_default=True, help="Events per record_many chunk when loading."
        ),
        click.option("--seed", default=7, show_default=True, help="Workload seed (the load is deterministic)."),
        click.option(
            "--load-durable",
            "durable",
            is_flag=True,
            help="Keep fsync/synchronous_commit on in the throwaway server (default: off, for a faster load).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@bench.command("reads")
@_read_options
@click.option(
    "--dsn", envvar="PGTALLY_BENCH_DSN", help="An empty pgtally database to load instead of a throwaway server."
)
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
def bench_reads(
    sizes: list[int],
    users_per_10m: int,
    calls: int,
    raw_calls: int,
    dashboard_calls: int,
    refreshes: int,
    chunk_size: int,
    seed: int,
    durable: bool,
    dsn: str | None,
    output: str | None,
) -> None:
    """User reads and the admin dashboard at growing sizes (default 1M, 3M, 10M events; ~16 min)."""
    from ..bench.reads import run_reads_bench

    run_reads_bench(
        sizes=sizes,
        users_per_10m=users_per_10m,
        seed=seed,
        calls=calls,
        raw_calls=raw_calls,
        dashboard_calls=dashboard_calls,
        refreshes=refreshes,
        chunk_size=chunk_size,
        durable=durable,
        dsn=dsn,
        output=output,
        console=console,
    )


@bench.command("http")
@click.option("--events", default=50_000, show_default=True, help="Events to load (10000000 for the full figure).")
@click.option(
    "--users", type=int, default=None, help="Distinct users (default: 100,000 per 10M events, at least 1,000)."
)
@click.option("--clients", default=8, show_default=True, type=click.IntRange(1, 64), help="Concurrent clients.")
@click.option("--calls", default=300, show_default=True, type=click.IntRange(1), help="Timed calls per user endpoint.")
@click.option(
    "--admin-calls", default=20, show_default=True, type=click.IntRange(1), help="Timed admin analytics calls."
)
@click.option("--ingest-batches", default=24, show_default=True, type=click.IntRange(1), help="Ingest batches sent.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000), help="Events per batch.")
@click.option("--seed", default=7, show_default=True, help="Workload seed (the load is deterministic).")
@click.option("--dsn", envvar="PGTALLY_BENCH_DSN", help="An empty pgtally database to load instead of a throwaway one.")
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
def bench_http(
    events: int,
    users: int | None,
    clients: int,
    calls: int,
    admin_calls: int,
    ingest_batches: int,
    batch_size: int,
    seed: int,
    dsn: str | None,
    output: str | None,
) -> None:
    """The HTTP API under concurrent clients: user endpoints p50/p99, the admin analytics, ingest events/s."""
    from ..bench.http import run_http_bench

    if events < 1000:
        raise click.BadParameter("at least 1000 events", param_hint="--events")
    run_http_bench(
        events=events,
        users=users,
        clients=clients,
        calls=calls,
        admin_calls=admin_calls,
        ingest_batches=ingest_batches,
        batch_size=batch_size,
        seed=seed,
        dsn=dsn,
        output=output,
        console=console,
    )


@bench.command("memory")
@click.option(
    "--events", default=10_000_000, show_default=True, help="Events recorded (all of one user), then exported as CSV."
)
@click.option("--chunk-size", default=10_000, show_default=True, help="Events per record_many chunk.")
@click.option(
    "--dsn", envvar="PGTALLY_BENCH_DSN", help="A pgtally database without the benchmark's user, not a throwaway one."
)
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
def bench_memory(events: int, chunk_size: int, dsn: str | None, output: str | None) -> None:
    """Client memory of record_many and of the CSV export of N events (default 10M): peak RSS and its growth."""
    from ..bench.memory import MemoryBenchError, run_memory_bench

    for name, value in (("--events", events), ("--chunk-size", chunk_size)):
        if value < 1:
            raise InputError(f"{name} must be at least 1 (got {value})")
    try:
        run_memory_bench(events=events, chunk_size=chunk_size, dsn=dsn, output=output, console=console)
    except MemoryBenchError as exc:
        raise click.ClickException(str(exc)) from exc


#: The parts of `pgtally bench all`, in the order they run.
PARTS = ("ingest", "reads", "memory", "http", "citus")


@bench.command("all")
@_read_options
@click.option("--seconds", default=10.0, show_default=True, help="Ingest: duration of each timed single-row run.")
@click.option("--rounds", default=2, show_default=True, help="Ingest: alternating rounds per figure.")
@click.option("--memory-events", default=10_000_000, show_default=True, help="Memory: events recorded and exported.")
@click.option("--skip", multiple=True, type=click.Choice(PARTS), help="Leave this part out (repeatable).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Also write all results as one JSON document here (after each part).",
)
@click.pass_context
def bench_all(
    ctx: click.Context,
    /,
    seconds: float,
    rounds: int,
    memory_events: int,
    skip: tuple[str, ...],
    output: str | None,
    **reads: Any,
) -> None:
    """Every benchmark, each on its own throwaway server: ingest (durable), reads at scale, memory, http, citus."""
    if memory_events < 1:
        raise InputError(f"--memory-events must be at least 1 (got {memory_events})")
    runs: dict[str, tuple[click.Command, dict[str, Any]]] = {
        "ingest": (bench_ingest, {"seconds": seconds, "rounds": rounds, "dsn": None}),
        "reads": (bench_reads, {**reads, "dsn": None}),
        "memory": (bench_memory, {"events": memory_events, "dsn": None}),
        "http": (bench_http, {"dsn": None}),
        "citus": (bench_citus, {}),
    }
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pgtally-bench-") as tmp:
        for name in PARTS:
            results[name] = _run_part(ctx, name, *runs[name], skip, Path(tmp))
            if output:  # after each part: a failure later keeps the figures measured so far
                Path(output).write_text(json.dumps(results, indent=2, default=str))


def _run_part(
    ctx: click.Context, name: str, command: click.Command, options: dict[str, Any], skip: tuple[str, ...], tmp: Path
) -> dict[str, Any]:
    """Run one part of `bench all` with its own defaults; its JSON document, or why it was skipped."""
    reason = "left out with --skip" if name in skip else _citus_missing() if name == "citus" else None
    if reason:
        console.print(f"{name}: skipped ({reason})", markup=False, highlight=False)
        return {"skipped": reason}
    console.rule(f"{name}: {command.get_short_help_str(limit=70)}")
    out = tmp / f"{name}.json"
    ctx.invoke(command, **options, output=str(out))
    return dict(json.loads(out.read_text()))


def _citus_missing() -> str | None:
    from ..server.citus import citus_missing

    return citus_missing()


@bench.command("citus")
@click.option("--seconds", default=10.0, show_default=True, help="Duration of each timed single-row run.")
@click.option("--clients", default=8, show_default=True, help="Concurrent pgbench writer connections.")
@click.option("--batch-events", default=50_000, show_default=True, help="Events in the batch (record_many) run.")
@click.option("--users", default=5_000, show_default=True, help="Distinct users of the single-row runs.")
@click.option("--reads", default=300, show_default=True, help="Calls of each read per round.")
@click.option("--rounds", default=2, show_default=True, help="Alternating rounds per figure (the median is reported).")
@click.option("--workers", default=2, show_default=True, help="Citus worker nodes of the loopback cluster.")
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
def bench_citus(
    seconds: float,
    clients: int,
    batch_events: int,
    users: int,
    reads: int,
    rounds: int,
    workers: int,
    output: str | None,
) -> None:
    """Ingest and reads on a loopback Citus cluster vs one server, as ratios (Citus's overhead on one machine)."""
    from ..bench.citus import run_citus_bench
    from ..server import ServerError

    for name, value in (("--clients", clients), ("--batch-events", batch_events), ("--users", users)):
        if value < 1:
            raise click.BadParameter("must be at least 1", param_hint=name)
    if reads < 1 or rounds < 1 or workers < 1 or seconds <= 0:
        raise click.BadParameter("--reads, --rounds and --workers must be at least 1, --seconds positive")
    try:
        run_citus_bench(
            seconds=seconds,
            clients=clients,
            batch_events=batch_events,
            users=users,
            reads=reads,
            rounds=rounds,
            workers=workers,
            output=output,
            console=console,
        )
    except ServerError as exc:
        err_console.print(f"pgtally bench citus: {exc}", markup=False, highlight=False)
        raise SystemExit(1) from exc


COMMANDS = (bench,)
