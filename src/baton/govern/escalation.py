"""Escalation: something a human must look at climbs the service's levels until someone
acknowledges it. Levels name people or `oncall` (whoever holds the rotation right now).

The domain decides who and when; delivering the messages (webhooks, chat) is the
runtime's job, so no transaction ever waits on a network call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.govern.oncall import DEFAULT_ACK_TIMEOUT_S, escalation_policy_for, who_is_on_call
from baton.kernel.audit import Actor, append
from baton.kernel.enums import LIVE_ESCALATION, EscalationStatus, IncidentStatus
from baton.kernel.errors import Refused
from baton.kernel.outbox import enqueue
from baton.store.models import Escalation, Incident

ESCALATOR = Actor("baton.govern.escalation", "system", "levels/1")


@dataclass(frozen=True)
class Notice:
    """A message to deliver on one channel."""

    escalation_id: int
    channel: str
    text: str


def _targets(session: Session, names: list[str], service: str | None, at: datetime) -> list[str]:
    out = []
    for name in names:
        if name == "oncall":
            holder = who_is_on_call(session, service or "", at).user
            out.append(holder or "nobody on call")
        else:
            out.append(name)
    return out


def _notify_level(session: Session, esc: Escalation, at: datetime) -> list[Notice]:
    """Record who level `esc.level` reaches and return the messages to send."""
    policy = escalation_policy_for(session, esc.service)
    if policy is None or not policy.levels:
        targets, channels, delay = _targets(session, ["oncall"], esc.service, at), [], None
    else:
        level = policy.levels[min(esc.level, len(policy.levels) - 1)]
        targets = _targets(session, level["targets"], esc.service, at)
        channels = list(level.get("channels", []))
        more = esc.level + 1 < len(policy.levels)
        delay = level.get("delay_s", DEFAULT_ACK_TIMEOUT_S) if more else None
    esc.next_at = at + timedelta(seconds=delay) if delay is not None else None
    esc.notified = [
        *esc.notified,
        {"level": esc.level + 1, "targets": targets, "channels": channels, "at": at.isoformat()},
    ]
    text = (
        f"[Baton] level {esc.level + 1} escalation #{esc.id} for {', '.join(targets)}: "
        f"{esc.reason} ({esc.subject}, service {esc.service or 'unknown'})"
    )
    append(
        session,
        actor=ESCALATOR,
        action="escalation.notified",
        subject=f"escalation:{esc.id}",
        at=at,
        inputs={"level": esc.level + 1, "targets": targets, "channels": channels},
        decision=f"level {esc.level + 1}",
        rationale=esc.reason,
    )
    session.flush()  # the escalation's id names its messages
    for channel in channels:  # durable before the change commits: a crash loses none
        enqueue(
            session,
            key=f"escalation:{esc.id}:level:{esc.level + 1}:{channel}",
            kind="escalation",
            channel=channel,
            subject=f"escalation:{esc.id}",
            title=text[:200],
            text=text,
            data={"escalation": esc.id, "text": text},
            at=at,
        )
    return [Notice(esc.id, channel, text) for channel in channels]


def open_escalation(
    session: Session,
    *,
    subject: str,
    service: str | None,
    reason: str,
    at: datetime,
) -> tuple[Escalation, list[Notice]]:
    """Escalate `subject` once: while an escalation about it is open or acknowledged
    (someone has it), no new one starts."""
    existing = session.scalar(
        select(Escalation).where(
            Escalation.subject == subject,
            Escalation.status.in_(LIVE_ESCALATION),
        )
    )
    if existing is not None:
        return existing, []
    esc = Escalation(
        subject=subject,
        service=service,
        reason=reason,
        level=0,
        status=EscalationStatus.OPEN,
        notified=[],
        created_at=at,
    )
    session.add(esc)
    session.flush()
    append(
        session,
        actor=ESCALATOR,
        action="escalation.opened",
        subject=f"escalation:{esc.id}",
        at=at,
        inputs={"about": subject, "service": service},
        decision="open",
        rationale=reason,
    )
    return esc, _notify_level(session, esc, at)


@dataclass
class Raised:
    """What escalating something produced: the messages to deliver, and whether it is
    news (a new escalation, or one that notified someone) people watching should see."""

    escalation: Escalation
    notices: list[Notice]
    news: bool

    def note(self) -> dict[str, Any]:
        esc = self.escalation
        return {
            "escalation": esc.id,
            "subject": esc.subject,
            "reason": esc.reason,
            "notified": esc.notified[-1:],
        }


def escalate(
    session: Session, subject: str, service: str | None, reason: str, at: datetime
) -> Raised:
    """Escalate `subject` (once while open); see `open_escalation`."""
    esc, notices = open_escalation(session, subject=subject, service=service, reason=reason, at=at)
    return Raised(esc, notices, bool(notices) or esc.created_at == at)


def unacknowledged(session: Session, at: datetime) -> list[Raised]:
    """Escalate every open incident nobody acknowledged within its service's timeout."""
    raised = []
    for inc in session.scalars(select(Incident).where(Incident.status == IncidentStatus.OPEN)):
        policy = escalation_policy_for(session, inc.origin_service)
        timeout = timedelta(seconds=policy.ack_timeout_s if policy else DEFAULT_ACK_TIMEOUT_S)
        if inc.opened_at + timeout <= at:
            minutes = int(timeout.total_seconds() // 60)
            raised.append(
                escalate(
                    session,
                    f"incident:{inc.id}",
                    inc.origin_service,
                    f"incident #{inc.id} unacknowledged for {minutes} min",
                    at,
                )
            )
    return raised


def advance(session: Session, at: datetime) -> list[Notice]:
    """Move unacknowledged escalations whose level timed out to the next level."""
    notices: list[Notice] = []
    due = session.scalars(
        select(Escalation).where(
            Escalation.status == EscalationStatus.OPEN,
            Escalation.next_at.is_not(None),
            Escalation.next_at <= at,
        )
    )
    for esc in due:
        esc.level += 1
        notices += _notify_level(session, esc, at)
    return notices


def acknowledge(session: Session, escalation_id: int, actor: Actor, at: datetime) -> Escalation:
    esc = session.get(Escalation, escalation_id)
    if esc is None:
        raise LookupError(f"no escalation {escalation_id}")
    if esc.status != EscalationStatus.OPEN:
        raise Refused(f"escalation {escalation_id} is already {esc.status}")
    esc.status, esc.acknowledged_by, esc.acknowledged_at, esc.next_at = (
        "acknowledged",
        actor.name,
        at,
        None,
    )
    append(
        session,
        actor=actor,
        action="escalation.acknowledged",
        subject=f"escalation:{esc.id}",
        at=at,
        decision="acknowledged",
    )
    return esc


def close_for(session: Session, subject: str, why: str, at: datetime) -> int:
    """Close open escalations about `subject` (it was acknowledged or resolved)."""
    rows = session.scalars(
        select(Escalation).where(
            Escalation.subject == subject, Escalation.status == EscalationStatus.OPEN
        )
    ).all()
    for esc in rows:
        esc.status, esc.next_at = EscalationStatus.CLOSED, None
        append(
            session,
            actor=ESCALATOR,
            action="escalation.closed",
            subject=f"escalation:{esc.id}",
            at=at,
            decision="closed",
            rationale=why,
        )
    return len(rows)


def recent(session: Session, status: str | None) -> list[Escalation]:
    query = select(Escalation).order_by(Escalation.id.desc())
    if status:
        query = query.where(Escalation.status == status)
    return list(session.scalars(query))


def to_dict(e: Escalation) -> dict[str, Any]:
    return {
        "id": e.id,
        "subject": e.subject,
        "service": e.service,
        "reason": e.reason,
        "level": e.level + 1,
        "status": e.status,
        "notified": e.notified,
        "created_at": e.created_at,
        "next_at": e.next_at,
        "acknowledged_by": e.acknowledged_by,
        "acknowledged_at": e.acknowledged_at,
    }
