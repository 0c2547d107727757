"""One JSON error shape for every failure: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from baton.act.runbook import ParamError
from baton.kernel.errors import Invalid, Refused

log = logging.getLogger("baton.api")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The one shape of every error answer."""

    error: ErrorDetail


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


async def send_error(
    send: Any,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer in the one error shape straight from ASGI (for middleware, before routing)."""
    body = orjson.dumps(error_body(code, message))
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Watched:
    """An ASGI `send` that remembers the status of the response once it has started."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.status: int | None = None

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class Contain:
    """The last line: an unexpected error becomes one JSON log line and a JSON 500.

    An `exception_handler(Exception)` would not do: Starlette's ServerErrorMiddleware
    calls it and then re-raises, so uvicorn logged every 500 a second time as a plain
    text traceback. Here the error stops: logged once, answered once.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = Watched(send)
        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if watch.status is None:  # else the client sees the stream cut short
                await send_error(send, 500, "internal", "internal error; see the server log")


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid",
    503: "unavailable",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        headers.update(exc.headers)
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code)

    # Domain errors say what they are; this is the one place that maps them to HTTP.
    @app.exception_handler(LookupError)  # NotFound, and lookups of the standard library
    async def _missing(_: Request, exc: LookupError) -> JSONResponse:
        return JSONResponse(error_body("not_found", str(exc).strip("'\"")), 404)

    @app.exception_handler(Invalid)
    @app.exception_handler(ParamError)
    async def _invalid(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(error_body("invalid", str(exc)), 422)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(error_body("conflict", str(exc)), 409)

    @app.exception_handler(Invalid)
    async def _invalid(_: Request, exc: Invalid) -> JSONResponse:
        return JSONResponse(error_body("invalid", str(exc)), 422)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
        return JSONResponse(error_body("invalid", f"{loc}: {err['msg']}"), 422)
