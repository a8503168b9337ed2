"""Who is calling: a pluggable :class:`Verifier` turns a request's credentials into an :class:`Identity`.

The identity decides the database role of the request's transaction (``SET LOCAL ROLE``) and, for readers, the
``tally.user_id`` setting that row-level security compares every row with. The built-in :class:`JWTVerifier`
checks a bearer token (HS256 with a shared secret, RS256 with a public key; ``exp`` required, ``iss``/``aud``
when configured): ``sub`` is the user id, ``role`` (or a ``pgtally:<role>`` scope) the role, reader when absent.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from starlette.requests import HTTPConnection

from .settings import Settings


class Role(str, enum.Enum):
    """What a caller may do; each maps to one database role."""

    reader = "reader"  # an end user: their own usage (tally_reader, row-level security)
    analyst = "analyst"  # an admin: platform analytics (tally_analyst)
    writer = "writer"  # a producer: records events for any user (tally_writer)

    @property
    def db_role(self) -> str:
        """The database role a request of this role runs as."""
        return f"tally_{self.value}"


@dataclass(frozen=True)
class Identity:
    """The caller: ``user_id`` (the user a reader reads; a service name for writers and analysts) and ``role``."""

    user_id: str
    role: Role
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


class AuthError(Exception):
    """Credentials missing or refused (401), or not allowed here (403)."""

    def __init__(self, detail: str, status: int = 401) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class Verifier(Protocol):
    """Turns a request's credentials into an :class:`Identity`, or raises :class:`AuthError`.

    Plug in your own (sessions, an API gateway's headers, mTLS) with ``create_app(settings, verifier=...)``;
    ``authenticate`` may be sync or async.
    """

    def authenticate(self, request: HTTPConnection) -> Identity | Awaitable[Identity]: ...


_SCOPE_ROLES = {f"pgtally:{r.value}": r for r in Role}
_ROLE_NAMES = {**{r.value: r for r in Role}, **{r.db_role: r for r in Role}}
#: The longest user id the log accepts (tally._event_problem's bound).
MAX_USER_ID = 200


def role_from_claims(claims: Mapping[str, Any], role_claim: str = "role") -> Role:
    """The role a token grants: its ``role_claim`` (reader, analyst, writer), else a ``pgtally:<role>`` scope, else reader."""
    value = claims.get(role_claim)
    if value is not None:
        names = value if isinstance(value, list) else [value]
        roles = {_ROLE_NAMES.get(n) if isinstance(n, str) else None for n in names}
        if None in roles or len(roles) != 1:
            raise AuthError(f"the token's {role_claim!r} claim must be one of reader, analyst, writer")
        return next(r for r in roles if r is not None)
    scope = claims.get("scope")
    if isinstance(scope, str):
        found = {_SCOPE_ROLES[s] for s in scope.split() if s in _SCOPE_ROLES}
        if len(found) > 1:
            raise AuthError("the token's scope names more than one pgtally role")
        if found:
            return found.pop()
    return Role.reader


class JWTVerifier:
    """Bearer JWTs: HS256 with ``secret`` and/or RS256 with ``public_key`` (PEM); ``exp`` is required."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        public_key: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: float = 0.0,
        user_claim: str = "sub",
        role_claim: str = "role",
    ) -> None:
        if not secret and not public_key:
            raise ValueError("a JWT verifier needs a secret (HS256) or a public key (RS256)")
        # The key is chosen by the algorithm: a public key is never used as an HMAC secret.
        self._keys: dict[str, Any] = {}
        if secret:
            self._keys["HS256"] = secret
        if public_key:
            self._keys["RS256"] = public_key
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.user_claim = user_claim
        self.role_claim = role_claim

    @classmethod
    def from_settings(cls, settings: Settings) -> JWTVerifier:
        return cls(
            secret=settings.jwt_secret,
            public_key=settings.jwt_public_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_s=settings.jwt_leeway_s,
            user_claim=settings.user_claim,
            role_claim=settings.role_claim,
        )

    def authenticate(self, request: HTTPConnection) -> Identity:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("no bearer token: send 'Authorization: Bearer <token>'")
        return self.verify(token.strip())

    def verify(self, token: str) -> Identity:
        """The identity a token carries; :class:`AuthError` when it is invalid, expired or unsigned by our key."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None or not isinstance(algorithm, str):
            raise AuthError(f"token algorithm {algorithm!r} is not accepted (accepted: {', '.join(self._keys)})")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": ["exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("the token's signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        user_id = claims.get(self.user_claim)
        if not isinstance(user_id, str) or not user_id or len(user_id) > MAX_USER_ID:
            raise AuthError(f"the token's {self.user_claim!r} claim must be a user id of 1 to {MAX_USER_ID} characters")
        return Identity(user_id, role_from_claims(claims, self.role_claim), claims)


def make_token(
    secret: str,
    user_id: str,
    role: Role | str = Role.reader,
    *,
    expires_in: dt.timedelta = dt.timedelta(hours=1),
    issuer: str | None = None,
    audience: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """An HS256 token for ``user_id`` with ``role`` (what ``pgtally token`` prints). Example::

    token = make_token(secret, "user-42", "reader", expires_in=timedelta(minutes=30))
    """
    issued = now or dt.datetime.now(dt.timezone.utc)
    claims: dict[str, Any] = {
        "sub": user_id,
        "role": Role(role).value,
        "iat": issued,
        "exp": issued + expires_in,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
