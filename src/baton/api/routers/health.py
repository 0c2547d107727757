"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text

from baton.api.deps import authorize, platform
from baton.api.errors import ApiError
from baton.govern.rbac import Permission
from baton.learn.figures import Scope, kpis
from baton.runtime.platform import Platform
from baton.store.migrate import is_current

router = APIRouter(tags=["health"])
BACKLOG = Gauge("baton_inbox_backlog_events", "Events acknowledged but not processed yet")
# KPIs over the last 7 days; a figure with no data yet (no incident resolved) is NaN.
KPI_WINDOW = timedelta(days=7)
KPIS = {
    "baton_kpi_mtta_seconds": ("median time to acknowledge", ("incidents", "mtta_s")),
    "baton_kpi_mttr_seconds": ("median time to resolve", ("incidents", "mttr_s")),
    "baton_kpi_incidents": ("incidents opened", ("incidents", "opened")),
    "baton_kpi_alerts": ("alerts received", ("alerts",)),
    "baton_kpi_noise_reduction_ratio": ("1 - incidents / alerts", ("noise_reduction",)),
    "baton_kpi_automation_success_ratio": ("runs that succeeded", ("automation", "success_rate")),
    "baton_kpi_acceptance_ratio": ("AI actions let stand", ("behaviour", "acceptance_rate")),
    "baton_kpi_escalations": ("escalations raised", ("escalations", "raised")),
    "baton_kpi_time_saved_minutes": (
        "declared manual time saved",
        ("automation", "time_saved_min"),
    ),
    "baton_kpi_tickets": ("tickets filed", ("tickets", "filed")),
}
GAUGES = {name: Gauge(name, f"{help_} over the last 7 days") for name, (help_, _) in KPIS.items()}
RESOLVED = Gauge(
    "baton_kpi_resolutions", "Incidents resolved in 7 days, by who fixed them", ["how"]
)


def _export_kpis(figures: dict[str, Any]) -> None:
    for name, (_, path) in KPIS.items():
        value: Any = figures
        for key in path:
            value = value[key]
        GAUGES[name].set(float("nan") if value is None else value)
    for how in ("automatic", "ai_assisted", "human_only"):
        RESOLVED.labels(how).set(figures["incidents"]["resolution"][how])


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
    with p.db.session() as s:
        now = p.clock.now()
        _export_kpis(kpis(s, Scope(now - KPI_WINDOW, now + timedelta(seconds=1))))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
