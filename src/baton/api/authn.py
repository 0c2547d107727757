"""Authentication at the door: no valid bearer token, no body read.

A route's own dependencies run only once Starlette has the whole body, so checking the
token there let anonymous clients make Baton receive and buffer megabytes. This ASGI
middleware answers 401 from the headers alone, before `BodyLimit` reads a byte, and
leaves the principal in the request state for the routes' permission checks.

Public paths (health, readiness, the OpenAPI document and its viewers) need no token;
the console (baton.web) signs people in with its own session cookies and checks them;
/metrics decides for itself (`metrics_public`). Signed sources are no exception: a
signature proves where a body came from, the bearer token who may post at all, and the
signature is checked by the route after this.
"""

from __future__ import annotations

from typing import Any

from fastapi.concurrency import run_in_threadpool

from baton.api.deps import cached, credentials, look_up
from baton.api.docs import ASSETS
from baton.api.errors import ApiError, send_error

PUBLIC = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        # Slack cannot send a bearer token; the route refuses anything without a valid
        # Slack signature (and everything when no signing secret is configured)
        "/api/v1/desk/slack/events",
        "/api/v1/slack/actions",  # Slack sends no bearer token; its signature is checked
        "/api/v1/slack/commands",  # the slash commands, likewise
    }
)
SIGNED = frozenset({"/api/v1/desk/slack/events"})  # public, but 401 without a signature
PUBLIC_UNDER = (f"{ASSETS}/",)  # the docs pages' own scripts and styles


class Authenticate:
    def __init__(
        self,
        app: Any,
        public: frozenset[str] = PUBLIC,
        public_under: tuple[str, ...] = PUBLIC_UNDER,
    ) -> None:
        self.app = app
        self.public = public
        self.public_under = public_under

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.public or path.startswith(self.public_under):
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        try:
            secret = credentials(header.decode("latin-1"))
            known = app.state.principals
            principal = cached(known, secret)
            if principal is None:
                principal = await run_in_threadpool(look_up, known, app.state.platform, secret)
        except ApiError as exc:
            headers = {"WWW-Authenticate": "Bearer", "Connection": "close"}
            await send_error(send, exc.status, exc.code, exc.message, headers)
            return
        scope.setdefault("state", {})["authenticated"] = principal
        await self.app(scope, receive, send)
