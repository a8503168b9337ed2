"""CLI commands for admin analytics and refresh (registered on `pgtally`)."""

from __future__ import annotations
