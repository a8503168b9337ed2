"""Citus benchmark: the same ingest and reads on a Citus cluster and on one server, in the same run.

Both targets are throwaway servers started here: one PostgreSQL, and a Citus
coordinator with ``workers`` workers (:mod:`pgtally.server.citus`), pgtally
installed in both and distributed on the cluster. Every figure is measured on
both, alternating, and printed as a ratio Citus / one server:

* single-row ingest: pgbench INSERTs into ``tally.usage_events`` from N clients;
* batch ingest: ``Client.record_many`` (COPY into the staging table + ``record_usage_staged``);
* reads: the latency of ``period_totals`` and ``lifetime_totals`` for random users.

When every node shares one machine (the loopback cluster) this measures what
Citus costs (planning on the coordinator, a network hop per shard, two-phase
commit across shards), not how it scales: the workers compete with the
coordinator for the same cores. docs/scale-out.md has the throughput model.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from .. import distribute, schema, server
from ..client import Client
from ..server.citus import citus_cluster, citus_missing
from .ingest import _batch_events, _drain, _pgbench, _record_many

#: What the output says about a loopback cluster, every time.
CAVEAT = (
    "all nodes share this machine's {cpus} cores: this measures Citus's overhead per statement, not its scaling "
    "(see docs/scale-out.md for the throughput model against the number of workers)"
)


@dataclass
class CitusFigure:
    """One line: the same work on one server and on the Citus cluster (medians over the rounds)."""

    name: str
    unit: str
    single: float
    citus: float
    higher_is_better: bool = True
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Citus / one server (for latencies, > 1 means Citus is slower)."""
        return self.citus / self.single if self.single else 0.0


def _install(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        schema.install(conn)


@contextlib.contextmanager
def targets(workers: int) -> Iterator[dict[str, str]]:
    """A single server and a Citus cluster with pgtally installed (distributed on the cluster): their DSNs."""
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(server.database(backend="local", settings=dict(server.FAST_UNSAFE)))
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("drop database if exists pgtally_bench with (force)")
            conn.execute("create database pgtally_bench")
        single = psycopg.conninfo.make_conninfo(base, dbname="pgtally_bench")
        _install(single)
        cluster = stack.enter_context(citus_cluster(workers=workers))
        _install(cluster.dsn())
        distribute.distribute(cluster.dsn())
        yield {"one server": single, "citus": cluster.dsn()}


def _latency_ms(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _reads(dsn: str, users: list[str], n: int, seed: int) -> dict[str, float]:
    rnd = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        client = Client(conn)
        period = _latency_ms(lambda: client.period_totals(rnd.choice(users)), n)
        lifetime = _latency_ms(lambda: client.lifetime_totals(rnd.choice(users)), n)
    return {"period_totals": statistics.median(period), "lifetime_totals": statistics.median(lifetime)}


def _exact(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            """select (select count(*) from tally.usage_events),
                      (select coalesce(sum(events + failures), 0) from tally.user_totals where dimension = 'kind')
                      + (select coalesce(sum(events + failures), 0) from tally.pending_deltas)"""
        ).fetchone()
    return row is not None and int(row[0]) == int(row[1])


def run_citus_bench(
    *,
    seconds: float,
    clients: int,
    batch_events: int,
    users: int,
    reads: int,
    rounds: int,
    workers: int,
    output: str | None,
    console: Console,
) -> list[CitusFigure]:
    """Measure ingest and reads on one server and on a Citus cluster; print the ratios."""
    if problem := citus_missing():
        raise server.ServerError(problem)
    samples: dict[str, dict[str, list[float]]] = {}

    def add(figure: str, target: str, value: float) -> None:
        samples.setdefault(figure, {}).setdefault(target, []).append(value)

    exact: dict[str, bool] = {}
    with targets(workers) as dsns:
        for r in range(rounds):
            for target, dsn in dsns.items():
                console.print(f"[dim]round {r + 1}/{rounds} on {target}...[/dim]")
                add("single-row ingest", target, _pgbench(dsn, "tally.usage_events", users, clients, seconds))
                _drain(dsn)
                events = _batch_events(batch_events, f"c{r}")
                add("batch ingest (record_many)", target, _record_many(dsn, events))
                _drain(dsn)
                names = sorted({e.user_id for e in events})
                for read, ms in _reads(dsn, names, reads, seed=r).items():
                    add(f"read {read}", target, ms)
        for target, dsn in dsns.items():
            exact[target] = _exact(dsn)

    figures = [
        CitusFigure(
            name,
            "ms (p50)" if name.startswith("read") else "rows/s",
            statistics.median(by_target["one server"]),
            statistics.median(by_target["citus"]),
            higher_is_better=not name.startswith("read"),
            samples=by_target,
        )
        for name, by_target in samples.items()
    ]
    caveat = CAVEAT.format(cpus=os.cpu_count())
    table = Table(title=f"pgtally on Citus (coordinator + {workers} workers on loopback) vs one server", min_width=90)
    for col in ("figure", "unit", "one server", "citus", "citus / one server"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    for f in figures:
        table.add_row(f.name, f.unit, f"{f.single:,.1f}", f"{f.citus:,.1f}", f"{f.ratio:.2f}x")
    console.print(table)
    console.print(
        f"[dim]{clients} pgbench clients for {seconds:g} s, {users:,} users; batch of {batch_events:,} events; "
        f"{reads} reads of each kind; {rounds} round(s), medians[/dim]"
    )
    console.print(f"note: {caveat}")
    console.print("exact after the run: " + ", ".join(f"{t} {'yes' if ok else 'NO'}" for t, ok in exact.items()))
    if output:
        Path(output).write_text(
            json.dumps(
                {
                    "machine": {"cpus": os.cpu_count(), "workers": workers, "note": caveat},
                    "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    "figures": [{**asdict(f), "ratio": f.ratio} for f in figures],
                    "exact": exact,
                },
                indent=2,
            )
        )
    if not all(exact.values()):
        raise RuntimeError(f"aggregates do not match the log after the run: {exact}")
    return figures
