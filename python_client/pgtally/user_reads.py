"""User-facing analytics reads (summary card, history, comparisons, patterns, limits, insights, export).

Mixed into :class:`pgtally.Client`; each method calls one SQL function.
"""

from __future__ import annotations


class UserReadsMixin:
    """Methods of the user-facing read API (see docs/python.md)."""
