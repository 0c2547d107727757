"""Delivering the outbox: claim what is due, send it outside any transaction, settle it.

A claim moves the message's `due_at` forward by a lease with a conditional update, so two
deliverers (the scheduler's tick and a task thread, or two replicas) never send the same
message at once, and a deliverer that dies after sending but before settling only causes
a repeat after the lease, with the same idempotency key. A failed attempt is retried with
growing back-off; after MAX_ATTEMPTS the message is kept as `failed` and audited, never
dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from baton.kernel.audit import append
from baton.runtime.notify import NOTIFIER, ChannelError, Message, send
from baton.runtime.settings import Settings
from baton.store.db import Database
from baton.store.models import OutboxMessage

LEASE_S = 60.0  # a claimed message not settled by then is tried again
BACKOFF_S = (5.0, 30.0, 120.0, 600.0, 1800.0)  # after the 1st, 2nd... failed attempt
MAX_ATTEMPTS = 10
BATCH = 50

Sender = Callable[[Settings, str, Message, str], tuple[bool, str]]


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    kind: str
    channel: str
    attempt: int
    message: Message


def backoff(attempt: int) -> float:
    """Seconds before the next try after `attempt` failed ones."""
    return BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1]


def claim(db: Database, now: datetime, limit: int = BATCH) -> list[Claimed]:
    """Take up to `limit` due messages for one lease; each is taken by one deliverer."""
    out: list[Claimed] = []
    with db.session() as s:
        due = s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.due_at <= now)
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
            .limit(limit)
        ).all()
        for m in due:
            taken = s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == m.id, OutboxMessage.due_at == m.due_at)
                .values(
                    due_at=now + timedelta(seconds=LEASE_S), attempts=OutboxMessage.attempts + 1
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            if taken:
                message = Message(m.subject, m.title, m.text, dict(m.data))
                out.append(Claimed(m.id, m.key, m.kind, m.channel, m.attempts + 1, message))
    return out


def attempt(settings: Settings, item: Claimed, sender: Sender) -> tuple[bool, str]:
    try:
        return sender(settings, item.channel, item.message, item.key)
    except (ChannelError, KeyError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a message that cannot be sent is a failed attempt
        return False, f"could not send: {type(exc).__name__}"


def settle(db: Database, item: Claimed, ok: bool, detail: str, now: datetime) -> str:
    """Record one attempt's outcome: delivered, retry later, or given up; audited."""
    if ok:
        values: dict[str, object] = {"status": "delivered", "delivered_at": now}
        status = "delivered"
    elif item.attempt >= MAX_ATTEMPTS:
        values, status = {"status": "failed", "last_error": detail[:300]}, "failed"
    else:
        retry_at = now + timedelta(seconds=backoff(item.attempt))
        values, status = {"due_at": retry_at, "last_error": detail[:300]}, "retry"
    with db.session() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.id == item.id).values(**values))
        append(
            s,
            actor=NOTIFIER,
            action=f"{item.kind}.delivery",
            subject=item.message.subject,
            at=now,
            inputs={"channel": item.channel, "key": item.key, "attempt": item.attempt},
            decision="delivered" if ok else ("failed" if status == "failed" else "retry"),
            rationale=detail,
        )
    return status


def deliver_due(
    db: Database, settings: Settings, now: Callable[[], datetime], sender: Sender = send
) -> int:
    """Deliver what is due, batch by batch; returns how many messages arrived."""
    arrived = 0
    while batch := claim(db, now()):
        for item in batch:
            ok, detail = attempt(settings, item, sender)
            arrived += settle(db, item, ok, detail, now()) == "delivered"
        if len(batch) < BATCH:
            break
    return arrived


def backlog(db: Database) -> int:
    """Messages not yet delivered (nor given up): what a crash would have lost otherwise."""
    with db.session() as s:
        return s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        )
