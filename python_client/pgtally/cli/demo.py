"""`pgtally demo`: the command around :func:`pgtally.demo.run.run_demo` (needs ``pgtally[demo]``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ._common import console


@click.command()
@click.option("--users", default=2000, show_default=True, help="Number of users.")
@click.option("--events", default=200_000, show_default=True, help="Number of events to load (a year of usage).")
@click.option("--seed", default=7, show_default=True, help="Random seed (the load is deterministic).")
@click.option(
    "--dsn",
    envvar="PGTALLY_DEMO_DSN",
    help="Load into this database instead of the demo's own PostgreSQL (loads on every run).",
)
@click.option("--fresh", is_flag=True, help="Wipe the demo's own PostgreSQL and load again.")
@click.option(
    "--report",
    "report",
    default="pgtally-report.html",
    show_default=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the HTML report.",
)
@click.option(
    "--cluster-dir",
    default=".pgtally/demo-cluster",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo's own PostgreSQL keeps its files.",
)
@click.option(
    "--end",
    "end",
    type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
    default=None,
    help="End of the loaded year, UTC (default: the current hour); the same --end loads the same data.",
)
@click.option(
    "--yes-write-fake-data",
    is_flag=True,
    help="Load into a --dsn database even though it holds data the demo did not write: adds fake events "
    "to its immutable log and creates or overwrites the plans free, pro and team.",
)
def demo(
    users: int,
    events: int,
    seed: int,
    dsn: str | None,
    fresh: bool,
    report: Path,
    cluster_dir: Path,
    end: dt.datetime | None,
    yes_write_fake_data: bool,
) -> None:
    """Load a year of realistic usage, print a user's card and the admin dashboard, write an HTML report.

    Without --dsn it runs its own PostgreSQL kept under --cluster-dir; a second
    run with the same options reuses the loaded data and takes seconds. A --dsn
    database that holds data the demo did not write is refused unless
    --yes-write-fake-data is given.
    """
    from ..demo.run import run_demo

    run_demo(
        users=users,
        events=events,
        seed=seed,
        dsn=dsn,
        console=console,
        fresh=fresh,
        report=report,
        cluster_dir=cluster_dir,
        end=end.replace(tzinfo=dt.timezone.utc) if end else None,
        yes_write_fake_data=yes_write_fake_data,
    )


COMMANDS = (demo,)
