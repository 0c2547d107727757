"""Outcome and behaviour KPIs, computed from the system of record on demand."""

from __future__ import annotations

from datetime import datetime
from statistics import median
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from baton.kernel.audit import Actor, append, serialize
from baton.kernel.enums import LIVE_INCIDENT, TRACKED_ENDING, ExecutionStatus
from baton.store.db import lock_row
from baton.store.models import (
    Approval,
    Decision,
    Escalation,
    Execution,
    Incident,
    Override,
    Ticket,
    TrackRecord,
)

LEARNER = Actor("baton.learn", "ai", "track-record/1")
# Core and built once: every finished execution updates them.
_TRACK = TrackRecord.__table__
_READ = select(_TRACK.c.runs, _TRACK.c.succeeded).where(_TRACK.c.runbook_id == bindparam("runbook"))
_ADD = (
    _TRACK.update()
    .where(_TRACK.c.runbook_id == bindparam("runbook"))
    .values(runs=_TRACK.c.runs + bindparam("runs"), succeeded=_TRACK.c.succeeded + bindparam("ok"))
    .returning(_TRACK.c.runs, _TRACK.c.succeeded)
)
_RUNS = Execution.__table__
_LEARNED = _RUNS.update().where(_RUNS.c.id == bindparam("run")).values(learned_as=bindparam("as"))


def _record(runbook_id: str, runs: int, succeeded: int) -> dict[str, Any]:
    return {
        "runbook_id": runbook_id,
        "runs": runs,
        "succeeded": succeeded,
        "success_rate": round(succeeded / runs, 3) if runs else None,
    }


def track_record(session: Session, runbook_id: str) -> dict[str, Any]:
    """A runbook's track record: finished runs learned from, successes, success rate."""
    row = session.execute(_READ, {"runbook": runbook_id}).first()
    return _record(runbook_id, *(row or (0, 0)))


class FinishedRun(Protocol):
    """What learning reads of a finished execution (an Execution row satisfies it; one
    never learned before may leave out `learned_as`)."""

    id: int
    runbook_id: str
    status: str
    verified: bool | None


def record_outcome(session: Session, execution: FinishedRun, at: datetime) -> dict[str, Any]:
    """Feed a finished execution back into its runbook's track record (audited). An
    execution learned before (a success a person rolled back, say) moves its count from
    its earlier ending to this one, so each execution counts once, as it ended last."""
    if isinstance(execution, Execution):  # its row first (then the chain's lock), and
        lock_row(session, Execution, execution.id)  # `learned_as` read under that lock
    before, now = getattr(execution, "learned_as", None), execution.status
    runs = (now in TRACKED_ENDING) - (before in TRACKED_ENDING)
    ok = (now == "succeeded") - (before == "succeeded")
    serialize(session)  # the chain's lock orders concurrent updates of the counts too
    values = {"runbook": execution.runbook_id, "runs": runs, "ok": ok}
    counts = session.execute(_ADD, values).first()
    if counts is None:  # the runbook's first outcome
        counts = (max(runs, 0), max(ok, 0))
        session.execute(
            _TRACK.insert(),
            {"runbook_id": execution.runbook_id, "runs": counts[0], "succeeded": counts[1]},
        )
    session.execute(_LEARNED, {"run": execution.id, "as": now})
    if isinstance(execution, Execution):  # keep the loaded row in step, without a write
        set_committed_value(execution, "learned_as", now)
    record = _record(execution.runbook_id, *counts)
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
            select(func.count()).select_from(Incident).where(Incident.status.in_(LIVE_INCIDENT)),
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
                Execution.status.not_in((ExecutionStatus.QUEUED, ExecutionStatus.VETOED)),
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
