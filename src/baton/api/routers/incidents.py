"""Incidents and their events, tickets and proposals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.api.deps import actor_of, platform, require, session
from baton.api.errors import ApiError
from baton.correlate.incidents import to_dict as incident_dict
from baton.govern import escalation
from baton.govern.audit import append
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform
from baton.sense.service import list_events
from baton.sense.service import to_dict as event_dict
from baton.servicedesk.tickets import to_dict as ticket_dict
from baton.store.models import Incident, Proposal, Ticket
from baton.triage.propose import to_dict as proposal_dict

router = APIRouter(prefix="/api/v1", tags=["incidents"])
READ = Depends(require(Permission.READ))


@router.get("/incidents")
def incidents(
    status: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    _: Principal = READ,
    s: Session = Depends(session),
) -> list[dict[str, Any]]:
    query = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if status:
        query = query.where(Incident.status == status)
    return [incident_dict(i) for i in s.scalars(query)]


def _get(s: Session, incident_id: int) -> Incident:
    incident = s.get(Incident, incident_id)
    if incident is None:
        raise ApiError(404, "not_found", f"no incident {incident_id}")
    return incident


@router.get("/incidents/{incident_id}")
def incident(
    incident_id: int, _: Principal = READ, s: Session = Depends(session)
) -> dict[str, Any]:
    data = incident_dict(_get(s, incident_id))
    data["events"] = [event_dict(e) for e in list_events(s, incident_id=incident_id, limit=500)]
    data["tickets"] = [
        ticket_dict(t) for t in s.scalars(select(Ticket).where(Ticket.incident_id == incident_id))
    ]
    data["proposals"] = [
        proposal_dict(p)
        for p in s.scalars(
            select(Proposal).where(Proposal.incident_id == incident_id).order_by(Proposal.id)
        )
    ]
    return data


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(
    incident_id: int,
    who: Principal = Depends(require(Permission.OPERATE)),
    s: Session = Depends(session),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    inc = _get(s, incident_id)
    if inc.status != "open":
        raise ApiError(409, "conflict", f"incident {incident_id} is {inc.status}")
    at = p.clock.now()
    inc.status, inc.acknowledged_at, inc.acknowledged_by = "acknowledged", at, who.name
    escalation.close_for(s, f"incident:{inc.id}", f"acknowledged by {who.name}", at)
    append(
        s,
        actor=actor_of(who),
        action="incident.acknowledged",
        subject=f"incident:{inc.id}",
        at=at,
        decision="acknowledged",
    )
    return incident_dict(inc)


@router.get("/events")
def events(
    status: str | None = None,
    service: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = READ,
    s: Session = Depends(session),
) -> list[dict[str, Any]]:
    return [event_dict(e) for e in list_events(s, status=status, service=service, limit=limit)]


@router.get("/tickets")
def tickets(
    limit: int = Query(100, ge=1, le=1000), _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    return [
        ticket_dict(t) for t in s.scalars(select(Ticket).order_by(Ticket.id.desc()).limit(limit))
    ]
