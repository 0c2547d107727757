"""Storage of events: dedup by fingerprint while an event is firing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from baton.kernel.enums import EventStatus
from baton.sense.normalize import EventIn
from baton.store.models import Event

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def store(session: Session, incoming: list[EventIn], at: datetime) -> list[Event]:
    """Record a batch; return the events whose state changed (new, resolved, re-fired).

    A repeat of a firing fingerprint (most real traffic: Prometheus re-sends every
    firing alert) only bumps its occurrence count and last-seen time; it is not a change
    the rest of the pipeline needs to look at. Repeats are the fast path: no ORM object
    is loaded for them, and all of a batch's bumps are one executemany.
    """
    prints = {e.fingerprint for e in incoming}
    firing = {
        r.fingerprint: r.id
        for r in session.execute(
            select(Event.id, Event.fingerprint).where(
                Event.fingerprint.in_(prints), Event.status == EventStatus.FIRING
            )
        )
    }
    loaded: dict[str, Event] = {}  # fingerprint -> ORM object, for what changes state
    bumps: dict[int, _Bump] = {}  # event id -> repeats, for the fast path
    changed: list[Event] = []
    for item in incoming:
        current = loaded.get(item.fingerprint)
        if current is None and item.fingerprint in firing:
            if item.status != EventStatus.RESOLVED:
                bump = bumps.setdefault(firing[item.fingerprint], _Bump())
                bump.add(item)
                continue
            current = _load(session, firing.pop(item.fingerprint), bumps)
            loaded[item.fingerprint] = current
        if current is None:
            if item.status != EventStatus.FIRING:
                continue  # a resolve or ack for something never seen firing carries no news
            current = _new(item, at)
            session.add(current)
            loaded[item.fingerprint] = current
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
            del loaded[item.fingerprint]
            changed.append(current)
    session.flush()
    _apply(session, bumps, at)
    return changed


class _Bump:
    """Repeats of one firing event within a batch."""

    __slots__ = ("annotations", "occurrences")

    def __init__(self) -> None:
        self.occurrences = 0
        self.annotations: dict[str, Any] | None = None

    def add(self, item: EventIn) -> None:
        if item.status == "acknowledged":
            return  # seen, not a new occurrence
        self.occurrences += 1
        self.annotations = item.annotations or self.annotations


def _load(session: Session, event_id: int, bumps: dict[int, _Bump]) -> Event:
    """The ORM object of a firing event about to change state, with its bumps so far."""
    event = session.get(Event, event_id)
    bump = bumps.pop(event_id, None)
    if bump is not None:
        event.occurrences += bump.occurrences
        event.annotations = bump.annotations or event.annotations
    return event


def _apply(session: Session, bumps: dict[int, _Bump], at: datetime) -> None:
    """The fast path's writes: one executemany for plain repeats, one for repeats that
    carry new annotations."""
    plain = [{"b_id": i, "b_n": b.occurrences} for i, b in bumps.items() if not b.annotations]
    noted = [
        {"b_id": i, "b_n": b.occurrences, "b_annotations": b.annotations}
        for i, b in bumps.items()
        if b.annotations
    ]
    table = Event.__table__
    base = update(table).where(table.c.id == bindparam("b_id"))
    values = {"last_seen": at, "occurrences": table.c.occurrences + bindparam("b_n")}
    if plain:
        session.connection().execute(base.values(**values), plain)
    if noted:
        session.connection().execute(
            base.values(**values, annotations=bindparam("b_annotations")), noted
        )
    for event_id in bumps:  # an object of this session (an earlier slice) reads them anew
        cached = session.identity_map.get(identity_key(Event, event_id))
        if cached is not None:
            session.expire(cached, ["occurrences", "last_seen", "annotations"])


def _new(item: EventIn, at: datetime) -> Event:
    return Event(
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
