"""SLA timers: each priority has a time to resolve (configured on its option); a ticket
still open past it gets a breach Event and is escalated like an unacknowledged incident.

The clock stops while the ticket waits on its requester (`lifecycle.move`), and runs on
the injected clock, so the scheduler job is exact in tests.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.govern.escalation import Raised, escalate
from baton.kernel.audit import Actor, append
from baton.kernel.enums import TicketStatus as S
from baton.store.models import Event, Ticket

SLA = Actor("baton.servicedesk.sla", "system")
RUNNING = (S.NEW, S.TRIAGED, S.IN_PROGRESS)  # waiting: the clock is stopped
SEVERITY = {"critical": "critical", "high": "critical"}


def breaches(session: Session, at: datetime) -> list[Raised]:
    """Mark every newly breached ticket, record its Event and escalate it (once)."""
    late = session.scalars(
        select(Ticket).where(
            Ticket.status.in_(RUNNING),
            Ticket.due_at.is_not(None),
            Ticket.due_at <= at,
            Ticket.breached_at.is_(None),
        )
    )
    raised = []
    for ticket in late:
        ticket.breached_at = at
        name = "TicketSLABreached"
        fingerprint = hashlib.sha256(f"{name}:ticket:{ticket.id}".encode()).hexdigest()[:64]
        session.add(
            Event(
                source="servicedesk",
                fingerprint=fingerprint,
                name=name,
                service=ticket.service,
                resource=f"ticket:{ticket.id}",
                severity=SEVERITY.get(ticket.priority or "", "warning"),
                status="firing",
                labels={"ticket": str(ticket.id), "priority": ticket.priority or ""},
                annotations={"summary": ticket.subject[:200], "due_at": ticket.due_at.isoformat()},
                starts_at=at,
                ends_at=None,
                first_seen=at,
                last_seen=at,
                suppressed_by="servicedesk",  # a desk record, not a signal to correlate
                entity=f"ticket:{ticket.id}",
            )
        )
        reason = f"ticket #{ticket.id} ({ticket.priority}) passed its SLA due time"
        append(
            session,
            actor=SLA,
            action="ticket.sla_breached",
            subject=f"ticket:{ticket.id}",
            at=at,
            inputs={"due_at": ticket.due_at.isoformat(), "priority": ticket.priority},
            decision="escalated",
            rationale=reason,
        )
        raised.append(escalate(session, f"ticket:{ticket.id}", ticket.service, reason, at))
    session.flush()
    return raised
