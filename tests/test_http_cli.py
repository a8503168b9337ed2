"""`pgtally token` and `pgtally serve`, and mounting the router into another FastAPI app (examples/mount_fastapi.py).

The serve test is what a new user does: start `pgtally serve` (a real process), open /docs, get a token
from `pgtally token USER` (the development secret both share) and call the API with it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from click.testing import CliRunner

from http_support import RunningServer, api_login_role
from pgtally.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def secret_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / ".pgtally" / "dev-jwt-secret"
    monkeypatch.setenv("PGTALLY_JWT_SECRET_FILE", str(path))
    monkeypatch.delenv("PGTALLY_JWT_SECRET", raising=False)
    return path


def test_token_signs_with_the_development_secret(secret_file: Path) -> None:
    res = CliRunner().invoke(main, ["token", "user-42"])
    assert res.exit_code == 0, res.output
    secret = secret_file.read_text().strip()
    claims = jwt.decode(res.output.strip(), secret, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("user-42", "reader")
    assert 11 * 3600 < claims["exp"] - claims["iat"] <= 12 * 3600
    res = CliRunner().invoke(main, ["token", "svc", "--role", "writer", "--expires", "30m", "--json"])
    data = json.loads(res.output)
    assert data["role"] == "writer" and data["secret_from"] == str(secret_file)
    claims = jwt.decode(data["token"], secret, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 1800
    assert dt.datetime.fromisoformat(data["expires_at"]).timestamp() == claims["exp"]


def test_token_with_an_explicit_secret(secret_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGTALLY_JWT_SECRET", "from-the-environment-0123456789abcdef")
    res = CliRunner().invoke(main, ["token", "u"])
    assert jwt.decode(res.output.strip(), "from-the-environment-0123456789abcdef", algorithms=["HS256"])["sub"] == "u"
    res = CliRunner().invoke(main, ["token", "u", "--secret", "given-on-the-command-line-0123456789"])
    assert jwt.decode(res.output.strip(), "given-on-the-command-line-0123456789", algorithms=["HS256"])["sub"] == "u"
    assert not secret_file.exists(), "no development secret is created when one is given"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "u", "--expires", "soon"], "not a duration"),
        (["token", "u", "--expires", "0h"], "not a duration"),
        (["token", "u", "--role", "owner"], "owner"),
        (["token", "x" * 201], "1 to 200 characters"),
        (["serve"], "no database given"),
        (["serve", "--dsn", "postgresql:///x", "--merge-every", "5"], "--merge-every needs --maintenance-dsn"),
        (["serve", "--demo", "--dsn", "postgresql:///x"], "leave out --dsn"),
    ],
)
def test_input_errors_exit_2(args: list[str], message: str, secret_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "PGTALLY_DSN", "PGTALLY_MAINTENANCE_DSN"):
        monkeypatch.delenv(var, raising=False)
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(dsn: str, login_role, server_dsn: str, secret_file: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`pgtally serve` in a process of its own, as the login role docs/http.md describes."""
    name = api_login_role(login_role, server_dsn)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGTALLY_JWT")}
    env["PGTALLY_JWT_SECRET_FILE"] = str(secret_file)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgtally",
            "serve",
            "--dsn",
            psycopg.conninfo.make_conninfo(dsn, user=name),
            "--port",
            str(port),
            "--maintenance-dsn",
            dsn,
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "pgtally serve did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_docs_and_a_token_from_pgtally_token(served: str, dsn: str, secret_file: Path) -> None:
    docs = httpx.get(f"{served}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"{served}/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/api/usage/summary", "/api/usage/events", "/api/admin/usage/analytics", "/metrics"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    writer = CliRunner().invoke(main, ["token", "tts-worker", "--role", "writer"]).output.strip()
    event = {"event_id": "cli-1", "user_id": "user-42", "kind": "tts", "quantity": 180, "attributes": {"voice": "af"}}
    r = httpx.post(f"{served}/api/usage/events", json=[event], headers={"Authorization": f"Bearer {writer}"})
    assert r.json()["recorded"] == 1, r.text
    reader = CliRunner().invoke(main, ["token", "user-42"]).output.strip()
    card = httpx.get(f"{served}/api/usage/summary", headers={"Authorization": f"Bearer {reader}"}).json()["card"]
    assert card["total"]["events"] == 1
    analyst = CliRunner().invoke(main, ["token", "admin", "--role", "analyst"]).output.strip()
    r = httpx.get(f"{served}/api/admin/usage/freshness", headers={"Authorization": f"Bearer {analyst}"})
    assert r.status_code == 200
    assert "pgtally_pending_deltas 1.0" in httpx.get(f"{served}/metrics").text


def test_the_router_mounts_into_another_app(dsn: str, login_role, server_dsn: str) -> None:  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("mount_fastapi", ROOT / "examples" / "mount_fastapi.py")
    assert spec and spec.loader
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    name = api_login_role(login_role, server_dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select tally.record_usage('m1', 'user-42', 'tts', 50)")
    app = example.build_app(psycopg.conninfo.make_conninfo(dsn, user=name))
    running = RunningServer(app)
    url = running.start()
    try:
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        r = httpx.get(f"{url}/api/usage/summary", headers={"X-User": "user-42"})
        assert r.status_code == 200 and r.json()["card"]["total"]["events"] == 1
        # The pgtally routes answer problem documents whatever the host app does.
        r = httpx.get(f"{url}/api/usage/summary")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        r = httpx.get(f"{url}/api/admin/usage/overview", headers={"X-User": "user-42"})
        assert r.status_code == 403
        assert "/api/usage/summary" in httpx.get(f"{url}/openapi.json").json()["paths"]
    finally:
        running.stop()
    check = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mount_fastapi.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0 and "/api/usage/summary" in check.stdout, check.stderr
