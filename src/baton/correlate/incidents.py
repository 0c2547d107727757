"""Incidents: opening, growing, reopening and resolving them, and choosing each one's
probable origin (the most upstream failing service that failed first).

Which incident an event joins, and why, is decided in `grouping.py`; every join records
its rule, detail and score on the incident and in the audit ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from baton.correlate.config import CorrelationConfig
from baton.correlate.entities import resolve_events
from baton.correlate.grouping import (
    MAX_PENDING,
    ORIGIN_LAG,
    SHARED_COVERAGE,
    SHARED_LAG,
    Grouper,
    began,
)
from baton.correlate.suppress import may_open
from baton.correlate.topology import Topology
from baton.kernel.audit import Actor, append
from baton.kernel.enums import LIVE_INCIDENT, EventStatus, IncidentStatus
from baton.kernel.errors import NotFound, Refused
from baton.sense.events import SEVERITY_RANK
from baton.store.models import Event, Incident

CORRELATOR = Actor("baton.correlate", "ai", "topology-window/1")
MAX_REASONS = 50  # grouping reasons kept on the incident; the audit ledger keeps them all


@dataclass(frozen=True)
class IncidentChange:
    incident_id: int
    kind: str  # opened | grew | reopened | origin_changed | resolved


def open_incidents(session: Session) -> list[Incident]:
    return list(session.scalars(select(Incident).where(Incident.status.in_(LIVE_INCIDENT))))


def get(session: Session, incident_id: int) -> Incident:
    inc = session.get(Incident, incident_id)
    if inc is None:
        raise NotFound(f"no incident {incident_id}")
    return inc


def acknowledge(session: Session, incident_id: int, actor: Actor, at: datetime) -> Incident:
    """Someone has the incident: it stops waiting for an acknowledgement."""
    inc = get(session, incident_id)
    if inc.status != IncidentStatus.OPEN:
        raise Refused(f"incident {incident_id} is {inc.status}")
    inc.status, inc.acknowledged_at, inc.acknowledged_by = (
        IncidentStatus.ACKNOWLEDGED,
        at,
        actor.name,
    )
    append(
        session,
        actor=actor,
        action="incident.acknowledged",
        subject=f"incident:{inc.id}",
        at=at,
        decision="acknowledged",
    )
    return inc


def event_services(session: Session, incident_id: int) -> list[tuple[str, datetime, str]]:
    """(service, when its trouble began, severity) per service and severity."""
    rows = session.execute(
        select(
            Event.service,
            func.min(Event.first_seen),
            func.min(Event.starts_at),
            Event.severity,
        )
        .where(Event.incident_id == incident_id)
        .group_by(Event.service, Event.severity)
    )
    return [
        (service or "unknown", min(first, max(starts or first, first - MAX_PENDING)), severity)
        for service, first, starts, severity in rows
    ]


def _still_firing(session: Session, incident_id: int) -> bool:
    query = select(Event.id).where(
        Event.incident_id == incident_id, Event.status == EventStatus.FIRING
    )
    return session.scalar(query.limit(1)) is not None


def choose_origin(
    firing: list[tuple[str, datetime, str]], graph: Topology
) -> tuple[str | None, str]:
    """The most upstream affected service; ties go to the earliest, then the most severe.

    A failing dependency only explains a service when it started failing before it (or
    within ORIGIN_LAG after): a queue that backs up ten minutes after its consumer broke
    is an effect of the consumer, not its cause.
    """
    services = {s for s, _, _ in firing}
    if not services:
        return None, "no events"
    first_seen = {s: min(t for n, t, _ in firing if n == s) for s in services}
    worst = {s: max(SEVERITY_RANK.get(v, 1) for n, _, v in firing if n == s) for s in services}

    def explained(s: str) -> bool:
        return any(
            first_seen[u] <= first_seen[s] + ORIGIN_LAG for u in graph.upstream(s) & services
        )

    roots = [s for s in services if not explained(s)]
    roots.sort(key=lambda s: (first_seen[s], -worst[s], s))

    def reach(r: str) -> set[str]:
        return {s for s in services if s == r or r in graph.upstream(s)}

    ranked = roots  # the earliest of the roots
    infra = [r for r in roots if graph.infrastructure(r)]
    common = _common_cause(infra, services, graph)
    if common is not None:
        shared, share = common
        covered = set().union(*(reach(r) for r in infra))
        if len(covered) >= len(reach(ranked[0])):
            kind = graph.kind(shared) or "service"
            return shared, (
                f"{', '.join(sorted(infra))} do not depend on one another but all stand on "
                f"{shared} ({kind}), and {share:.0%} of what stands on it is failing"
            )
    origin = ranked[0]
    others = sorted(services - {origin})
    if len(roots) == 1 and others:
        why = f"{origin} is upstream of every other failing service ({', '.join(others)})"
    elif len(roots) == 1:
        why = f"{origin} is the only failing service"
    else:
        why = (
            f"{len(roots)} failing services have no failing dependency that failed first "
            f"({', '.join(sorted(roots))}); {origin} failed first"
        )
    return origin, why


def _common_cause(
    roots: list[str], services: set[str], graph: Topology
) -> tuple[str, float] | None:
    """The zone (or other silent infrastructure) that several failing nodes or other
    infrastructure, none explaining another, all stand on, when at least half of what
    stands on it is failing in this incident: the most specific such thing. A silent
    node or shared service is never inferred from its services alone (too many of them
    fail at once in a storm for their own reasons); its own alert names it."""
    if len(roots) < 2 or not all(graph.infrastructure(r) for r in roots):
        return None
    shared = set.intersection(*(set(graph.upstream(r)) for r in roots))
    found = []
    for name in shared:
        if not graph.infrastructure(name):
            continue
        dependents = graph.dependents(name)
        hit = len(dependents & services)
        if dependents and hit >= 2 and hit >= SHARED_COVERAGE * len(dependents):
            found.append((-hit, len(dependents), name))
    if not found:
        return None
    hit, size, name = min(found)  # explains most; then the most specific
    return name, -hit / size


def retitle(inc: Incident, session: Session) -> None:
    """Title from the origin's first alert and how many services are involved; kept true
    as the incident grows (called whenever it changes)."""
    names = session.scalars(
        select(Event.name)
        .where(Event.incident_id == inc.id, Event.service == inc.origin_service)
        .order_by(Event.id)
    ).first()
    others = [s for s in inc.services if s != inc.origin_service]
    extra = len(others)
    suffix = f" (+{extra} related service{'s' if extra != 1 else ''})" if extra > 0 else ""
    if names:
        inc.title = f"{names} on {inc.origin_service}{suffix}"
    else:  # an origin inferred from what its dependents suffer
        inc.title = f"{extra} services failing under {inc.origin_service}"


def _update_origin(session: Session, inc: Incident, graph: Topology, at: datetime) -> bool:
    if inc.origin_set_by:  # a person chose the origin; new alerts do not overrule them
        return False
    # Every event counts, resolved ones too: fixing the origin must not hand the title
    # to the downstream symptoms that are still recovering.
    origin, why = choose_origin(event_services(session, inc.id), graph)
    if origin is None or origin == inc.origin_service:
        return False
    previous = inc.origin_service
    inc.origin_service = origin
    retitle(inc, session)
    append(
        session,
        actor=CORRELATOR,
        action="incident.origin",
        subject=f"incident:{inc.id}",
        at=at,
        inputs={"previous": previous, "services": inc.services},
        decision=origin,
        rationale=why,
    )
    return previous is not None


def correlate(
    session: Session,
    events: list[Event],
    graph: Topology,
    at: datetime,
    cfg: CorrelationConfig | None = None,
) -> list[IncidentChange]:
    """Place changed events into incidents; resolve incidents whose events all resolved.

    A held or suppressed event (flapping, inhibited) may join an incident but never opens
    one.
    """
    cfg = cfg or CorrelationConfig()
    resolve_events(events, cfg.entities, graph)
    grouper = Grouper(session, graph, at, cfg)
    grouper.prefetch(events)
    changes: dict[int, str] = {}
    touched: dict[int, Incident] = {}
    joined: dict[int, list[tuple[Event, dict[str, Any]]]] = {}
    for event in events:
        if event.status == EventStatus.FIRING and event.incident_id is None:
            candidates = grouper.candidates(event)
            opens = not grouper.observation(event)
            placed = None if candidates is None else _place(session, event, candidates, at, opens)
            if placed is None:
                continue
            inc, reason = placed
            grouper.changed(inc.id, event)
            cause = _cause_of(event, reason, graph)
            if cause is not None:
                for gone in _absorb(session, inc, cause, began(event), grouper, graph, at):
                    grouper.merged(inc.id, gone.id)
                    touched.pop(gone.id, None)
                    changes[gone.id] = "merged"
            if inc.status == IncidentStatus.RESOLVED:
                _reopen(session, inc, event, at)
                changes[inc.id] = "reopened"
            elif reason.get("rule") == "new":
                changes[inc.id] = "opened"
            else:
                changes.setdefault(inc.id, "grew")
                joined.setdefault(inc.id, []).append((event, reason))
            touched[inc.id] = inc
        elif event.status == EventStatus.RESOLVED and event.incident_id is not None:
            inc = session.get(Incident, event.incident_id)
            if inc is not None and inc.status in LIVE_INCIDENT:
                touched[inc.id] = inc
    for inc in list(touched.values()):
        if inc.status in LIVE_INCIDENT and changes.get(inc.id) in ("opened", "grew", "reopened"):
            for event, reason in _observations(session, grouper, inc, at):
                joined.setdefault(inc.id, []).append((event, reason))
    for incident_id, items in joined.items():
        _audit_grouped(session, incident_id, items, at)
    for inc in touched.values():
        if _update_origin(session, inc, graph, at) and changes.get(inc.id) != "opened":
            changes[inc.id] = "origin_changed"
        elif inc.origin_service:
            retitle(inc, session)
        if cfg.resolve_with_alerts and not _still_firing(session, inc.id):
            inc.status, inc.resolved_at, inc.updated_at = IncidentStatus.RESOLVED, at, at
            changes[inc.id] = "resolved"
            append(
                session,
                actor=CORRELATOR,
                action="incident.resolved",
                subject=f"incident:{inc.id}",
                at=at,
                decision="resolved",
                rationale="every grouped alert has resolved",
            )
    session.flush()
    return [IncidentChange(i, k) for i, k in changes.items()]


def _cause_of(event: Event, reason: dict[str, Any], graph: Topology) -> str | None:
    """The shared or upstream cause this placement found, if any: then other incidents
    that are all its effects are taken over."""
    if reason.get("rule") == "shared-cause":
        return reason.get("via")
    service = event.service or ""
    if reason.get("rule") == "upstream-of-origin" or graph.infrastructure(service):
        return service if graph.dependents(service) else None
    return None


def _absorb(
    session: Session,
    inc: Incident,
    cause: str,
    since: datetime,
    grouper: Grouper,
    graph: Topology,
    at: datetime,
) -> list[Incident]:
    """A cause found late takes over the incidents that are only its effects: every one
    of their services stands on `cause`, and their trouble began with it (from
    ORIGIN_LAG before to SHARED_LAG after). A person's pinned origin is left alone.
    Looked for through the index: incidents with trouble first seen since then on
    something that stands on `cause`."""
    taken = []
    effects = grouper.index.by_services(
        {cause, *graph.downstream(cause)}, seen_since=since - ORIGIN_LAG, any_age=True
    )
    for other in grouper.index.incidents(effects):
        if other.id == inc.id or other.origin_set_by or other.status not in LIVE_INCIDENT:
            continue
        rows = event_services(session, other.id)
        if not rows or not all(cause in graph.upstream(s) or s == cause for s, _, _ in rows):
            continue
        first = min(t for _, t, _ in rows)
        if not since - ORIGIN_LAG <= first <= since + SHARED_LAG:
            continue
        moved = list(session.scalars(select(Event).where(Event.incident_id == other.id)))
        for event in moved:
            event.incident_id = inc.id
        inc.services = [*inc.services, *(s for s in other.services if s not in inc.services)]
        if SEVERITY_RANK.get(other.severity, 1) > SEVERITY_RANK.get(inc.severity, 1):
            inc.severity = other.severity
        detail = f"incident {other.id} ({', '.join(other.services[:4])}) stands on {cause}"
        reason = {"rule": "taken-over", "detail": detail, "score": 0.7, "service": cause}
        if len(inc.grouping) < MAX_REASONS:
            inc.grouping = [*inc.grouping, reason]
        other.status, other.merged_into, other.updated_at = "merged", inc.id, at
        inc.updated_at = at
        append(
            session,
            actor=CORRELATOR,
            action="incident.merged",
            subject=f"incident:{other.id}",
            at=at,
            inputs={"into": inc.id, "events": [e.id for e in moved][:MAX_REASONS]},
            decision=f"merged into incident {inc.id}",
            rationale=f"its alerts are effects of {cause}, found to be failing: {detail}",
        )
        taken.append(other)
    session.flush()
    return taken


def _observations(
    session: Session, grouper: Grouper, inc: Incident, at: datetime
) -> list[tuple[Event, dict[str, Any]]]:
    """Alerts waiting as observations on an entity of the incident join it now, when
    they began with the trouble there (within SHARED_LAG)."""
    entities: dict[str, datetime] = {}
    for entity, starts, first in session.execute(
        select(Event.entity, Event.starts_at, Event.first_seen).where(
            Event.incident_id == inc.id, Event.entity.is_not(None)
        )
    ):
        at_ = min(first, max(starts or first, first - MAX_PENDING))
        entities[entity] = min(at_, entities.get(entity, at_))
    if not entities:
        return []
    waiting = session.scalars(
        select(Event).where(
            Event.entity.in_(entities),
            Event.incident_id.is_(None),
            Event.status == "firing",
            Event.suppressed_by.is_(None),
            Event.first_seen >= at - grouper.cfg.window,
        )
    )
    out = []
    for event in waiting:
        if not grouper.observation(event):
            continue  # held alerts that may page are placed by the usual rules
        if abs(began(event) - entities[event.entity or ""]) > SHARED_LAG:
            continue  # waiting there long before (or long after) this trouble: not part of it
        detail = f"{event.name} was waiting as an observation on {event.entity}"
        reason = {
            "rule": "observation",
            "detail": detail,
            "score": 0.5,
            "event_id": event.id,
            "service": event.service or "unknown",
        }
        event.incident_id = inc.id
        if len(inc.grouping) < MAX_REASONS:
            inc.grouping = [*inc.grouping, reason]
        if event.service and event.service not in inc.services:
            inc.services = [*inc.services, event.service]
        grouper.changed(inc.id, event)
        out.append((event, reason))
    return out


def _reopen(session: Session, inc: Incident, event: Event, at: datetime) -> None:
    inc.status, inc.resolved_at = IncidentStatus.OPEN, None
    append(
        session,
        actor=CORRELATOR,
        action="incident.reopened",
        subject=f"incident:{inc.id}",
        at=at,
        inputs={"event": event.id, "alert": event.name, "service": event.service},
        decision="reopened",
        rationale="an alert of this incident fired again within the correlation window",
    )


def _place(
    session: Session,
    event: Event,
    candidates: list[tuple[Incident, dict[str, Any]]],
    at: datetime,
    opens: bool = True,
) -> tuple[Incident, dict[str, Any]] | None:
    """Join the best candidate, or open an incident if the event may page (an
    observation never does: it waits on its entity)."""
    service = event.service or "unknown"
    if candidates:
        inc, reason = candidates[0]
        if service not in inc.services:
            inc.services = [*inc.services, service]
        if SEVERITY_RANK.get(event.severity, 1) > SEVERITY_RANK.get(inc.severity, 1):
            inc.severity = event.severity
        if len(inc.grouping) < MAX_REASONS:
            inc.grouping = [*inc.grouping, reason]
        inc.updated_at = at
        event.incident_id = inc.id
        return inc, reason
    if not may_open(event, at) or not opens:
        return None
    reason = {
        "rule": "new",
        "detail": f"no open incident related to {service}",
        "score": 0.0,
        "event_id": event.id,
        "service": service,
    }
    inc = Incident(
        title=f"{event.name} on {service}",
        status=IncidentStatus.OPEN,
        severity=event.severity,
        origin_service=None,
        services=[service],
        grouping=[reason],
        opened_at=at,
        updated_at=at,
    )
    session.add(inc)
    session.flush()
    event.incident_id = inc.id
    append(
        session,
        actor=CORRELATOR,
        action="incident.opened",
        subject=f"incident:{inc.id}",
        at=at,
        inputs={"event": event.id, "alert": event.name, "service": service, "labels": event.labels},
        decision="opened",
        rationale=reason["detail"],
    )
    return inc, reason


def _audit_grouped(
    session: Session, incident_id: int, items: list[tuple[Event, dict[str, Any]]], at: datetime
) -> None:
    """One audit record per incident and batch, listing what joined and why."""
    rules = sorted({f"{r['rule']}: {r['detail']}" for _, r in items})
    append(
        session,
        actor=CORRELATOR,
        action="incident.grouped",
        subject=f"incident:{incident_id}",
        at=at,
        inputs={
            "joined": len(items),
            "events": [{"id": e.id, "alert": e.name, "service": e.service} for e, _ in items][
                :MAX_REASONS
            ],
        },
        decision="joined",
        rationale="; ".join(rules[:10])
        + (f" (+{len(rules) - 10} more)" if len(rules) > 10 else ""),
    )


def recent(session: Session, status: str | None, limit: int) -> list[Incident]:
    query = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if status:
        query = query.where(Incident.status == status)
    return list(session.scalars(query))


def to_dict(inc: Incident) -> dict[str, Any]:
    return {
        "id": inc.id,
        "title": inc.title,
        "status": inc.status,
        "severity": inc.severity,
        "origin_service": inc.origin_service,
        "services": inc.services,
        "grouping": inc.grouping,
        "opened_at": inc.opened_at,
        "updated_at": inc.updated_at,
        "acknowledged_at": inc.acknowledged_at,
        "acknowledged_by": inc.acknowledged_by,
        "resolved_at": inc.resolved_at,
        "origin_set_by": inc.origin_set_by,
        "merged_into": inc.merged_into,
    }
