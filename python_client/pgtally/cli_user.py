"""CLI commands for the user-facing analytics (registered on `pgtally`)."""

from __future__ import annotations
