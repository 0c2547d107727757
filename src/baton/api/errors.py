"""One JSON error shape for every failure: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from baton.act.runbook import ParamError
from baton.kernel.errors import Invalid, Refused

log = logging.getLogger("baton.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


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
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(error_body("internal", "internal error; see the server log"), 500)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
        return JSONResponse(error_body("invalid", f"{loc}: {err['msg']}"), 422)
