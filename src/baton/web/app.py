"""Mounting the console on the API's FastAPI app: its pages, assets and error pages."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from baton.web import automation, copilot, desk, incidents, learning, oversight
from baton.web.console import (
    HERE,
    PREFIX,
    SECURITY_HEADERS,
    CsrfMismatch,
    Forbidden,
    SignInNeeded,
    router,
    templates,
)


def install(app: FastAPI) -> None:
    """Mount the console's pages and assets on the API's app, under /console."""
    for module in (incidents, copilot, automation, oversight, desk, learning):
        app.include_router(module.router)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/incidents", status_code=303)

    @app.get(PREFIX, include_in_schema=False)
    def console_home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/incidents", status_code=303)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, _: SignInNeeded) -> Response:
        if request.method != "GET":
            return HTMLResponse("signed out: sign in again", 401, headers=SECURITY_HEADERS)
        there = request.url.path.removeprefix(PREFIX)
        if request.url.query:
            there += "?" + request.url.query
        where = f"{PREFIX}/sign-in?next={quote(there)}"
        return RedirectResponse(where, status_code=303, headers=SECURITY_HEADERS)

    @app.exception_handler(CsrfMismatch)
    async def _csrf(request: Request, _: CsrfMismatch) -> Response:
        return HTMLResponse(
            "form expired or forged (CSRF): reload the page", 403, headers=SECURITY_HEADERS
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return HTMLResponse(
            templates.get_template("error.html").render(
                v=None, paused=[], prefix=PREFIX, message=str(exc), back="/incidents"
            ),
            403,
            headers=SECURITY_HEADERS,
        )
