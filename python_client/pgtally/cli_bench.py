"""`pgtally bench` subcommands beyond `bench ingest` (registered on the `bench` group of cli.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .cli import bench, console

F = TypeVar("F", bound=Callable[..., Any])


def _sizes(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    from .bench_reads import parse_size

    try:
        sizes = sorted({parse_size(v) for v in value.split(",") if v.strip()})
    except ValueError as exc:
        raise click.BadParameter(f"sizes like 1M,3M,10M or 300k ({exc})") from exc
    if not sizes or sizes[0] < 1000:
        raise click.BadParameter("each size must be at least 1000 events")
    return sizes


def _read_options(f: F) -> F:
    opts = [
        click.option("--sizes", default="1M,3M,10M", show_default=True, callback=_sizes,
                     help="Data sizes in events, loaded cumulatively into one server and measured at each."),
        click.option("--users-per-10m", default=100_000, show_default=True,
                     help="Users scale with events: this many at 10M (at least 1,000)."),
        click.option("--calls", default=400, show_default=True, help="Timed calls per user read (heaviest user: calls/4)."),
        click.option("--raw-calls", default=50, show_default=True, help="Timed calls per read from the raw log."),
        click.option("--dashboard-calls", default=40, show_default=True, help="Timed calls of the whole dashboard."),
        click.option("--refreshes", default=3, show_default=True, help="refresh_analytics() runs per size (first + steady)."),
        click.option("--chunk-size", default=50_000, show_default=True, help="Events per record_many chunk when loading."),
        click.option("--seed", default=7, show_default=True, help="Workload seed (the load is deterministic)."),
        click.option("--load-durable", "durable", is_flag=True,
                     help="Keep fsync/synchronous_commit on in the throwaway server (default: off, for a faster load)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@bench.command("reads")
@_read_options
@click.option("--dsn", envvar="PGTALLY_BENCH_DSN", help="An empty pgtally database to load instead of a throwaway server.")
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
def bench_reads(sizes: list[int], users_per_10m: int, calls: int, raw_calls: int, dashboard_calls: int, refreshes: int,
                chunk_size: int, seed: int, durable: bool, dsn: str | None, output: str | None) -> None:
    """T5-T7: user reads and the admin dashboard at growing sizes (default 1M, 3M, 10M events; ~16 min)."""
    from .bench_reads import run_reads_bench

    run_reads_bench(sizes=sizes, users_per_10m=users_per_10m, seed=seed, calls=calls, raw_calls=raw_calls,
                    dashboard_calls=dashboard_calls, refreshes=refreshes, chunk_size=chunk_size, durable=durable,
                    dsn=dsn, output=output, console=console)


@bench.command("all")
@_read_options
@click.option("--seconds", default=10.0, show_default=True, help="Ingest: duration of each timed single-row run.")
@click.option("--rounds", default=2, show_default=True, help="Ingest: alternating rounds per figure.")
@click.option("--output", type=click.Path(dir_okay=False), help="Also write all results as one JSON document here.")
def bench_all(sizes: list[int], users_per_10m: int, calls: int, raw_calls: int, dashboard_calls: int, refreshes: int,
              chunk_size: int, seed: int, durable: bool, seconds: float, rounds: int, output: str | None) -> None:
    """Every benchmark: ingest (T1-T3, durable) then reads at scale (T5-T7), each on its own throwaway server."""
    from .bench import run_ingest_bench
    from .bench_reads import run_reads_bench

    console.rule("ingest (T1-T3)")
    figures = run_ingest_bench(seconds=seconds, clients=8, batch_events=200_000, users=10_000, dsn=None, output=None,
                               console=console, rounds=rounds, durable=True)
    console.rule("reads at scale (T5-T7)")
    reads = run_reads_bench(sizes=sizes, users_per_10m=users_per_10m, seed=seed, calls=calls, raw_calls=raw_calls,
                            dashboard_calls=dashboard_calls, refreshes=refreshes, chunk_size=chunk_size,
                            durable=durable, dsn=None, output=None, console=console)
    if output:
        ingest = [{**dataclasses.asdict(f), "ratio": f.ratio, "keyed_ratio": f.keyed_ratio} for f in figures]
        Path(output).write_text(json.dumps({"ingest": {"figures": ingest}, "reads": reads}, indent=2, default=str))
