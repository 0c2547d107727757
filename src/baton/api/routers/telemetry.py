"""Telemetry in: Prometheus remote-write, metric import (CSV or JSON), JSON log lines.

Points and lines go to the live detection's buffers (`Platform.watch`), not to the
inbox: they are raw telemetry, not alerts; what detection finds in them is. A malformed
body gets a 400 naming what is wrong (Prometheus does not retry a 4xx, so a bad body
is not sent again and again).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import Counter

from baton.api.deps import platform, require
from baton.api.errors import ApiError
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform
from baton.sense import loglines, samples
from baton.sense.normalize import SignalError

router = APIRouter(tags=["telemetry"])
POINTS_IN = Counter("baton_metric_points_received_total", "Metric points accepted", ["format"])
LINES_IN = Counter("baton_log_lines_received_total", "Log lines accepted", ["format"])
may_ingest = require(Permission.INGEST)


def _raw(*types: str) -> dict[str, Any]:
    """`openapi_extra` for a body that is not JSON, or not only JSON."""
    content = {t: {"schema": {"type": "string", "format": "binary"}} for t in types}
    return {"requestBody": {"required": True, "content": content}}


def _refused(exc: SignalError) -> ApiError:
    return ApiError(400, "bad_request", str(exc))


@router.post(
    "/api/v1/write",
    status_code=204,
    summary="Prometheus remote-write 1.0 (snappy-compressed protobuf WriteRequest)",
    openapi_extra=_raw("application/x-protobuf"),
)
async def remote_write(
    request: Request, _: Principal = Depends(may_ingest), p: Platform = Depends(platform)
) -> Response:
    try:
        batch = samples.remote_write(await request.body())
    except SignalError as exc:
        raise _refused(exc) from None
    POINTS_IN.labels("remote-write").inc(p.watch.metrics.add(batch))
    return Response(status_code=204)


@router.post(
    "/api/v1/metrics",
    summary="Import metric points: CSV (text/csv: timestamp,value[,metric,labels...]) or JSON",
    openapi_extra=_raw("text/csv", "application/json"),
)
async def import_metrics(
    request: Request, _: Principal = Depends(may_ingest), p: Platform = Depends(platform)
) -> dict[str, int]:
    body = await request.body()
    try:
        if "csv" in request.headers.get("content-type", ""):
            batch = samples.from_csv(body.decode("utf-8", "replace"))
        else:
            batch = samples.from_json(body)
    except SignalError as exc:
        raise _refused(exc) from None
    accepted = p.watch.metrics.add(batch)
    POINTS_IN.labels("import").inc(accepted)
    return {"series": len(batch), "points": accepted}


@router.post(
    "/api/v1/logs",
    summary="Log lines: one JSON object per line (message, level, ...)",
    openapi_extra=_raw("application/x-ndjson"),
)
async def post_logs(
    request: Request, _: Principal = Depends(may_ingest), p: Platform = Depends(platform)
) -> dict[str, int]:
    try:
        lines = loglines.from_json_lines(await request.body(), p.clock.now())
    except SignalError as exc:
        raise _refused(exc) from None
    LINES_IN.labels("json").inc(p.watch.logs.add(lines))
    return {"accepted": len(lines)}
