"""Outcome and behaviour KPIs, computed from the system of record on demand."""

from __future__ import annotations

from datetime import datetime
from statistics import median
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from baton.govern.audit import Actor, append
from baton.store.models import (
    Approval,
    Decision,
    Escalation,
    Execution,
    Incident,
    Override,
    Ticket,
)

LEARNER = Actor("baton.learn", "ai", "trust-ledger/1")
_RUNS = Execution.__table__
_BY_STATUS = (  # Core and built once: every finished execution asks
    select(_RUNS.c.status, func.count())
    .where(_RUNS.c.runbook_id == bindparam("runbook"))
    .group_by(_RUNS.c.status)
)


def trust(session: Session, runbook_id: str) -> dict[str, Any]:
    """A runbook's track record: finished runs, verified successes, success rate."""
    session.flush()  # Core reads do not autoflush; the run just finished counts
    rows = session.execute(_BY_STATUS, {"runbook": runbook_id}).all()
    counts = {status: n for status, n in rows}
    finished = sum(n for s, n in counts.items() if s in ("succeeded", "failed", "rolled_back"))
    success = counts.get("succeeded", 0)
    return {
        "runbook_id": runbook_id,
        "runs": finished,
        "succeeded": success,
        "success_rate": round(success / finished, 3) if finished else None,
    }


class FinishedRun(Protocol):
    """What learning reads of a finished execution (an Execution row satisfies it)."""

    id: int
    runbook_id: str
    status: str
    verified: bool | None


def record_outcome(session: Session, execution: FinishedRun, at: datetime) -> dict[str, Any]:
    """Feed a finished execution back into its runbook's track record (audited)."""
    record = trust(session, execution.runbook_id)
    append(
        session,
        actor=LEARNER,
        action="learn.outcome",
        subject=f"runbook:{execution.runbook_id}",
        at=at,
        inputs={
            "execution": execution.id,
            "status": execution.status,
            "verified": execution.verified,
        },
        decision=f"success_rate={record['success_rate']}",
        rationale=f"{record['succeeded']} of {record['runs']} finished runs succeeded",
        outcome=execution.status,
    )
    return record


def _count(session: Session, stmt: Any) -> int:
    return int(session.scalar(stmt) or 0)


def kpis(session: Session) -> dict[str, Any]:
    """The dashboard numbers: outcomes and how humans and AI behaved."""
    by_status = dict(
        session.execute(select(Execution.status, func.count()).group_by(Execution.status))
        .tuples()
        .all()
    )
    by_tier = dict(
        session.execute(select(Decision.tier, func.count()).group_by(Decision.tier)).tuples().all()
    )
    approvals = dict(
        session.execute(select(Approval.status, func.count()).group_by(Approval.status))
        .tuples()
        .all()
    )
    resolved = session.execute(
        select(Incident.opened_at, Incident.resolved_at).where(Incident.resolved_at.is_not(None))
    ).all()
    ttr = [(r.resolved_at - r.opened_at).total_seconds() for r in resolved]
    finished = sum(by_status.get(s, 0) for s in ("succeeded", "failed", "rolled_back"))
    return {
        "incidents_open": _count(
            session,
            select(func.count())
            .select_from(Incident)
            .where(Incident.status.in_(("open", "acknowledged"))),
        ),
        "incidents_resolved": len(resolved),
        "mttr_s": round(median(ttr), 1) if ttr else None,
        "decisions_by_tier": by_tier,
        "executions_by_status": by_status,
        "automation_success_rate": round(by_status.get("succeeded", 0) / finished, 3)
        if finished
        else None,
        "verified_fixes": _count(
            session, select(func.count()).select_from(Execution).where(Execution.verified.is_(True))
        ),
        "approvals": approvals,
        "escalations": dict(
            session.execute(select(Escalation.status, func.count()).group_by(Escalation.status))
            .tuples()
            .all()
        ),
        "overrides": dict(
            session.execute(select(Override.kind, func.count()).group_by(Override.kind))
            .tuples()
            .all()
        ),
        "overrides_by_category": dict(
            session.execute(select(Override.category, func.count()).group_by(Override.category))
            .tuples()
            .all()
        ),
        "ai_actions_accepted": _count(
            session,
            select(func.count())
            .select_from(Execution)
            .where(
                Execution.id.not_in(select(Override.execution_id)),
                Execution.status.not_in(("queued", "vetoed")),
            ),
        ),
        "ai_actions_overridden": _count(
            session, select(func.count(func.distinct(Override.execution_id)))
        ),
        "tickets": _count(session, select(func.count()).select_from(Ticket)),
        "tickets_linked_to_incidents": _count(
            session, select(func.count()).select_from(Ticket).where(Ticket.incident_id.is_not(None))
        ),
    }
