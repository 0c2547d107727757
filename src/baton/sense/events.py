"""Storage of events: dedup by fingerprint while an event is firing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.enums import EventStatus
from baton.sense.normalize import EventIn
from baton.store.models import Event

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def store(session: Session, incoming: list[EventIn], at: datetime) -> list[Event]:
    """Record a batch; return the events whose state changed (new, resolved, re-fired).

    A repeat of a firing fingerprint only bumps its occurrence count and last-seen time;
    it is not a change the rest of the pipeline needs to look at.
    """
    prints = {e.fingerprint for e in incoming}
    active = {
        ev.fingerprint: ev
        for ev in session.scalars(
            select(Event).where(Event.fingerprint.in_(prints), Event.status == EventStatus.FIRING)
        )
    }
    changed: list[Event] = []
    for item in incoming:
        current = active.get(item.fingerprint)
        if current is None:
            if item.status != EventStatus.FIRING:
                continue  # a resolve or ack for something never seen firing carries no news
            current = Event(
                source=item.source,
                fingerprint=item.fingerprint,
                name=item.name,
                service=item.service,
                resource=item.resource,
                severity=item.severity,
                status=EventStatus.FIRING,
                labels=item.labels,
                annotations=item.annotations,
                starts_at=item.starts_at,
                ends_at=None,
                first_seen=at,
                last_seen=at,
                occurrences=1,
            )
            session.add(current)
            active[item.fingerprint] = current
            changed.append(current)
            continue
        current.last_seen = at
        if item.status == "acknowledged":
            continue  # a person is on it at the source: seen, not a new occurrence
        current.occurrences += 1
        current.annotations = item.annotations or current.annotations
        if item.status == EventStatus.RESOLVED:
            current.status = EventStatus.RESOLVED
            current.ends_at = item.ends_at or at
            del active[item.fingerprint]
            changed.append(current)
    session.flush()
    return changed


def list_events(
    session: Session,
    *,
    status: str | None = None,
    service: str | None = None,
    incident_id: int | None = None,
    limit: int = 100,
) -> list[Event]:
    query = select(Event).order_by(Event.id.desc())
    if status:
        query = query.where(Event.status == status)
    if service:
        query = query.where(Event.service == service)
    if incident_id is not None:
        query = query.where(Event.incident_id == incident_id)
    return list(session.scalars(query.limit(limit)))


def to_dict(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "fingerprint": event.fingerprint,
        "name": event.name,
        "service": event.service,
        "resource": event.resource,
        "severity": event.severity,
        "status": event.status,
        "labels": event.labels,
        "annotations": event.annotations,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "occurrences": event.occurrences,
        "incident_id": event.incident_id,
        "suppressed_by": event.suppressed_by,
        "held_until": event.held_until,
    }
