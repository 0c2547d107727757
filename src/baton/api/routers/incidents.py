"""Incidents and their events, tickets and proposals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from baton.api.deps import actor_of, parsed, platform, require, session
from baton.api.params import Id, RowId
from baton.correlate import feedback
from baton.correlate import incidents as incidents_
from baton.correlate.incidents import to_dict as incident_dict
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform
from baton.sense.events import list_events
from baton.sense.events import to_dict as event_dict
from baton.servicedesk import tickets as tickets_
from baton.servicedesk.tickets import to_dict as ticket_dict
from baton.triage import propose as proposals_
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
    return [incident_dict(i) for i in incidents_.recent(s, status, limit)]


@router.get("/incidents/{incident_id}")
def incident(incident_id: Id, _: Principal = READ, s: Session = Depends(session)) -> dict[str, Any]:
    data = incident_dict(incidents_.get(s, incident_id))
    data["events"] = [event_dict(e) for e in list_events(s, incident_id=incident_id, limit=500)]
    data["tickets"] = [ticket_dict(t) for t in tickets_.for_incident(s, incident_id)]
    data["feedback"] = [feedback.to_dict(f) for f in feedback.list_feedback(s, incident_id)]
    data["proposals"] = [proposal_dict(p) for p in proposals_.for_incident(s, incident_id)]
    return data


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(
    incident_id: Id,
    who: Principal = Depends(require(Permission.OPERATE)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return incident_dict(p.commands.acknowledge(incident_id, actor_of(who)))


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


@router.post("/incidents/{incident_id}/merge")
def merge(
    incident_id: Id,
    who: Principal = Depends(require(Permission.OPERATE)),
    body: MergeIn = Depends(parsed(MergeIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    """Merge other incidents into this one (a person's correction, kept as feedback)."""
    return incident_dict(p.commands.merge(incident_id, body.incidents, actor_of(who), body.reason))


@router.post("/incidents/{incident_id}/split", status_code=201)
def split(
    incident_id: Id,
    who: Principal = Depends(require(Permission.OPERATE)),
    body: SplitIn = Depends(parsed(SplitIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    """Move alerts out of this incident into a new one; returns the new incident."""
    return incident_dict(p.commands.split(incident_id, body.events, actor_of(who), body.reason))


@router.post("/incidents/{incident_id}/origin")
def set_origin(
    incident_id: Id,
    who: Principal = Depends(require(Permission.OPERATE)),
    body: OriginIn = Depends(parsed(OriginIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    """Name the probable origin yourself; the correlator keeps it from now on."""
    inc = p.commands.set_origin(incident_id, body.service, actor_of(who), body.reason)
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
