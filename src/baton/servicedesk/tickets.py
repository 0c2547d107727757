"""Ticket intake: a first, transparent keyword classifier and linking to live incidents.

The keyword classifier is deliberately simple and explainable; it speaks through the
same seam (`seam.apply_triage`) as the trained models, so swapping it changes nothing
else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.correlate.topology import Topology
from baton.kernel.audit import Actor, append
from baton.kernel.enums import LIVE_INCIDENT, TicketStatus
from baton.kernel.errors import NotFound
from baton.servicedesk.seam import Prediction, apply_triage
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


# the group a category's tickets go to when nobody says otherwise
GROUP_OF = {
    "access": "identity",
    "email": "messaging",
    "network": "network",
    "storage": "storage",
    "application": "applications",
    "other": "service-desk",
}


def keyword_predictions(subject: str, body: str) -> dict[str, Prediction]:
    """The keyword classifier's answer in the seam's terms; more hits, more confidence."""
    category, priority, hits = classify(subject, body)
    sure = min(0.95, 0.5 + 0.15 * len(hits)) if hits else 0.3
    name, version = CLASSIFIER.name, CLASSIFIER.version or "1"
    return {
        "category": Prediction(category, sure, name, version, [(category, sure)]),
        "priority": Prediction(priority, 0.7 if priority == "high" else 0.65, name, version),
        "group": Prediction(GROUP_OF.get(category, "service-desk"), sure, name, version),
    }


# (session, subject, body) -> field predictions; in the ticket's own transaction
Predictor = Callable[[Session, str, str], dict[str, Prediction]]
# told, in the ticket's transaction, what each field's prediction led to (applied or
# suggested): where trained models keep their predictions with the ticket and version
Triaged = Callable[[Session, Ticket, dict[str, Prediction], dict[str, str], datetime], None]


def file_ticket(
    session: Session,
    *,
    reporter: str,
    subject: str,
    body: str,
    graph: Topology,
    at: datetime,
    channel: str = "api",
    external_ref: str | None = None,
    predict: Predictor | None = None,
    triaged: Triaged | None = None,
) -> Ticket:
    """Record a ticket, triage it through the seam, and link it to a live incident."""
    subject = " ".join(subject.split())[:512] or "(no subject)"
    ticket = Ticket(
        reporter=reporter[:128],
        subject=subject,
        body=body[:100_000],
        status=TicketStatus.NEW,
        created_at=at,
        updated_at=at,
        channel=channel,
        external_ref=external_ref,
    )
    session.add(ticket)
    session.flush()
    predictions = predict(session, subject, body) if predict else keyword_predictions(subject, body)
    outcome = apply_triage(session, ticket, predictions, at)
    if triaged is not None:
        triaged(session, ticket, predictions, outcome, at)
    category = predictions["category"].value if "category" in predictions else "other"
    incident = _linked_incident(session, category, graph, at)
    if incident is not None:
        ticket.incident_id, ticket.service = incident.id, incident.origin_service
    append(
        session,
        actor=CLASSIFIER,
        action="ticket.classified",
        subject=f"ticket:{ticket.id}",
        at=at,
        inputs={"reporter": reporter, "subject": subject[:200], "channel": channel},
        decision=f"{ticket.category}/{ticket.priority}"
        + (f" -> incident:{incident.id}" if incident else ""),
        rationale=", ".join(f"{f} {o}" for f, o in outcome.items()),
    )
    return ticket


def link_incident(
    session: Session, ticket: Ticket, incident_id: int | None, actor: Actor, at: datetime
) -> None:
    """Link (or unlink, with None) a ticket to an incident; audited."""
    if incident_id is not None and session.get(Incident, incident_id) is None:
        raise NotFound(f"no incident {incident_id}")
    ticket.incident_id, ticket.updated_at = incident_id, at
    append(
        session,
        actor=actor,
        action="ticket.linked",
        subject=f"ticket:{ticket.id}",
        at=at,
        decision=f"incident:{incident_id}" if incident_id else "unlinked",
    )


def by_ref(session: Session, external_ref: str) -> Ticket | None:
    """The ticket a conversation or mail thread belongs to."""
    return session.scalar(
        select(Ticket).where(Ticket.external_ref == external_ref).order_by(Ticket.id.desc())
    )


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
        "updated_at": t.updated_at,
        "group": t.group,
        "assignee": t.assignee,
        "channel": t.channel,
        "due_at": t.due_at,
        "breached_at": t.breached_at,
        "resolved_at": t.resolved_at,
        "suggestions": t.suggestions or {},
    }
