"""Ticket intake: a first, transparent keyword classifier and linking to live incidents.

The full classifiers come later; this one is deliberately simple and explainable.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.correlate.topology import Topology
from baton.kernel.audit import Actor, append
from baton.kernel.enums import LIVE_INCIDENT, TicketStatus
from baton.store.models import Incident, Ticket

CLASSIFIER = Actor("baton.servicedesk", "ai", "keywords/1")

# category -> (keywords, service kinds users mean by them)
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "access": (
        (
            "password",
            "locked",
            "unlock",
            "log in",
            "login",
            "sign in",
            "sso",
            "access",
            "permission",
            "account",
        ),
        ("auth", "directory"),
    ),
    "email": (("email", "e-mail", "mail", "outlook", "inbox", "outbox"), ("email",)),
    "network": (("vpn", "network", "wifi", "dns", "internet", "connection"), ("vpn", "dns")),
    "storage": (("disk", "storage", "file share", "files", "drive", "quota"), ("storage",)),
    "application": (
        (
            "portal",
            "website",
            "site",
            "checkout",
            "order",
            "payment",
            "page",
            "502",
            "500",
            "error",
            "slow",
            "timeout",
            "hr",
        ),
        ("web", "api"),
    ),
}
URGENT = re.compile(
    r"\b(urgent|asap|down|outage|everyone|can't work|cannot work|all of us)\b", re.I
)


def classify(subject: str, body: str) -> tuple[str, str, list[str]]:
    """(category, priority, matched keywords)."""
    text = f"{subject} {body}".lower()
    best, hits = "other", []
    for category, (words, _) in CATEGORIES.items():
        found = [w for w in words if re.search(rf"\b{re.escape(w)}\b", text)]
        if len(found) > len(hits):
            best, hits = category, found
    priority = "high" if URGENT.search(text) else "normal"
    return best, priority, hits


def _linked_incident(
    session: Session, category: str, graph: Topology, at: datetime
) -> Incident | None:
    """An open incident touching a service of the kind the ticket talks about."""
    kinds = CATEGORIES.get(category, ((), ()))[1]
    if not kinds:
        return None
    recent = session.scalars(
        select(Incident)
        .where(
            Incident.status.in_(LIVE_INCIDENT),
            Incident.opened_at >= at - timedelta(hours=4),
        )
        .order_by(Incident.id.desc())
    )
    for inc in recent:
        if any(graph.kind(s) in kinds for s in inc.services):
            return inc
    return None


def file_ticket(
    session: Session, *, reporter: str, subject: str, body: str, graph: Topology, at: datetime
) -> Ticket:
    """Record a ticket, classify it, and link it to a live incident when one fits."""
    category, priority, hits = classify(subject, body)
    incident = _linked_incident(session, category, graph, at)
    ticket = Ticket(
        reporter=reporter,
        subject=subject[:512],
        body=body,
        category=category,
        priority=priority,
        status=TicketStatus.NEW,
        created_at=at,
        updated_at=at,
        incident_id=incident.id if incident else None,
        service=incident.origin_service if incident else None,
    )
    session.add(ticket)
    session.flush()
    append(
        session,
        actor=CLASSIFIER,
        action="ticket.classified",
        subject=f"ticket:{ticket.id}",
        at=at,
        inputs={"reporter": reporter, "subject": subject[:200]},
        decision=f"{category}/{priority}" + (f" -> incident:{incident.id}" if incident else ""),
        rationale=f"keywords {hits}" if hits else "no category keywords found",
    )
    return ticket


def recent(session: Session, limit: int) -> list[Ticket]:
    return list(session.scalars(select(Ticket).order_by(Ticket.id.desc()).limit(limit)))


def for_incident(session: Session, incident_id: int) -> list[Ticket]:
    return list(session.scalars(select(Ticket).where(Ticket.incident_id == incident_id)))


def to_dict(t: Ticket) -> dict[str, Any]:
    return {
        "id": t.id,
        "reporter": t.reporter,
        "subject": t.subject,
        "body": t.body,
        "category": t.category,
        "priority": t.priority,
        "service": t.service,
        "status": t.status,
        "incident_id": t.incident_id,
        "created_at": t.created_at,
    }
