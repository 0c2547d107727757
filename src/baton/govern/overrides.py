"""Overrides: a human overruling an automation, always with a reason category.

They are the raw material of the behaviour KPIs (accepted vs overridden, and why).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.audit import Actor, append
from baton.kernel.errors import Refused
from baton.store.models import Override

KINDS = ("veto", "cancel", "rollback")
CATEGORIES = ("wrong_diagnosis", "wrong_fix", "bad_timing", "risk_too_high", "other")


class OverrideError(Refused):
    """An override that is not allowed; the message says why."""


def validate(kind: str, category: str, reason: str) -> None:
    if kind not in KINDS:
        raise OverrideError(f"unknown override {kind!r}; valid: {', '.join(KINDS)}")
    if category not in CATEGORIES:
        raise OverrideError(f"unknown category {category!r}; valid: {', '.join(CATEGORIES)}")
    if not reason.strip():
        raise OverrideError("an override needs a reason")


def record(
    session: Session,
    *,
    execution_id: int,
    kind: str,
    category: str,
    reason: str,
    actor: Actor,
    at: datetime,
) -> Override:
    """Keep the override and audit it (the caller has already applied it)."""
    validate(kind, category, reason)
    if actor.kind != "human":
        raise OverrideError("only a person can override an automation")
    row = Override(
        execution_id=execution_id,
        kind=kind,
        category=category,
        reason=reason,
        actor=actor.name,
        created_at=at,
    )
    session.add(row)
    session.flush()
    append(
        session,
        actor=actor,
        action=f"override.{kind}",
        subject=f"execution:{execution_id}",
        at=at,
        inputs={"category": category},
        decision=kind,
        rationale=reason,
    )
    return row


def recent(session: Session) -> list[Override]:
    return list(session.scalars(select(Override).order_by(Override.id.desc())))


def to_dict(o: Override) -> dict[str, Any]:
    return {
        "id": o.id,
        "execution_id": o.execution_id,
        "kind": o.kind,
        "category": o.category,
        "reason": o.reason,
        "actor": o.actor,
        "created_at": o.created_at,
    }
