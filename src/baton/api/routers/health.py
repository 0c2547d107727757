"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text

from baton.api.deps import authorize, platform
from baton.api.errors import ApiError
from baton.govern.rbac import Permission
from baton.runtime.platform import Platform
from baton.store.migrate import is_current

router = APIRouter(tags=["health"])
BACKLOG = Gauge("baton_inbox_backlog_events", "Events acknowledged but not processed yet")
LAG = Gauge("baton_inbox_lag_seconds", "Age of the oldest event acknowledged but not processed")
RATE = Gauge("baton_inbox_processed_per_second", "Events processed per second (last seconds)")
OVER = Gauge("baton_intake_backpressure", "1 while intake answers 503 for backpressure")


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and migrated")
def readyz(p: Platform = Depends(platform)) -> dict[str, object]:
    try:
        with p.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        migrated = is_current(p.db.engine)
    except Exception as exc:
        raise ApiError(
            503, "unavailable", f"database not reachable: {type(exc).__name__}"
        ) from None
    if not migrated:
        raise ApiError(503, "unavailable", "database schema is not current; run `baton db upgrade`")
    pressure = p.drain.pressure()
    if pressure.over:
        raise ApiError(
            503,
            "unavailable",
            f"processing is behind: {pressure.backlog} events, {pressure.lag_s:.1f} s",
            {"Retry-After": str(pressure.retry_after_s)},
        )
    return {
        "status": "ready",
        "runbooks": len(p.config.catalogue.runbooks),
        "backlog": pressure.backlog,
        "lag_s": round(pressure.lag_s, 3),
    }


@router.get("/metrics", summary="Prometheus metrics (viewer token unless metrics_public)")
def metrics(request: Request, p: Platform = Depends(platform)) -> Response:
    if not p.settings.metrics_public:
        authorize(request, p, Permission.READ)
    pressure = p.drain.pressure(fresh=True)
    BACKLOG.set(pressure.backlog)
    LAG.set(pressure.lag_s)
    RATE.set(pressure.processed_per_s)
    OVER.set(int(pressure.over))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
