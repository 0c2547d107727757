"""The FastAPI application: auth on by default, one JSON error shape, metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Histogram

from baton import __version__
from baton.api import contract, docs, errors
from baton.api.authn import PUBLIC, PUBLIC_UNDER, Authenticate
from baton.api.limits import BodyLimit, BodyRules, Budget
from baton.api.routers import (
    admin,
    automation,
    chat,
    copilot,
    health,
    incidents,
    learning,
    oversight,
    signals,
    suppression,
    telemetry,
    tickets,
    views,
)
from baton.runtime.platform import Platform
from baton.web import app as console

REQUESTS = Counter("baton_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("baton_http_request_seconds", "HTTP request latency", ["route"])


class Measure:
    """Request count and latency per route (plain ASGI: no per-request task or stream)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, watch = time.perf_counter(), errors.Watched(send)
        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(watch.status or 500)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="Baton",
        version=__version__,
        description="AI runs the tasks; humans hold the baton. Every endpoint but /healthz and "
        "/readyz needs `Authorization: Bearer <token>` (create one with "
        "`baton token create`).",
        docs_url=None,  # served by baton.api.docs from bundled assets, not a CDN
        redoc_url=None,
    )
    app.state.platform = platform
    app.state.principals = {}  # token hash -> (expiry, Principal or None); see deps.cached
    errors.install(app)
    docs.install(app)
    modules = (
        health,
        signals,
        telemetry,
        incidents,
        tickets,
        suppression,
        automation,
        oversight,
        admin,
        learning,
        views,
        copilot,
        chat,
    )
    routers = [m.router for m in modules]
    for router in routers:
        app.include_router(router)
    contract.install(app, routers)
    console.install(app)  # the pages people use, on the same app (own cookie sessions)

    def rules() -> BodyRules:
        cfg = platform.settings
        return BodyRules(
            cfg.max_body_bytes, cfg.body_min_rate_bps, cfg.body_grace_s, cfg.body_budget_bytes
        )

    # outermost last: Measure > Contain > Authenticate > BodyLimit > routes
    app.state.body_budget = Budget()
    app.add_middleware(BodyLimit, rules=rules, budget=app.state.body_budget)
    app.add_middleware(
        Authenticate,
        public=PUBLIC | {"/", console.PREFIX},
        public_under=(*PUBLIC_UNDER, f"{console.PREFIX}/"),
    )
    app.add_middleware(errors.Contain)
    app.add_middleware(Measure)
    return app
