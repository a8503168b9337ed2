"""The HTTP API (needs ``pgtally[http]``): FastAPI routes over the SQL read API, each request in the caller's role.

``create_app(settings)`` is the whole app (``pgtally serve`` runs it with uvicorn); ``create_router(settings)``
gives the routes to mount into an existing FastAPI app. See docs/http.md.
"""

from .app import PgTallyAPI, RequestIdFilter, create_app, create_app_from_env, create_router
from .auth import AuthError, Identity, JWTVerifier, Role, Verifier, make_token
from .settings import Settings

__all__ = [
    "AuthError",
    "Identity",
    "JWTVerifier",
    "PgTallyAPI",
    "RequestIdFilter",
    "Role",
    "Settings",
    "Verifier",
    "create_app",
    "create_app_from_env",
    "create_router",
    "make_token",
]
