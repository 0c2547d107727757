"""People correcting the correlator: merge incidents, split alerts out, re-assign the
origin. Each correction changes the incidents at once, is audited, and is kept as a
labelled example (CorrelationFeedback: what the correlator had, what the person made of
it, why) for learning later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.correlate.candidates import CandidateIndex
from baton.correlate.grouping import tokens
from baton.correlate.incidents import choose_origin, event_services, retitle
from baton.correlate.incidents import get as _incident
from baton.correlate.topology import Topology
from baton.kernel.audit import Actor, append
from baton.kernel.enums import LIVE_INCIDENT, EventStatus, IncidentStatus
from baton.kernel.errors import Invalid, Refused
from baton.store.models import CorrelationFeedback, Event, Incident


def _snapshot(session: Session, inc: Incident) -> dict[str, Any]:
    events = session.scalars(select(Event).where(Event.incident_id == inc.id).order_by(Event.id))
    return {
        "incident": inc.id,
        "status": inc.status,
        "origin_service": inc.origin_service,
        "services": list(inc.services),
        "events": [
            {"id": e.id, "alert": e.name, "service": e.service, "fingerprint": e.fingerprint}
            for e in events
        ],
        "grouping": list(inc.grouping),
    }


def _recompute(session: Session, inc: Incident, graph: Topology) -> None:
    """Services and (unless a person pinned it) origin from the incident's events now."""
    rows = event_services(session, inc.id)
    inc.services = sorted({s for s, _, _ in rows})
    if not inc.origin_set_by:
        inc.origin_service, _ = choose_origin(rows, graph)
    if inc.origin_service:
        retitle(inc, session)


def _record(
    session: Session,
    kind: str,
    inc: Incident,
    other: Incident | None,
    before: dict[str, Any],
    actor: Actor,
    reason: str,
    at: datetime,
) -> CorrelationFeedback:
    if not reason.strip():
        raise Invalid("say why, so the correction can teach the correlator", "reason")
    row = CorrelationFeedback(
        kind=kind,
        incident_id=inc.id,
        other_incident_id=other.id if other else None,
        before=before,
        after={"incident": _snapshot(session, inc)}
        | ({"other": _snapshot(session, other)} if other else {}),
        reason=reason,
        actor=actor.name,
        created_at=at,
    )
    session.add(row)
    session.flush()
    append(
        session,
        actor=actor,
        action=f"incident.{kind}",
        subject=f"incident:{inc.id}",
        at=at,
        inputs={"other": other.id if other else None, "feedback": row.id},
        decision=kind,
        rationale=reason,
    )
    return row


def merge(
    session: Session,
    target_id: int,
    source_ids: list[int],
    graph: Topology,
    actor: Actor,
    reason: str,
    at: datetime,
) -> Incident:
    """Move every alert of the source incidents into the target; sources become `merged`."""
    target = _incident(session, target_id)
    sources = [_incident(session, i) for i in source_ids]
    if not sources or target_id in source_ids:
        raise Invalid("name one or more incidents other than the target", "incidents")
    for inc in (target, *sources):
        if inc.status == IncidentStatus.MERGED:
            raise Refused(f"incident {inc.id} was already merged into {inc.merged_into}")
    before = {
        "incident": _snapshot(session, target),
        "merged": [_snapshot(session, s) for s in sources],
    }
    still_open = any(s.status in LIVE_INCIDENT for s in sources)
    words = CandidateIndex(session, at)
    for source in sources:
        for event in session.scalars(select(Event).where(Event.incident_id == source.id)):
            event.incident_id = target.id
        source.status, source.merged_into, source.updated_at = IncidentStatus.MERGED, target.id, at
        words.moved(source.id, target.id)  # its words now find the target
        target.grouping = [
            *target.grouping,
            {"rule": "merged-by-person", "detail": f"incident {source.id} by {actor.name}"},
        ]
    if target.status not in LIVE_INCIDENT and still_open:
        target.status, target.resolved_at = IncidentStatus.OPEN, None
    target.updated_at = at
    session.flush()
    _recompute(session, target, graph)
    for source in sources:
        _record(session, "merge", target, source, before, actor, reason, at)
    return target


def split(
    session: Session,
    incident_id: int,
    event_ids: list[int],
    graph: Topology,
    actor: Actor,
    reason: str,
    at: datetime,
) -> Incident:
    """Move the given alerts out of an incident into a new one; returns the new incident."""
    inc = _incident(session, incident_id)
    if inc.status == IncidentStatus.MERGED:
        raise Refused(f"incident {inc.id} was merged into {inc.merged_into}")
    events = list(
        session.scalars(select(Event).where(Event.id.in_(event_ids), Event.incident_id == inc.id))
    )
    missing = sorted(set(event_ids) - {e.id for e in events})
    if not event_ids or missing:
        raise Invalid(f"not in incident {inc.id}: {missing or 'none given'}", "events")
    remaining = session.scalar(
        select(Event.id).where(Event.incident_id == inc.id, Event.id.not_in(event_ids)).limit(1)
    )
    if remaining is None:
        raise Invalid("leave at least one alert in the incident", "events")
    before = {"incident": _snapshot(session, inc)}
    firing = any(e.status == EventStatus.FIRING for e in events)
    new = Incident(
        title=f"{events[0].name} on {events[0].service or 'unknown'}",
        status=IncidentStatus.OPEN if firing else "resolved",
        severity=inc.severity,
        services=[],
        grouping=[{"rule": "split-by-person", "detail": f"from incident {inc.id} by {actor.name}"}],
        opened_at=at,
        updated_at=at,
        resolved_at=None if firing else at,
    )
    session.add(new)
    session.flush()
    words = CandidateIndex(session, at)
    for event in events:
        event.incident_id = new.id
        words.add_words(new.id, tokens(event.name, event.labels or {}, event.annotations or {}))
    inc.updated_at = at
    session.flush()
    _recompute(session, inc, graph)
    _recompute(session, new, graph)
    _record(session, "split", inc, new, before, actor, reason, at)
    return new


def set_origin(
    session: Session,
    incident_id: int,
    service: str,
    actor: Actor,
    reason: str,
    at: datetime,
) -> Incident:
    """A person names the origin; automatic re-origination stops for this incident."""
    inc = _incident(session, incident_id)
    if service not in inc.services:
        raise Invalid(
            f"{service!r} has no alert in incident {inc.id} (it has: {', '.join(inc.services)})",
            "service",
        )
    before = {"incident": _snapshot(session, inc)}
    inc.origin_service, inc.origin_set_by, inc.updated_at = service, actor.name, at
    inc.triaged_origin = None  # triage again for the origin the person chose
    retitle(inc, session)
    _record(session, "origin", inc, None, before, actor, reason, at)
    return inc


def list_feedback(
    session: Session, incident_id: int | None = None, limit: int = 100
) -> list[CorrelationFeedback]:
    query = select(CorrelationFeedback).order_by(CorrelationFeedback.id.desc())
    if incident_id is not None:
        query = query.where(
            (CorrelationFeedback.incident_id == incident_id)
            | (CorrelationFeedback.other_incident_id == incident_id)
        )
    return list(session.scalars(query.limit(limit)))


def to_dict(row: CorrelationFeedback) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "incident_id": row.incident_id,
        "other_incident_id": row.other_incident_id,
        "before": row.before,
        "after": row.after,
        "reason": row.reason,
        "actor": row.actor,
        "created_at": row.created_at,
    }
