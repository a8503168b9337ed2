"""The `pgtally` command line: a thin layer over the client and the SQL API (needs ``pgtally[cli]``).

Each module defines the commands of one group and lists them in ``COMMANDS``;
this module adds them to :func:`main`, so no command module imports ``main``.
"""

from __future__ import annotations

import click

from . import admin, bench, demo, http, manage, notify, ops, scale, user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pgtally")
def main() -> None:
    """pgtally: PostgreSQL-native usage ledger and engagement analytics."""


for _module in (ops, scale, user, admin, manage, notify, bench, demo, http):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
