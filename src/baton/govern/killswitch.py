"""The kill switch: pause all automation, one runbook or one service, at once.

State lives in the `meta` table so every process and replica sees the same switch.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from baton.kernel.audit import Actor, append
from baton.kernel.errors import Invalid
from baton.store.models import Meta

PREFIX = "pause:"
_META = Meta.__table__
# Core and built once: every step boundary of every execution asks.
_PAUSES = select(_META.c.key).where(_META.c.key.like(f"{PREFIX}%")).order_by(_META.c.key)


def _key(scope: str, target: str | None) -> str:
    if scope == "all":
        return f"{PREFIX}all"
    if scope not in ("runbook", "service") or not target:
        raise Invalid("must be 'all', or 'runbook'/'service' with a target", "scope")
    return f"{PREFIX}{scope}:{target}"


def pause(
    session: Session, scope: str, target: str | None, actor: Actor, reason: str, at: datetime
) -> str:
    key = _key(scope, target)
    row = session.get(Meta, key)
    if row is None:
        session.add(Meta(key=key, value=f"{actor.name}: {reason or 'paused'}"))
    append(
        session,
        actor=actor,
        action="automation.paused",
        subject=key.removeprefix(PREFIX),
        at=at,
        decision="paused",
        rationale=reason,
    )
    return key


def resume(
    session: Session, scope: str, target: str | None, actor: Actor, reason: str, at: datetime
) -> bool:
    key = _key(scope, target)
    found = session.execute(delete(Meta).where(Meta.key == key)).rowcount > 0
    append(
        session,
        actor=actor,
        action="automation.resumed",
        subject=key.removeprefix(PREFIX),
        at=at,
        decision="resumed" if found else "was not paused",
        rationale=reason,
    )
    return found


def active(session: Session) -> list[str]:
    session.flush()  # Core reads do not autoflush; a pause set in this session counts
    return [k.removeprefix(PREFIX) for k in session.execute(_PAUSES).scalars()]


def details(session: Session) -> list[dict[str, str]]:
    """Active pauses with the reason given when each was set."""
    rows = session.scalars(select(Meta).where(Meta.key.like(f"{PREFIX}%")).order_by(Meta.key))
    return [{"scope": m.key.removeprefix(PREFIX), "reason": m.value} for m in rows]


def paused_scope(session: Session, runbook_id: str | None, service: str | None) -> str | None:
    """The pause that applies to this runbook/service, if any (all wins)."""
    scopes = set(active(session))
    for scope in ("all", f"runbook:{runbook_id}", f"service:{service}"):
        if scope in scopes:
            return scope
    return None
