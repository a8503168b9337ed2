"""Monthly email reports: ``POST /api/usage/subscribe``, ``POST /api/usage/unsubscribe``, ``GET /api/usage/unsubscribe``.

Subscribing runs as the token's user (tally_reader, ``tally.subscribe_reports(email)`` reads the user from
``tally.current_user_id()``). Unsubscribing needs only the token of the link in the email, no login: the
GET link answers a short HTML page (mail clients open links with GET), the POST answers JSON and also takes
the one-click form of RFC 8058 (``List-Unsubscribe=One-Click``, token in the query string).
"""

import html
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Request
from psycopg.rows import dict_row
from pydantic import ValidationError
from starlette.responses import HTMLResponse

from .auth import Identity, Role
from .problems import Problem, problem_responses
from .schemas import SubscribeRequest, Subscription, UnsubscribeRequest, UnsubscribeResult

if TYPE_CHECKING:
    from .app import PgTallyAPI

TOKEN = Query(min_length=1, max_length=512, description="The token of the unsubscribe link.")


def build(api: "PgTallyAPI") -> APIRouter:
    router = APIRouter(tags=["reports"], route_class=api.route)
    Reader = Annotated[Identity, Depends(api.requires(Role.reader))]

    async def unsubscribe_token(token: str) -> bool:
        async with api.db.session(None, Role.reader) as conn:
            cur = await conn.execute("select tally.unsubscribe_reports(%s)", (token,))
            row = await cur.fetchone()
        return bool(row and row[0])

    @router.post(
        "/api/usage/subscribe",
        response_model=Subscription,
        responses=problem_responses(400, 401, 403, 422, 500, 503),
        summary="Subscribe to the monthly usage report",
    )
    async def subscribe(identity: Reader, body: SubscribeRequest) -> Subscription:
        """Send the user's monthly usage report to ``email`` (one subscription per user; subscribing again
        changes the address and keeps the unsubscribe token). The database checks the address (PT011, field
        ``email``)."""
        async with api.db.session(identity, Role.reader) as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                "select * from tally.subscribe_reports(%s)", (body.email,)
            )
            row = await cur.fetchone()
        assert row is not None
        return Subscription.model_validate(row)

    @router.post(
        "/api/usage/unsubscribe",
        response_model=UnsubscribeResult,
        responses=problem_responses(400, 422, 500, 503),
        summary="Unsubscribe (token of the email's link)",
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {"schema": UnsubscribeRequest.model_json_schema()},
                    "application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "properties": {"List-Unsubscribe": {"type": "string"}}}
                    },
                },
            }
        },
    )
    async def unsubscribe(request: Request, token: Annotated[str | None, TOKEN] = None) -> UnsubscribeResult:
        """End the subscription the token names. Body ``{"token": ...}`` (JSON), or the token in the query
        string with the RFC 8058 one-click form body. No login: the token is the credential."""
        if token is None:
            try:
                token = UnsubscribeRequest.model_validate_json(await request.body()).token
            except ValidationError as exc:
                raise Problem(
                    422, "invalid-request", "Invalid request", 'send {"token": ...} as JSON, or ?token= in the query'
                ) from exc
        return UnsubscribeResult(unsubscribed=await unsubscribe_token(token))

    @router.get(
        "/api/usage/unsubscribe",
        response_class=HTMLResponse,
        responses=problem_responses(400, 422, 500, 503),
        summary="Unsubscribe link",
    )
    async def unsubscribe_link(token: Annotated[str, TOKEN]) -> HTMLResponse:
        """The link in every report email: ends the subscription and says so in a short page."""
        done = await unsubscribe_token(token)
        message = (
            "You will not receive usage reports any more."
            if done
            else "This link is not valid any more: the subscription was already ended."
        )
        return HTMLResponse(
            "<!doctype html><html><head><meta charset='utf-8'><title>Usage reports</title></head>"
            f"<body><p>{html.escape(message)}</p></body></html>"
        )

    return router
