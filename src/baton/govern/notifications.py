"""Incident notifications, grouped and timed the way Alertmanager does it.

An incident that changes is routed by its labels; each route it lands on puts it into a
notification group (one per route and group_by values). A new group speaks first after
`group_wait`, so the incidents of one outage arrive in one message; after that it looks
every `group_interval` and speaks only if something changed; a group that keeps firing
unchanged is repeated after `repeat_interval`; a resolved incident is said once, then
dropped. Groups live in the database, so a restart keeps what is pending and what was
already said.

This module decides what to say and when; delivering it is the runtime's job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from baton.govern.routes import Route, Routing
from baton.store.models import Event, Incident, NotificationGroup

FIRING, RESOLVED = "firing", "resolved"


def incident_labels(session: Session, incident: Incident) -> dict[str, str]:
    """What routes match on: the labels of the incident's first alert at its origin, with
    `service`, `severity` and `alertname` set from the incident itself."""
    query = select(Event).where(Event.incident_id == incident.id).order_by(Event.id)
    events = list(session.scalars(query.limit(50)))
    first = next((e for e in events if e.service == incident.origin_service), None)
    first = first or (events[0] if events else None)
    labels = {str(k): str(v) for k, v in ((first.labels if first else None) or {}).items()}
    labels["alertname"] = first.name if first else incident.title
    labels["service"] = incident.origin_service or (first.service if first else None) or ""
    labels["severity"] = incident.severity
    return labels


def _summary(incident: Incident) -> dict[str, Any]:
    return {
        "title": incident.title,
        "status": RESOLVED if incident.status == RESOLVED else FIRING,
        "severity": incident.severity,
        "service": incident.origin_service,
        "services": list(incident.services),
    }


def _digest(members: dict[str, Any]) -> str:
    """What a notification said: which incidents, in which state, how bad, titled how,
    across which services (an incident that spread is news)."""
    said = sorted(
        (int(k), m["status"], m["severity"], m["title"], sorted(m["services"]))
        for k, m in members.items()
    )
    return hashlib.sha256(json.dumps(said).encode()).hexdigest()


def _key(route: Route, labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps([route.id, labels], sort_keys=True).encode()).hexdigest()


def _group(
    session: Session, route: Route, labels: dict[str, str], at: datetime
) -> NotificationGroup:
    """The route's group for these labels, created (waiting group_wait) if it is new."""
    grouped = route.group_labels(labels)
    key = _key(route, grouped)
    found = session.scalar(select(NotificationGroup).where(NotificationGroup.key == key))
    if found is not None:
        return found
    group = NotificationGroup(
        key=key,
        route=route.id,
        receiver=route.receiver,
        labels=grouped,
        members={},
        created_at=at,
        next_flush_at=at + route.group_wait,
    )
    try:
        with session.begin_nested():  # another replica may create the same group at once
            session.add(group)
    except IntegrityError:
        return session.scalar(select(NotificationGroup).where(NotificationGroup.key == key))
    return group


def _put(group: NotificationGroup, incident_id: int, summary: dict[str, Any]) -> None:
    group.members = {**group.members, str(incident_id): summary}  # reassign: JSON column


def track(
    session: Session, routing: Routing | None, incident_ids: Iterable[int], at: datetime
) -> int:
    """Put changed incidents into their notification groups; returns how many changed.

    A firing incident joins the groups of every route it matches; any change (resolved,
    worse, retitled) is written into each group that already holds it. A resolved
    incident never starts a group: nobody was told it fired.
    """
    if routing is None:
        return 0
    ids = sorted(set(incident_ids))
    if not ids:
        return 0
    # locked in id order, the order `flush` locks them in, so the two never deadlock
    groups = list(
        session.scalars(select(NotificationGroup).order_by(NotificationGroup.id).with_for_update())
    )
    touched = 0
    for incident_id in ids:
        incident = session.get(Incident, incident_id)
        if incident is None:
            continue
        summary = _summary(incident)
        targets = [g for g in groups if str(incident_id) in g.members]
        if summary["status"] == FIRING:
            labels = incident_labels(session, incident)
            for route in routing.root.match(labels):
                group = _group(session, route, labels, at)
                if group not in targets:
                    targets.append(group)
                if group not in groups:
                    groups.append(group)
        for group in targets:
            _put(group, incident_id, summary)
        touched += len(targets)
    session.flush()
    return touched


def _next_flush(group: NotificationGroup, route: Route, at: datetime) -> datetime:
    """Keep the group's own rhythm; after a long pause (no ticks), restart it from now."""
    scheduled = group.next_flush_at + route.group_interval
    return scheduled if scheduled > at else at + route.group_interval


def flush(session: Session, routing: Routing | None, at: datetime) -> list[dict[str, Any]]:
    """The notifications due now, as JSON-ready dicts; marks each group as having said it.

    A group due for a flush speaks if what it holds differs from what it last said, or if
    it is still firing and `repeat_interval` has passed since it last spoke.
    """
    if routing is None:
        return []
    due = session.scalars(
        select(NotificationGroup)
        .where(NotificationGroup.next_flush_at <= at)
        .order_by(NotificationGroup.id)
        .with_for_update()
    )
    out = []
    for group in due:
        route = routing.root.find(group.route) or routing.root
        firing = any(m["status"] == FIRING for m in group.members.values())
        if not firing and group.last_sent_at is None:
            session.delete(group)  # resolved before anyone heard of it
            continue
        digest = _digest(group.members)
        repeat = group.last_sent_at is not None and group.last_sent_at + route.repeat_interval <= at
        group.next_flush_at = _next_flush(group, route, at)
        if digest == group.sent_digest and not (firing and repeat):
            continue
        group.sent_digest, group.last_sent_at = digest, at
        receiver = route.receiver if routing.root.find(group.route) else group.receiver
        out.append(
            {
                "group": group.id,
                "route": group.route,
                "receiver": receiver,
                "channels": list(routing.channels(receiver)),
                "status": FIRING if firing else RESOLVED,
                "labels": dict(group.labels),
                "incidents": [{"id": int(k), **m} for k, m in sorted(group.members.items())],
            }
        )
    session.flush()
    return out


def delivered(session: Session, notification: dict[str, Any], ok: bool) -> None:
    """Settle a notification once its channels were tried.

    Failed: forget what was said, so the next group_interval says it again. Delivered:
    resolved incidents it reported are done and leave the group; an empty group ends.
    """
    group = session.get(NotificationGroup, notification["group"], with_for_update=True)
    if group is None:
        return
    if not ok:
        group.sent_digest = None
        return
    told = {str(i["id"]): i for i in notification["incidents"]}
    done = {
        k
        for k, i in told.items()
        if i["status"] == RESOLVED and group.members.get(k, {}).get("status") == RESOLVED
    }
    remaining = {k: m for k, m in group.members.items() if k not in done}
    if not remaining:
        session.delete(group)
        return
    group.members = remaining
    still_told = {k: {kk: v for kk, v in i.items() if kk != "id"} for k, i in told.items()}
    group.sent_digest = _digest({k: m for k, m in still_told.items() if k not in done})
