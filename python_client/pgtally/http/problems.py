"""Errors as RFC 9457 problem details (``application/problem+json``): type, title, status, detail.

A database rejection keeps its SQLSTATE and the field it names (``sqlstate``, ``field``); every problem carries
the request id. ``problem_from_exception`` maps what a route can raise to its problem.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
import psycopg_pool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..errors import PgTallyError, SchemaNotInstalled, ValidationError, from_psycopg
from .auth import AuthError

log = logging.getLogger("pgtally.http")

PROBLEM_JSON = "application/problem+json"
#: Prefix of every problem type pgtally defines (docs/http.md lists them).
TYPE_PREFIX = "urn:pgtally:problem:"

#: HTTP status of each pgtally SQLSTATE (class PT); validation of events is 422, bad arguments 400.
STATUS_BY_SQLSTATE = {
    "PT009": 409,  # the log is immutable
    "PT010": 400,  # unknown dimension
    "PT011": 400,  # invalid argument
    "PT012": 409,  # quota exceeded
}


class ProblemDetails(BaseModel):
    """An error (RFC 9457). ``sqlstate`` and ``field`` are set when the database refused the request."""

    type: str = Field(description="A URI naming the kind of problem (urn:pgtally:problem:...).")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request.")
    instance: str | None = Field(default=None, description="The request path.")
    request_id: str | None = Field(default=None, description="The X-Request-ID of the request.")
    sqlstate: str | None = Field(default=None, description="The database's SQLSTATE (PTnnn for pgtally's own).")
    field: str | None = Field(default=None, description="The argument or event field the database named.")
    errors: list[dict[str, Any]] | None = Field(default=None, description="Each invalid part of the request.")


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        sqlstate: str | None = None,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.sqlstate = sqlstate
        self.field = field
        self.errors = errors
        self.headers = headers or {}

    def document(self, instance: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        doc = ProblemDetails(
            type=TYPE_PREFIX + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            request_id=request_id,
            sqlstate=self.sqlstate,
            field=self.field,
            errors=self.errors,
        )
        return doc.model_dump(exclude_none=True)

    def response(self, instance: str | None = None, request_id: str | None = None) -> Response:
        headers = dict(self.headers)
        if request_id:
            headers["X-Request-ID"] = request_id
        return Response(
            json.dumps(self.document(instance, request_id), default=str),
            status_code=self.status,
            media_type=PROBLEM_JSON,
            headers=headers,
        )


def bad_argument(field: str, detail: str) -> Problem:
    """A query parameter the API itself refuses (400), named like the database names its arguments."""
    return Problem(400, "invalid-argument", "Invalid argument", detail, field=field)


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        item = {k: e[k] for k in ("loc", "msg", "type") if k in e}
        item["loc"] = [str(p) for p in item.get("loc", ())]
        out.append(item)
    return out


def problem_from_exception(exc: BaseException) -> Problem:
    """The problem a route's exception becomes (500 for anything unexpected; it is logged)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, psycopg.Error):  # raised by a query of this package, not through the client
        exc = from_psycopg(exc) or exc
    if isinstance(exc, AuthError):
        if exc.status == 401:
            return Problem(401, "unauthorized", "Unauthorized", exc.detail, headers={"WWW-Authenticate": "Bearer"})
        return Problem(exc.status, "forbidden", "Forbidden", exc.detail)
    if isinstance(exc, RequestValidationError):
        errors = _jsonable_errors(exc.errors())
        summary = "; ".join(f"{'.'.join(e['loc'])}: {e.get('msg', '')}" for e in errors[:5])
        return Problem(422, "invalid-request", "Invalid request", summary or "invalid request", errors=errors)
    if isinstance(exc, SchemaNotInstalled):
        return Problem(503, "schema-not-installed", "Database not ready", exc.message, sqlstate=exc.sqlstate)
    if isinstance(exc, PgTallyError):
        status = 422 if isinstance(exc, ValidationError) else STATUS_BY_SQLSTATE.get(exc.sqlstate or "", 400)
        slug = "rejected-event" if status == 422 else ("conflict" if status == 409 else "invalid-argument")
        title = {422: "Event rejected", 409: "Conflict"}.get(status, "Invalid argument")
        return Problem(status, slug, title, exc.message, sqlstate=exc.sqlstate, field=exc.field)
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return Problem(
            403, "forbidden", "Forbidden", exc.diag.message_primary or "permission denied", sqlstate=exc.sqlstate
        )
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return Problem(
            503, "timeout", "Timeout", "the query took longer than the statement timeout", sqlstate=exc.sqlstate
        )
    if isinstance(exc, psycopg.DataError | psycopg.errors.InvalidParameterValue):
        return Problem(
            400, "invalid-argument", "Invalid argument", exc.diag.message_primary or str(exc), sqlstate=exc.sqlstate
        )
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg.OperationalError):
        log.warning("database unavailable: %s", exc)
        return Problem(503, "database-unavailable", "Database unavailable", "the database cannot be reached now")
    if isinstance(exc, StarletteHTTPException):
        return Problem(
            exc.status_code,
            "http-" + str(exc.status_code),
            _TITLES.get(exc.status_code, "Error"),
            str(exc.detail),
            headers=dict(exc.headers or {}),
        )
    log.exception("unexpected error", exc_info=exc)
    return Problem(500, "internal-error", "Internal server error", "an unexpected error occurred; see the server log")


_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 406: "Not acceptable", 413: "Too large"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem documents for ``statuses`` (inline schema, no component)."""
    schema = ProblemDetails.model_json_schema()
    descriptions = {
        400: "Invalid argument (the database's PT010/PT011 with the field it names)",
        401: "No token, or an invalid or expired one",
        403: "The token's role may not use this route",
        404: "Not found",
        409: "Conflict",
        413: "Request too large",
        422: "The request does not match the schema",
        500: "Unexpected error",
        503: "The database is unavailable, not installed, or too slow",
    }
    return {
        s: {"description": descriptions.get(s, "Error"), "content": {PROBLEM_JSON: {"schema": schema}}}
        for s in statuses
    }
