"""The FastAPI application: auth on by default, one JSON error shape, metrics."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram

from baton import __version__
from baton.api import errors
from baton.api.limits import BodyLimit
from baton.api.routers import (
    admin,
    automation,
    health,
    incidents,
    oversight,
    signals,
    suppression,
)
from baton.runtime.platform import Platform

REQUESTS = Counter("baton_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("baton_http_request_seconds", "HTTP request latency", ["route"])


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="Baton",
        version=__version__,
        description="AI runs the tasks; humans hold the baton. Every endpoint but /healthz and "
        "/readyz needs `Authorization: Bearer <token>` (create one with "
        "`baton token create`).",
    )
    app.state.platform = platform
    errors.install(app)
    app.add_middleware(BodyLimit, limit=lambda: platform.settings.max_body_bytes)
    for module in (health, signals, incidents, suppression, automation, oversight, admin):
        app.include_router(module.router)

    @app.middleware("http")
    async def _measure(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response: Response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)
        return response

    return app
