"""Writing outbound messages to the outbox, inside the caller's transaction.

A message handed to a queue after commit is lost if the process dies in between; one
written in the same transaction as the change that causes it (an escalation reaching a
level) exists exactly when the change does. Delivery happens later (runtime/outbox.py),
at least once, so every message carries a key the receiver can drop repeats by.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.store.models import OutboxMessage


def enqueue(
    session: Session,
    *,
    key: str,
    kind: str,
    channel: str,
    subject: str,
    title: str,
    text: str,
    data: dict[str, Any],
    at: datetime,
) -> bool:
    """Add one message unless one with the same key is already there; True if added."""
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) is not None:
        return False
    session.add(
        OutboxMessage(
            key=key[:200],
            kind=kind,
            channel=channel[:200],
            subject=subject[:200],
            title=title[:200],
            text=text,
            data={**data, "idempotency_key": key},
            created_at=at,
            due_at=at,
            attempts=0,
            status="pending",
        )
    )
    return True
