"""Shared by the HTTP API tests: a real uvicorn server in a thread, the login role it connects as, tokens."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import uvicorn

from pgtally.http import Settings, create_app, make_token

SECRET = "test-secret-of-the-pgtally-http-api-0123456789"


class RunningServer:
    """uvicorn serving an app on a free port of 127.0.0.1, in a thread, until ``stop``."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def api_login_role(login_role: Callable[[str | None], str], server_dsn: str) -> str:
    """A NOINHERIT login role that may become tally_reader, tally_analyst and tally_writer (as docs/http.md says)."""
    name = login_role("tally_reader")
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f"grant tally_analyst, tally_writer to {name}")
        conn.execute(f"alter role {name} noinherit")
    return name


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The API on a real uvicorn server; yields its base URL."""
    running = RunningServer(create_app(settings))
    url = running.start()
    try:
        yield url
    finally:
        running.stop()


def token(user: str, role: str = "reader", *, expires_in: dt.timedelta = dt.timedelta(minutes=10)) -> str:
    return make_token(SECRET, user, role, expires_in=expires_in)


def auth(user: str, role: str = "reader") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, role)}"}


class Api:
    """An httpx client on the running server, with a token per call."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60)

    def get(self, path: str, user: str | None = None, role: str = "reader", **kw: Any) -> httpx.Response:
        headers = {**(auth(user, role) if user else {}), **kw.pop("headers", {})}
        return self.http.get(path, headers=headers, **kw)

    def post(self, path: str, user: str | None = None, role: str = "reader", **kw: Any) -> httpx.Response:
        headers = {**(auth(user, role) if user else {}), **kw.pop("headers", {})}
        return self.http.post(path, headers=headers, **kw)

    def close(self) -> None:
        self.http.close()
