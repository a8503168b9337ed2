"""Threshold alerts delivered to webhooks: endpoints, Standard Webhooks signatures, retries with backoff.

The database records an alert in ``tally.quota_alerts`` when a merge folds in
usage that takes a user to 80% or 100% of a plan limit in a billing period
(once per user, period, kind and threshold). :func:`deliver_alerts`
(``pgtally deliver-alerts``) posts each alert to each enabled endpoint as JSON
signed per the Standard Webhooks specification, retrying failures with
exponential backoff, and logs every attempt. docs/alerts.md describes them.
"""

from __future__ import annotations

from .webhooks import (
    Attempt,
    DeliveryRun,
    Endpoint,
    add_endpoint,
    deliver_alerts,
    list_endpoints,
    remove_endpoint,
    set_enabled,
    sign,
)

__all__ = [
    "Attempt",
    "DeliveryRun",
    "Endpoint",
    "add_endpoint",
    "deliver_alerts",
    "list_endpoints",
    "remove_endpoint",
    "set_enabled",
    "sign",
]
