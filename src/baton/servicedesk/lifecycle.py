"""A ticket's life: field changes, status moves, comments, and the rules they fire.

Every change goes through `set_field`, whoever makes it: a person, or a model with its
version. So the history says who or what set each value, a model's change can be undone
like anyone's, and the rules (SLA clock, new -> triaged once routed) fire the same way
for both.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.audit import Actor, append
from baton.kernel.enums import TicketStatus as S
from baton.kernel.errors import Invalid, NotFound, Refused
from baton.servicedesk import options
from baton.store.models import Ticket, TicketChange, TicketComment

EDITABLE = ("category", "priority", "group", "assignee", "service")
MOVES: dict[str, tuple[str, ...]] = {
    S.NEW: (S.TRIAGED, S.IN_PROGRESS, S.WAITING, S.RESOLVED, S.CLOSED),
    S.TRIAGED: (S.IN_PROGRESS, S.WAITING, S.RESOLVED, S.CLOSED),
    S.IN_PROGRESS: (S.WAITING, S.RESOLVED),
    S.WAITING: (S.IN_PROGRESS, S.RESOLVED),
    S.RESOLVED: (S.CLOSED, S.IN_PROGRESS),  # back to work = reopened
    S.CLOSED: (S.IN_PROGRESS,),
}
OPEN = (S.NEW, S.TRIAGED, S.IN_PROGRESS, S.WAITING)
ROUTED = ("category", "priority", "group")


def get(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    return ticket


def _record(
    session: Session,
    ticket: Ticket,
    field: str,
    old: str | None,
    new: str | None,
    actor: Actor,
    at: datetime,
    confidence: float | None,
) -> TicketChange:
    change = TicketChange(
        ticket_id=ticket.id,
        field=field,
        old=old,
        new=new,
        actor=actor.name,
        actor_kind=actor.kind,
        version=actor.version,
        confidence=confidence,
        at=at,
    )
    session.add(change)
    session.flush()
    ticket.updated_at = at
    append(
        session,
        actor=actor,
        action=f"ticket.{field}",
        subject=f"ticket:{ticket.id}",
        at=at,
        inputs={"old": old, "new": new, "confidence": confidence},
        decision=new or "cleared",
    )
    return change


def set_field(
    session: Session,
    ticket: Ticket,
    field: str,
    value: str | None,
    actor: Actor,
    at: datetime,
    confidence: float | None = None,
) -> TicketChange | None:
    """Change one field (None if it already had that value), then fire the rules."""
    if field == "status":
        return move(session, ticket, value or "", actor, at)
    if field not in EDITABLE:
        raise Invalid(f"field must be one of {EDITABLE} or status", "field")
    options.check(session, field, value)
    old = getattr(ticket, field)
    if old == value:
        return None
    setattr(ticket, field, value)
    change = _record(session, ticket, field, old, value, actor, at, confidence)
    if field == "priority":
        _reprice_sla(session, ticket, old, at)
    if ticket.status == S.NEW and all(getattr(ticket, f) for f in ROUTED):
        move(session, ticket, S.TRIAGED, actor, at)
    return change


def _reprice_sla(session: Session, ticket: Ticket, old: str | None, at: datetime) -> None:
    """A new priority moves the due time by the difference of the two targets."""
    new_minutes = options.sla_minutes(session, ticket.priority)
    if new_minutes is None:
        ticket.due_at = None
        return
    old_minutes = options.sla_minutes(session, old)
    if ticket.due_at is None or old_minutes is None:
        ticket.due_at = ticket.created_at + timedelta(minutes=new_minutes)
    else:
        ticket.due_at += timedelta(minutes=new_minutes - old_minutes)
    if ticket.breached_at and ticket.due_at > at:
        ticket.breached_at = None  # a lower priority can lift a breach; a new one re-fires


def move(session: Session, ticket: Ticket, status: str, actor: Actor, at: datetime) -> TicketChange:
    """Move the ticket along its lifecycle; waiting stops the SLA clock."""
    old = ticket.status
    if status not in MOVES.get(old, ()):
        raise Refused(f"ticket {ticket.id} cannot go from {old} to {status or '?'}")
    if old == S.WAITING and ticket.paused_at is not None:
        if ticket.due_at is not None:
            ticket.due_at += at - ticket.paused_at
        ticket.paused_at = None
    if status == S.WAITING:
        ticket.paused_at = at
    if status == S.RESOLVED:
        ticket.resolved_at = at
    if status == S.IN_PROGRESS and old in (S.RESOLVED, S.CLOSED):
        ticket.resolved_at = None  # reopened
    ticket.status = status
    return _record(session, ticket, "status", old, status, actor, at, None)


def revert(session: Session, change_id: int, actor: Actor, at: datetime) -> TicketChange | None:
    """Undo one field change (a model's included) by setting the old value back."""
    change = session.get(TicketChange, change_id)
    if change is None:
        raise NotFound(f"no ticket change {change_id}")
    if change.reverted_by is not None:
        raise Refused(f"change {change_id} was already reverted")
    if change.field == "status":
        raise Refused("status changes are undone by moving the ticket, not reverting")
    ticket = get(session, change.ticket_id)
    if getattr(ticket, change.field) != change.new:
        raise Refused(f"{change.field} changed again since; change it directly")
    undo = set_field(session, ticket, change.field, change.old, actor, at)
    change.reverted_by = undo.id if undo else None
    return undo


def comment(
    session: Session, ticket: Ticket, author: Actor, body: str, at: datetime, public: bool = True
) -> TicketComment:
    body = body.strip()
    if not body:
        raise Invalid("a comment needs text", "body")
    note = TicketComment(
        ticket_id=ticket.id, author=author.name, body=body[:20000], public=public, at=at
    )
    session.add(note)
    ticket.updated_at = at
    session.flush()
    append(
        session,
        actor=author,
        action="ticket.commented",
        subject=f"ticket:{ticket.id}",
        at=at,
        decision="public" if public else "internal",
    )
    return note


def history(session: Session, ticket_id: int) -> list[TicketChange]:
    return list(
        session.scalars(
            select(TicketChange)
            .where(TicketChange.ticket_id == ticket_id)
            .order_by(TicketChange.id)
        )
    )


def comments(session: Session, ticket_id: int) -> list[TicketComment]:
    return list(
        session.scalars(
            select(TicketComment)
            .where(TicketComment.ticket_id == ticket_id)
            .order_by(TicketComment.id)
        )
    )


def change_dict(c: TicketChange) -> dict[str, Any]:
    return {
        "id": c.id,
        "field": c.field,
        "old": c.old,
        "new": c.new,
        "by": {"name": c.actor, "kind": c.actor_kind, "version": c.version},
        "confidence": c.confidence,
        "at": c.at,
        "reverted_by": c.reverted_by,
    }


def comment_dict(c: TicketComment) -> dict[str, Any]:
    return {"id": c.id, "author": c.author, "body": c.body, "public": c.public, "at": c.at}
