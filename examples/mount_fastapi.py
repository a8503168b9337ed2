"""Mount pgtally's HTTP routes into an existing FastAPI app.

Your app keeps its own routes, its own auth for them and its own docs; pgtally adds ``/api/usage/...``,
``/api/admin/usage/...``, ``POST /api/usage/events`` and ``/metrics`` (they appear in your ``/docs``). Here
the pgtally routes trust your login: a verifier turns the user your app already authenticated (a header an
upstream gateway sets, in this sketch) into a pgtally identity, instead of pgtally's own JWT check.

Run it (PGTALLY_DSN: a login role that is a member of tally_reader, tally_analyst, tally_writer)::

    PGTALLY_DSN=postgresql:///app python examples/mount_fastapi.py
    curl -H 'X-User: user-42' localhost:8001/api/usage/summary

``python examples/mount_fastapi.py --check`` only builds the app and prints its paths (no database needed).
"""

from __future__ import annotations

import os
import sys

from fastapi import FastAPI
from starlette.requests import HTTPConnection

from pgtally.http import AuthError, Identity, Role, Settings, create_router


class GatewayUser:
    """A pgtally verifier for an app behind a gateway that authenticates users and sets ``X-User``.

    Only requests that came through the gateway may reach the app for this to be safe. With pgtally's own
    JWTs, leave ``verifier`` out and set ``PGTALLY_JWT_SECRET`` (or ``Settings(jwt_secret=...)``) instead.
    """

    def authenticate(self, request: HTTPConnection) -> Identity:
        user = request.headers.get("x-user")
        if not user:
            raise AuthError("no X-User header: log in through the gateway")
        role = Role.analyst if request.headers.get("x-user-is-admin") == "1" else Role.reader
        return Identity(user, role)


def build_app(dsn: str) -> FastAPI:
    app = FastAPI(title="My product")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # The router carries its lifespan (it opens and closes pgtally's connection pool with your app).
    app.include_router(create_router(Settings(dsn=dsn), verifier=GatewayUser()))
    return app


if __name__ == "__main__":
    dsn = os.environ.get("PGTALLY_DSN", "postgresql:///app")
    app = build_app(dsn)
    if "--check" in sys.argv:
        for path in app.openapi()["paths"]:
            print(path)
        sys.exit(0)
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8001)
