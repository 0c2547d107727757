"""Signals in: Alertmanager's own API, Baton's generic events, and tickets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from baton.api.deps import json_body, parsed, platform, require
from baton.api.errors import ApiError
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform
from baton.sense.normalize import SignalError
from baton.servicedesk.tickets import to_dict as ticket_dict

router = APIRouter(tags=["signals"])
EVENTS_IN = Counter("baton_events_received_total", "Signals accepted", ["source"])
EVENTS_REJECTED = Counter("baton_events_rejected_total", "Signal batches rejected", ["source"])


def _accept(p: Platform, source: str, fn: Any, payload: Any) -> dict[str, Any]:
    try:
        result = fn(payload)
    except SignalError as exc:
        EVENTS_REJECTED.labels(source).inc()
        raise ApiError(400, "bad_request", str(exc)) from None
    EVENTS_IN.labels(source).inc(result["accepted"])
    return result


@router.post(
    "/api/v2/alerts", summary="Alertmanager API v2: post alerts (Prometheus can target Baton)"
)
def post_alerts(
    _: Principal = Depends(require(Permission.INGEST)),
    payload: Any = Depends(json_body),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return _accept(p, "alertmanager", p.ingest_alertmanager, payload)


@router.post("/api/v1/events", summary="Generic JSON events")
def post_events(
    _: Principal = Depends(require(Permission.INGEST)),
    payload: Any = Depends(json_body),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return _accept(p, "generic", p.ingest_generic, payload)


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reporter: str = Field(min_length=1, max_length=128)
    subject: str = Field(min_length=1, max_length=512)
    body: str = Field(default="", max_length=20000)


@router.post("/api/v1/tickets", status_code=201, summary="File a ticket")
def post_ticket(
    _: Principal = Depends(require(Permission.INGEST)),
    ticket: TicketIn = Depends(parsed(TicketIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return ticket_dict(p.file_ticket(ticket.reporter, ticket.subject, ticket.body))
