"""Admin analytics reads (platform totals, leaderboards, trends, funnels, cohorts, refresh).

Reached as ``client.admin``; each method calls one SQL function.
"""

from __future__ import annotations

from typing import Any


class AdminClient:
    """Admin and analyst reads over the materialized views."""

    def __init__(self, client: Any) -> None:
        self._client = client
