"""Configuration of the HTTP API: the database, the JWT keys, the pool, the background merge.

:class:`Settings` is a plain dataclass: build it in code (``create_app(Settings(dsn=..., jwt_secret=...))``)
or from the environment (:meth:`Settings.from_env`, what ``pgtally serve`` and the uvicorn factory use).

The development secret: ``pgtally token`` and ``pgtally serve`` share an HS256 secret kept in
``.pgtally/dev-jwt-secret`` (under the current directory, beside the demo's cluster; ``PGTALLY_JWT_SECRET_FILE``
moves it) when neither ``PGTALLY_JWT_SECRET`` nor a public key is configured. It is for local use only.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where ``pgtally token`` and ``pgtally serve`` keep the development secret (relative to the current directory).
DEV_SECRET_FILE = Path(".pgtally") / "dev-jwt-secret"


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


@dataclass
class Settings:
    """Everything the HTTP API needs; every field has an environment variable (see :meth:`from_env`)."""

    #: libpq DSN of the login role the pool connects as: a member of tally_reader, tally_analyst and tally_writer
    #: (NOINHERIT recommended); every request switches to one of them with SET LOCAL ROLE.
    dsn: str | None = None
    #: HS256 shared secret (tokens signed with it are accepted).
    jwt_secret: str | None = None
    #: RS256 public key, PEM text (tokens signed with the matching private key are accepted).
    jwt_public_key: str | None = None
    #: Required ``iss`` claim, when set.
    jwt_issuer: str | None = None
    #: Required ``aud`` claim, when set (a token with an ``aud`` claim is refused when this is not set).
    jwt_audience: str | None = None
    #: Seconds of clock skew tolerated on ``exp``/``nbf``/``iat``.
    jwt_leeway_s: float = 0.0
    #: Claim holding the user id (readers) or the service name (writers, analysts).
    user_claim: str = "sub"
    #: Claim holding the role: reader, analyst or writer (else the ``scope`` claim, else reader).
    role_claim: str = "role"
    pool_min_size: int = 1
    pool_max_size: int = 10
    #: Seconds a request waits for a pooled connection before it gets 503.
    pool_timeout_s: float = 10.0
    #: statement_timeout of every request's transaction (exports excepted), in milliseconds; 0 = none.
    statement_timeout_ms: int = 30_000
    #: DSN of a role that may read tally.pending_deltas and run tally.merge_pending (a tally_owner member):
    #: enables the backlog gauges of /metrics and the background merge. None: neither.
    maintenance_dsn: str | None = None
    #: Run tally.merge_pending every this many seconds (needs maintenance_dsn); None: never.
    merge_interval_s: float | None = None
    #: Serve GET /metrics.
    metrics: bool = True
    #: The most events one POST /api/usage/events may carry.
    max_batch: int = 10_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from environment variables, then ``overrides`` (keyword arguments that are not None).

        ``PGTALLY_DSN`` (else ``DATABASE_URL``), ``PGTALLY_JWT_SECRET``, ``PGTALLY_JWT_PUBLIC_KEY`` (PEM text) or
        ``PGTALLY_JWT_PUBLIC_KEY_FILE``, ``PGTALLY_JWT_ISSUER``, ``PGTALLY_JWT_AUDIENCE``, ``PGTALLY_JWT_LEEWAY``,
        ``PGTALLY_JWT_USER_CLAIM``, ``PGTALLY_JWT_ROLE_CLAIM``, ``PGTALLY_POOL_MIN``, ``PGTALLY_POOL_MAX``,
        ``PGTALLY_STATEMENT_TIMEOUT_MS``, ``PGTALLY_MAINTENANCE_DSN``, ``PGTALLY_MERGE_INTERVAL`` (seconds),
        ``PGTALLY_METRICS`` (0 turns /metrics off), ``PGTALLY_MAX_BATCH``.
        """
        env = os.environ if environ is None else environ
        public_key = env.get("PGTALLY_JWT_PUBLIC_KEY") or None
        if public_key is None and env.get("PGTALLY_JWT_PUBLIC_KEY_FILE"):
            public_key = Path(env["PGTALLY_JWT_PUBLIC_KEY_FILE"]).read_text()
        values: dict[str, Any] = {
            "dsn": env.get("PGTALLY_DSN") or env.get("DATABASE_URL") or None,
            "jwt_secret": env.get("PGTALLY_JWT_SECRET") or None,
            "jwt_public_key": public_key,
            "jwt_issuer": env.get("PGTALLY_JWT_ISSUER") or None,
            "jwt_audience": env.get("PGTALLY_JWT_AUDIENCE") or None,
            "jwt_leeway_s": _float(env.get("PGTALLY_JWT_LEEWAY")) or 0.0,
            "user_claim": env.get("PGTALLY_JWT_USER_CLAIM") or "sub",
            "role_claim": env.get("PGTALLY_JWT_ROLE_CLAIM") or "role",
            "maintenance_dsn": env.get("PGTALLY_MAINTENANCE_DSN") or None,
            "merge_interval_s": _float(env.get("PGTALLY_MERGE_INTERVAL")),
            "metrics": env.get("PGTALLY_METRICS", "1") not in ("0", "false", "no", "off"),
        }
        for name, var in (
            ("pool_min_size", "PGTALLY_POOL_MIN"),
            ("pool_max_size", "PGTALLY_POOL_MAX"),
            ("statement_timeout_ms", "PGTALLY_STATEMENT_TIMEOUT_MS"),
            ("max_batch", "PGTALLY_MAX_BATCH"),
        ):
            if env.get(var):
                values[name] = int(env[var])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def dev_secret_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where the development secret lives: ``$PGTALLY_JWT_SECRET_FILE`` or ``.pgtally/dev-jwt-secret``."""
    env = os.environ if environ is None else environ
    return Path(env.get("PGTALLY_JWT_SECRET_FILE") or DEV_SECRET_FILE)


def dev_secret(path: Path, *, create: bool = True) -> str | None:
    """The development HS256 secret stored at ``path``; created (random, mode 0600) when missing and ``create``."""
    if path.exists():
        return path.read_text().strip() or None
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret
