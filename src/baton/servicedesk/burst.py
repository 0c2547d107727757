"""Outages seen from tickets: a burst of similar new tickets becomes an Event.

When several people report the same thing within a short window (same category, same
service where one is known, wording that overlaps) and no incident holds them, the desk
raises one `TicketBurst` Event. It goes through sense and correlation like any alert, so
it opens an incident or joins one that is already open for that service, and the same
dedup, suppression and notification rules apply. The Event's fingerprint is the burst's
category and service: further tickets of the same burst update that Event rather than
open more incidents.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.correlate.topology import Topology
from baton.kernel.audit import Actor, append
from baton.kernel.enums import TicketStatus
from baton.sense.normalize import EventIn
from baton.store.models import Event, Ticket

BURST = Actor("baton.servicedesk.burst", "ai", "overlap/1")
NAME = "TicketBurst"
OPEN = (TicketStatus.NEW, TicketStatus.TRIAGED, TicketStatus.IN_PROGRESS, TicketStatus.WAITING)
_WORD = re.compile(r"[a-z0-9]{3,}")
# words that carry no symptom: a shared "please" or "help" does not make two tickets alike
_COMMON = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "this",
        "that",
        "have",
        "not",
        "can",
        "cannot",
        "from",
        "our",
        "are",
        "was",
        "please",
        "help",
        "hi",
        "hello",
        "thanks",
        "thank",
        "you",
        "any",
        "since",
        "when",
        "what",
        "just",
        "get",
        "got",
        "all",
        "its",
        "it's",
        "there",
    ]
)


@dataclass(frozen=True)
class Burst:
    event: EventIn
    tickets: list[int]


def words(ticket: Ticket) -> set[str]:
    text = f"{ticket.subject} {ticket.body[:2000]}".lower()
    return {w for w in _WORD.findall(text) if w not in _COMMON}


def similar(a: set[str], b: set[str], bar: float) -> bool:
    """Jaccard overlap of two tickets' words at or above `bar`."""
    return bool(a and b) and len(a & b) / len(a | b) >= bar


def _service(ticket: Ticket, kinds: tuple[str, ...], graph: Topology) -> str | None:
    """The ticket's service, or the one known service of the kind its category means."""
    if ticket.service:
        return ticket.service
    matches = sorted(n for n in graph.services if graph.kind(n) in kinds)
    return matches[0] if len(matches) == 1 else None


def detect(
    session: Session,
    ticket: Ticket,
    graph: Topology,
    kinds: tuple[str, ...],
    at: datetime,
    *,
    size: int,
    window: timedelta,
    overlap: float,
) -> Burst | None:
    """The Event for the burst this new ticket completes or extends, or None. Tickets of
    the burst already linked to its incident still count: the next one alike re-fires
    the same Event (same fingerprint), and correlation puts it with that incident."""
    if ticket.incident_id is not None or not ticket.category or size < 2:
        return None
    mine = words(ticket)
    recent = session.scalars(
        select(Ticket).where(
            Ticket.category == ticket.category,
            Ticket.created_at >= at - window,
            Ticket.status.in_(OPEN),
            Ticket.id != ticket.id,
        )
    )
    service = _service(ticket, kinds, graph)
    alike = [
        t
        for t in recent
        if (t.service is None or service is None or t.service == service)
        and similar(mine, words(t), overlap)
    ]
    if len(alike) + 1 < size:
        return None
    ids = sorted([ticket.id, *(t.id for t in alike)])
    shared = set.intersection(mine, *(words(t) for t in alike))
    key = f"{NAME}:{ticket.category}:{service or '-'}"
    reporters = len({ticket.reporter, *(t.reporter for t in alike)})
    event = EventIn(
        source="servicedesk",
        name=NAME,
        service=service,
        resource=f"tickets:{ticket.category}",
        severity="critical" if reporters >= 2 * size else "warning",
        status="firing",
        labels={"alertname": NAME, "category": ticket.category, "service": service or ""},
        annotations={
            "summary": f"{len(ids)} similar {ticket.category} tickets from {reporters} "
            f"people in {int(window.total_seconds() // 60)} min",
            "tickets": ",".join(str(i) for i in ids[-50:]),
            "words": " ".join(sorted(shared)[:12]),
        },
        starts_at=at,
        ends_at=None,
        fingerprint=hashlib.sha256(key.encode()).hexdigest()[:64],
    )
    append(
        session,
        actor=BURST,
        action="ticket.burst",
        subject=f"ticket:{ticket.id}",
        at=at,
        inputs={"tickets": ids[-50:], "category": ticket.category, "service": service},
        decision=f"{NAME} event for correlation",
        rationale=f"{len(ids)} open tickets within {window} share the category and words "
        f"({event.annotations['words'] or 'none in all'}) at overlap >= {overlap}",
    )
    return Burst(event, ids)


def link_to_event(session: Session, burst: Burst, at: datetime) -> int | None:
    """After correlation: link the burst's tickets to the incident its Event is in."""
    incident = session.scalar(
        select(Event.incident_id)
        .where(Event.fingerprint == burst.event.fingerprint, Event.incident_id.is_not(None))
        .order_by(Event.id.desc())
        .limit(1)
    )
    if incident is None:
        return None
    for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(burst.tickets))):
        if ticket.incident_id is None:
            ticket.incident_id, ticket.updated_at = incident, at
            ticket.service = ticket.service or burst.event.service
            append(
                session,
                actor=BURST,
                action="ticket.linked",
                subject=f"ticket:{ticket.id}",
                at=at,
                decision=f"incident:{incident}",
                rationale="part of a burst of similar tickets, correlated as one Event",
            )
    return incident
