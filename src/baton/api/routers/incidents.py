"""Incidents and their events, tickets and proposals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.api.deps import actor_of, parsed, platform, require, session
from baton.api.errors import ApiError
from baton.api.params import Id, RowId
from baton.correlate import feedback
from baton.correlate.incidents import to_dict as incident_dict
from baton.govern import escalation
from baton.govern.rbac import Permission, Principal
from baton.kernel.audit import append
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
def incident(incident_id: Id, _: Principal = READ, s: Session = Depends(session)) -> dict[str, Any]:
    data = incident_dict(_get(s, incident_id))
    data["events"] = [event_dict(e) for e in list_events(s, incident_id=incident_id, limit=500)]
    data["tickets"] = [
        ticket_dict(t) for t in s.scalars(select(Ticket).where(Ticket.incident_id == incident_id))
    ]
    data["feedback"] = [feedback.to_dict(f) for f in feedback.list_feedback(s, incident_id)]
    data["proposals"] = [
        proposal_dict(p)
        for p in s.scalars(
            select(Proposal).where(Proposal.incident_id == incident_id).order_by(Proposal.id)
        )
    ]
    return data


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(
    incident_id: Id,
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


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incidents: list[RowId] = Field(min_length=1, max_length=50)  # merged into the path's one
    reason: str = Field(min_length=1, max_length=2000)


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[RowId] = Field(min_length=1, max_length=500)  # moved to a new incident
    reason: str = Field(min_length=1, max_length=2000)


class OriginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


def _bad_input(exc: ValueError) -> ApiError:
    return ApiError(422, "invalid", str(exc))


@router.post("/incidents/{incident_id}/merge")
def merge(
    incident_id: Id,
    who: Principal = Depends(require(Permission.OPERATE)),
    body: MergeIn = Depends(parsed(MergeIn)),
    s: Session = Depends(session),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    """Merge other incidents into this one (a person's correction, kept as feedback)."""
    try:
        inc = feedback.merge(
            s, incident_id, body.incidents, p.graph(s), actor_of(who), body.reason, p.clock.now()
        )
    except ValueError as exc:
        raise _bad_input(exc) from None
    return incident_dict(inc)


@router.post("/incidents/{incident_id}/split", status_code=201)
def split(
    incident_id: Id,
    who: Principal = Depends(require(Permission.OPERATE)),
    body: SplitIn = Depends(parsed(SplitIn)),
    s: Session = Depends(session),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    """Move alerts out of this incident into a new one; returns the new incident."""
    try:
        new = feedback.split(
            s, incident_id, body.events, p.graph(s), actor_of(who), body.reason, p.clock.now()
        )
    except ValueError as exc:
        raise _bad_input(exc) from None
    return incident_dict(new)


@router.post("/incidents/{incident_id}/origin")
def set_origin(
    incident_id: Id,
    who: Principal = Depends(require(Permission.OPERATE)),
    body: OriginIn = Depends(parsed(OriginIn)),
    s: Session = Depends(session),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    """Name the probable origin yourself; the correlator keeps it from now on."""
    try:
        inc = feedback.set_origin(
            s, incident_id, body.service, actor_of(who), body.reason, p.clock.now()
        )
    except ValueError as exc:
        raise _bad_input(exc) from None
    return incident_dict(inc)


@router.get("/correlation/feedback")
def correlation_feedback(
    limit: int = Query(100, ge=1, le=1000), _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    """Every merge, split and origin correction, with before/after: labelled data."""
    return [feedback.to_dict(f) for f in feedback.list_feedback(s, limit=limit)]


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
