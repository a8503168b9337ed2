"""`pgtally bench` subcommands beyond `bench ingest` (registered on the `bench` group of cli.py)."""

from __future__ import annotations
