"""Circuit breakers: a runbook that keeps failing stops being trusted until a person says so.

A breaker opens after `limits.breaker_after` consecutive failed runs of a runbook
(default 3). While open, every proposal for that runbook is decided `observe` and its
approvals are refused; only a lead or admin closes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from baton.act.versions import get_version
from baton.kernel.audit import Actor, append
from baton.kernel.enums import BAD_ENDING, ExecutionStatus
from baton.kernel.errors import Refused
from baton.store.models import Execution, Meta

PREFIX = "breaker:"
COUNTED = (*BAD_ENDING, ExecutionStatus.SUCCEEDED)
DEFAULT_THRESHOLD = 3
_META = Meta.__table__
_OPEN = select(_META.c.key).where(_META.c.key == bindparam("key"))  # asked per decision
BREAKER = Actor("baton.govern.breaker", "system", "consecutive-failures/1")


def consecutive_failures(session: Session, runbook_id: str) -> int:
    """Failed runs since the runbook's last success (vetoed/cancelled runs do not count)."""
    rows = session.scalars(
        select(Execution.status)
        .where(Execution.runbook_id == runbook_id, Execution.status.in_(COUNTED))
        .order_by(Execution.finished_at.desc(), Execution.id.desc())
        .limit(50)
    )
    count = 0
    for status in rows:
        if status not in BAD_ENDING:
            break
        count += 1
    return count


def state(session: Session, runbook_id: str) -> dict[str, Any] | None:
    row = session.get(Meta, PREFIX + runbook_id)
    return orjson.loads(row.value) if row else None


def is_open(session: Session, runbook_id: str) -> bool:
    session.flush()  # Core reads do not autoflush
    return session.execute(_OPEN, {"key": PREFIX + runbook_id}).first() is not None


def record_outcome(session: Session, runbook_id: str, threshold: int | None, at: datetime) -> bool:
    """Open the breaker if this outcome made the failure streak long enough; True if so."""
    limit = threshold or DEFAULT_THRESHOLD
    failures = consecutive_failures(session, runbook_id)
    if failures < limit or is_open(session, runbook_id):
        return False
    detail = {"opened_at": at.isoformat(), "failures": failures}
    session.add(Meta(key=PREFIX + runbook_id, value=orjson.dumps(detail).decode()))
    append(
        session,
        actor=BREAKER,
        action="breaker.opened",
        subject=f"runbook:{runbook_id}",
        at=at,
        inputs=detail,
        decision="open",
        rationale=f"{failures} consecutive failed runs (limit {limit}); blocked until a "
        "lead closes it",
    )
    return True


class Ending(Protocol):
    """What the breaker needs of a finished execution."""

    runbook_id: str
    runbook_version: str
    status: str


def count_ending(session: Session, execution: Ending, at: datetime) -> bool:
    """Count a finished execution against its runbook's breaker (`limits.breaker_after`);
    True if this ending opened it. A success ends any streak and costs no query."""
    if execution.status not in BAD_ENDING:
        return False
    runbook = get_version(session, execution.runbook_id, execution.runbook_version)
    limit = (runbook.doc.get("limits") or {}).get("breaker_after") if runbook else None
    return record_outcome(session, execution.runbook_id, limit, at)


def close(session: Session, runbook_id: str, actor: Actor, reason: str, at: datetime) -> None:
    row = session.get(Meta, PREFIX + runbook_id)
    if row is None:
        raise Refused(f"the breaker of {runbook_id} is not open")
    session.delete(row)
    append(
        session,
        actor=actor,
        action="breaker.closed",
        subject=f"runbook:{runbook_id}",
        at=at,
        decision="closed",
        rationale=reason,
    )
