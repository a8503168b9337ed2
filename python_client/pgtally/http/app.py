"""The application: :func:`create_app` (a whole FastAPI app) and :func:`create_router` (to mount into yours).

Every route of the router runs through :class:`PgTallyRoute`, so a mounted router behaves the same as the
standalone app whatever the host app does: errors become problem documents, each request gets an id
(``X-Request-ID``, accepted or generated, echoed, in every log line), and its latency is recorded per route
(``Server-Timing`` header and the /metrics histogram).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .. import __version__
from .auth import AuthError, Identity, JWTVerifier, Role, Verifier
from .db import Database
from .maintenance import Maintenance
from .metrics import Metrics
from .problems import problem_from_exception
from .settings import Settings

log = logging.getLogger("pgtally.http")
access_log = logging.getLogger("pgtally.http.access")

#: The id of the request being served, for log lines (see :class:`RequestIdFilter`).
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("pgtally_request_id", default="-")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

#: The bearer scheme shown in the OpenAPI document (and the "Authorize" button of /docs).
bearer = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="A JWT: sub = user id, role = reader|analyst|writer"
)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record (``-`` outside a request): use ``%(request_id)s`` in formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


def request_id_of(request: Request) -> str:
    """The client's X-Request-ID when it is a sane token (letters, digits, ``._:-``, up to 128), else a new one."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID_OK.match(given) else uuid.uuid4().hex


class PgTallyAPI:
    """One instance of the API: settings, verifier, pool, metrics, and the router built on them."""

    def __init__(self, settings: Settings, verifier: Verifier | None = None) -> None:
        self.settings = settings
        self.verifier: Verifier = verifier or JWTVerifier.from_settings(settings)
        self.db = Database(settings)
        self.metrics = Metrics()
        self.maintenance = Maintenance(settings.maintenance_dsn, self.metrics) if settings.maintenance_dsn else None
        #: The route class every pgtally router uses (see :meth:`route_class`).
        self.route = self.route_class()

    # ---------------------------------------------------------------- lifespan

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """Open the pool (and start the background merge); close both at shutdown."""
        try:
            await self.db.open()
        except psycopg.OperationalError as exc:  # start anyway: requests get 503 until the database is back
            log.warning("cannot open the pool yet: %s", exc)
        if self.maintenance is not None and self.settings.merge_interval_s:
            self.maintenance.start(self.settings.merge_interval_s)
        try:
            yield
        finally:
            if self.maintenance is not None:
                await self.maintenance.close()
            await self.db.close()

    # ---------------------------------------------------------------- identity

    def requires(self, role: Role) -> Callable[..., Coroutine[Any, Any, Identity]]:
        """A dependency: the caller's identity, which must have ``role`` (401 without valid credentials, else 403)."""
        verifier = self.verifier

        async def dependency(
            request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
        ) -> Identity:
            found = verifier.authenticate(request)
            identity = await found if inspect.isawaitable(found) else found
            assert isinstance(identity, Identity)
            if identity.role is not role:
                raise AuthError(
                    f"this route needs a {role.value} token; the token's role is {identity.role.value}", status=403
                )
            request.state.identity = identity
            return identity

        return dependency

    # ------------------------------------------------------------------ router

    def route_class(self) -> type[APIRoute]:
        """The route class of every pgtally route: problem documents, request ids, latency."""
        metrics = self.metrics

        class PgTallyRoute(APIRoute):
            def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
                handler = super().get_route_handler()
                route = self.path_format

                async def serve(request: Request) -> Response:
                    request_id = request_id_of(request)
                    request.state.request_id = request_id
                    token = REQUEST_ID.set(request_id)
                    started = time.perf_counter()
                    try:
                        try:
                            response = await handler(request)
                        except Exception as exc:
                            response = problem_from_exception(exc).response(request.url.path, request_id)
                        elapsed = time.perf_counter() - started
                        response.headers["X-Request-ID"] = request_id
                        response.headers["Server-Timing"] = f"app;dur={elapsed * 1000:.3f}"
                        metrics.observe_request(request.method, route, response.status_code, elapsed)
                        identity = getattr(request.state, "identity", None)
                        access_log.info(
                            "%s %s %s %.1fms %s",
                            request.method,
                            request.url.path,
                            response.status_code,
                            elapsed * 1000,
                            f"{identity.role.value}:{identity.user_id}" if identity else "-",
                        )
                        return response
                    finally:
                        REQUEST_ID.reset(token)

                return serve

        return PgTallyRoute

    def router(self, *, with_lifespan: bool = True) -> APIRouter:
        """Every pgtally route (``/api/usage/...``, ``/api/admin/usage/...``, ``/metrics``) on one router.

        With ``with_lifespan`` the router carries the lifespan that opens and closes the pool: FastAPI runs it
        when the router is included in an app (``app.include_router(router)``).
        """
        from . import admin_routes, ingest_routes, reports_routes, user_routes
        from .metrics_route import metrics_routes

        router = APIRouter(route_class=self.route, lifespan=self.lifespan if with_lifespan else None)
        for build in (
            user_routes.build,
            reports_routes.build,
            admin_routes.build,
            ingest_routes.build,
            metrics_routes,
        ):
            router.include_router(build(self))
        return router


def create_router(settings: Settings | None = None, verifier: Verifier | None = None) -> APIRouter:
    """The pgtally routes for an existing FastAPI app: ``app.include_router(create_router(settings))``.

    Its lifespan (open and close the pool) runs with the host app's. Errors of these routes are problem
    documents whatever the host's exception handlers. See ``examples/mount_fastapi.py``.
    """
    return PgTallyAPI(settings or Settings.from_env(), verifier).router()


def create_app(settings: Settings | None = None, verifier: Verifier | None = None) -> FastAPI:
    """The whole API as a FastAPI app, with ``/docs`` and ``/openapi.json`` (``pgtally serve`` runs this).

    ``settings`` default to :meth:`Settings.from_env`. ``verifier`` replaces the JWT verifier (see
    :class:`pgtally.http.auth.Verifier`). The instance is ``app.state.pgtally``.
    """
    api = PgTallyAPI(settings or Settings.from_env(), verifier)
    app = FastAPI(
        title="pgtally",
        version=__version__,
        summary="Usage ledger and analytics over PostgreSQL: each request runs as the caller's database role.",
        description=(
            "Send `Authorization: Bearer <JWT>`: `sub` is the user id, `role` is reader (the user's own usage), "
            "analyst (the admin analytics) or writer (ingest). Errors are `application/problem+json` (RFC 9457) "
            "with the database's SQLSTATE and field. See docs/http.md."
        ),
    )
    app.state.pgtally = api
    app.include_router(api.router())

    async def problem(request: Request, exc: Exception) -> Response:
        """404, 405 and other errors outside the pgtally routes, as problem documents."""
        response = problem_from_exception(exc).response(request.url.path, request_id_of(request))
        return response

    app.add_exception_handler(StarletteHTTPException, problem)
    app.add_exception_handler(RequestValidationError, problem)
    return app


def create_app_from_env() -> FastAPI:
    """For ``uvicorn --factory pgtally.http:create_app_from_env`` (settings from the environment)."""
    return create_app(Settings.from_env())
