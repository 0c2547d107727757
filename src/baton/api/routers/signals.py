"""Signals in: Alertmanager's own API, its webhook, Grafana, PagerDuty Events v2,
Baton's generic events, and tickets.

Every receiver answers 2xx only once its batch is committed to the inbox; processing
(dedup, correlation) happens after, off the request path. Auth is checked before the
body is read, the signature (when the source has a key) before it is parsed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from baton.act import secrets
from baton.api.contract import receiver_body
from baton.api.deps import parsed, platform, require
from baton.api.errors import ApiError
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform
from baton.sense import receivers, signature
from baton.sense.normalize import SignalError
from baton.servicedesk.tickets import to_dict as ticket_dict

router = APIRouter(tags=["signals"])
log = logging.getLogger("baton.api")
EVENTS_IN = Counter("baton_events_received_total", "Signals accepted", ["source"])
EVENTS_REJECTED = Counter("baton_events_rejected_total", "Signal batches rejected", ["source"])
EVENTS_DEFERRED = Counter(
    "baton_events_deferred_total", "Signal batches answered 503 for backpressure", ["source"]
)
may_ingest = require(Permission.INGEST)


def _signing_key(source: str, config: receivers.SourceConfig) -> str | None:
    if config.signing_secret is None:
        return None
    try:
        values = secrets.resolve([config.signing_secret])
    except KeyError:
        log.error("signing secret not set", extra={"source": source})
        raise ApiError(503, "unavailable", f"source {source!r} has no signing key set") from None
    return values[f"secret.{config.signing_secret}"]


async def receive(request: Request, p: Platform, source: str) -> receivers.Batch:
    """Check, parse and durably commit one request's batch; the 4xx names the field."""
    try:
        config = receivers.lookup_source(source, p.settings.sources)
    except KeyError as exc:
        raise ApiError(404, "not_found", exc.args[0]) from None
    _refuse_when_behind(p, source)
    body = await request.body()
    try:
        key = _signing_key(source, config)
        if key is not None:
            header = config.signature_header
            signature.verify(body, request.headers.get(header), key, header)
        batch = receivers.parse(source, config, body, p.clock.now(), p.settings.field_limits)
    except signature.SignatureError as exc:
        EVENTS_REJECTED.labels(source).inc()
        raise ApiError(401, "unauthorized", str(exc)) from None
    except SignalError as exc:
        EVENTS_REJECTED.labels(source).inc()
        raise ApiError(400, "bad_request", str(exc)) from None
    try:
        await asyncio.wrap_future(p.intake.submit(batch))
    except Exception:
        log.exception("batch not stored", extra={"source": source})
        raise ApiError(503, "unavailable", "the batch was not stored; send it again") from None
    EVENTS_IN.labels(source).inc(len(batch.events))
    return batch


def _refuse_when_behind(p: Platform, source: str) -> None:
    """Backpressure: past the configured lag, a 503 with `Retry-After` (Prometheus and
    Alertmanager retry on 5xx) rather than a 2xx for work that would sit for minutes."""
    pressure = p.drain.pressure()
    if pressure.over:
        EVENTS_DEFERRED.labels(source).inc()
        raise ApiError(
            503,
            "unavailable",
            f"processing is {pressure.lag_s:.0f} s and {pressure.backlog} events behind; "
            f"send again in {pressure.retry_after_s} s",
            {"Retry-After": str(pressure.retry_after_s)},
        )


def accepted(batch: receivers.Batch, code: int = 200, **extra: Any) -> Response:
    """A small JSON reply, serialised by hand: this is the hot path."""
    return Response(
        orjson.dumps({"accepted": len(batch.events), **extra}),
        code,
        media_type="application/json",
    )


@router.post(
    "/api/v2/alerts",
    summary="Alertmanager API v2: post alerts (Prometheus can target Baton)",
    openapi_extra=receiver_body("alertmanager-api"),
)
async def post_alerts(
    request: Request, _: Principal = Depends(may_ingest), p: Platform = Depends(platform)
) -> Response:
    return accepted(await receive(request, p, "alertmanager"))


@router.post(
    "/api/v1/events", summary="Generic JSON events", openapi_extra=receiver_body("generic")
)
async def post_events(
    request: Request, _: Principal = Depends(may_ingest), p: Platform = Depends(platform)
) -> Response:
    return accepted(await receive(request, p, "generic"))


@router.post(
    "/api/v1/ingest/{source}",
    summary="Any configured source: Alertmanager webhook, Grafana, PagerDuty, generic",
    openapi_extra=receiver_body(
        "alertmanager-webhook", "grafana", "pagerduty", "generic", "alertmanager-api"
    ),
)
async def post_source(
    source: str,
    request: Request,
    _: Principal = Depends(may_ingest),
    p: Platform = Depends(platform),
) -> Response:
    batch = await receive(request, p, source)
    return accepted(batch, group_key=batch.group_key)


@router.post(
    "/v2/enqueue",
    status_code=202,
    summary="PagerDuty Events API v2: trigger, acknowledge, resolve",
    openapi_extra=receiver_body("pagerduty"),
)
async def post_pagerduty(
    request: Request, _: Principal = Depends(may_ingest), p: Platform = Depends(platform)
) -> Response:
    batch = await receive(request, p, "pagerduty")
    return accepted(
        batch,
        202,
        status="success",
        message="Event processed",
        dedup_key=batch.events[0]["fingerprint"],
    )


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reporter: str = Field(min_length=1, max_length=128)
    subject: str = Field(min_length=1, max_length=512)
    body: str = Field(default="", max_length=20000)


@router.post("/api/v1/tickets", status_code=201, summary="File a ticket")
def post_ticket(
    _: Principal = Depends(may_ingest),
    ticket: TicketIn = Depends(parsed(TicketIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return ticket_dict(p.commands.file_ticket(ticket.reporter, ticket.subject, ticket.body))
