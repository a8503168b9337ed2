"""The JWT verifier on its own (no database): keys, algorithms, claims, roles; and the settings from the environment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pgtally.http import AuthError, JWTVerifier, Role, Settings, make_token
from pgtally.http.auth import role_from_claims
from pgtally.http.settings import dev_secret

SECRET = "a-secret-long-enough-for-hs256-0123456789"
FUTURE = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)  # the suite may run for an hour and more


def rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def refused(verifier: JWTVerifier, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    assert caught.value.status == 401
    return caught.value.detail


def test_hs256_tokens() -> None:
    v = JWTVerifier(secret=SECRET)
    identity = v.verify(make_token(SECRET, "user-42"))
    assert (identity.user_id, identity.role) == ("user-42", Role.reader)
    assert v.verify(make_token(SECRET, "svc", "writer")).role is Role.writer
    assert "expired" in refused(v, make_token(SECRET, "u", expires_in=dt.timedelta(seconds=-1)))
    assert "signature" in refused(v, make_token("another-secret-long-enough-0123456789", "u"))
    assert "exp" in refused(v, jwt.encode({"sub": "u"}, SECRET, algorithm="HS256"))
    refused(v, jwt.encode({"sub": "u", "exp": FUTURE}, None, algorithm="none"))
    refused(v, "not.a.token")
    assert "sub" in refused(v, jwt.encode({"exp": FUTURE}, SECRET, algorithm="HS256"))
    assert "sub" in refused(v, jwt.encode({"sub": "x" * 201, "exp": FUTURE}, SECRET, algorithm="HS256"))


def test_rs256_tokens_and_no_algorithm_confusion() -> None:
    private, public = rsa_pair()
    v = JWTVerifier(public_key=public)
    token = jwt.encode({"sub": "user-7", "role": "analyst", "exp": FUTURE}, private, algorithm="RS256")
    assert v.verify(token).role is Role.analyst
    # The public key is public: a token "signed" with it as an HMAC secret must not pass.
    assert "HS256" in refused(v, jwt.encode({"sub": "u", "exp": FUTURE}, SECRET, algorithm="HS256"))
    other_private, _ = rsa_pair()
    assert "signature" in refused(v, jwt.encode({"sub": "u", "exp": FUTURE}, other_private, algorithm="RS256"))
    both = JWTVerifier(secret=SECRET, public_key=public)
    assert both.verify(make_token(SECRET, "a")).user_id == "a" and both.verify(token).user_id == "user-7"


def test_issuer_and_audience() -> None:
    v = JWTVerifier(secret=SECRET, issuer="https://login.example", audience="pgtally")
    assert v.verify(make_token(SECRET, "u", issuer="https://login.example", audience="pgtally")).user_id == "u"
    refused(v, make_token(SECRET, "u", issuer="https://evil.example", audience="pgtally"))
    refused(v, make_token(SECRET, "u", issuer="https://login.example", audience="another-api"))
    refused(v, make_token(SECRET, "u"))
    # A token meant for another audience is refused even when this server names none.
    refused(JWTVerifier(secret=SECRET), make_token(SECRET, "u", audience="another-api"))


def test_role_claim_and_scopes() -> None:
    assert role_from_claims({}) is Role.reader
    assert role_from_claims({"role": "tally_analyst"}) is Role.analyst
    assert role_from_claims({"role": ["writer"]}) is Role.writer
    assert role_from_claims({"scope": "openid pgtally:analyst"}) is Role.analyst
    assert role_from_claims({"groups": "writer"}, role_claim="groups") is Role.writer
    for bad in (
        {"role": "owner"},
        {"role": ["reader", "writer"]},
        {"role": 3},
        {"scope": "pgtally:reader pgtally:writer"},
    ):
        with pytest.raises(AuthError):
            role_from_claims(bad)
    v = JWTVerifier(secret=SECRET, user_claim="uid", role_claim="pgtally_role")
    token = jwt.encode({"uid": "u-9", "pgtally_role": "analyst", "exp": FUTURE}, SECRET, algorithm="HS256")
    assert (v.verify(token).user_id, v.verify(token).role) == ("u-9", Role.analyst)


def test_a_verifier_needs_a_key() -> None:
    with pytest.raises(ValueError):
        JWTVerifier()


def test_settings_from_the_environment(tmp_path: Path) -> None:
    _, public = rsa_pair()
    key_file = tmp_path / "key.pem"
    key_file.write_text(public)
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql:///fallback",
            "PGTALLY_DSN": "postgresql:///app",
            "PGTALLY_JWT_SECRET": SECRET,
            "PGTALLY_JWT_PUBLIC_KEY_FILE": str(key_file),
            "PGTALLY_JWT_AUDIENCE": "pgtally",
            "PGTALLY_POOL_MAX": "3",
            "PGTALLY_MERGE_INTERVAL": "30",
            "PGTALLY_METRICS": "0",
        },
        pool_min_size=2,
        maintenance_dsn=None,
    )
    assert (s.dsn, s.jwt_secret, s.jwt_public_key, s.jwt_audience) == ("postgresql:///app", SECRET, public, "pgtally")
    assert (s.pool_min_size, s.pool_max_size, s.merge_interval_s, s.metrics) == (2, 3, 30.0, False)
    assert Settings.from_env({"DATABASE_URL": "postgresql:///fallback"}).dsn == "postgresql:///fallback"


def test_the_development_secret_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / ".pgtally" / "dev-jwt-secret"
    assert dev_secret(path, create=False) is None
    first = dev_secret(path)
    assert first and len(first) >= 32 and dev_secret(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
