"""Commands on executions inside the caller's transaction: queue one (once per key),
veto, cancel, claim a rollback, record an ending, and find the executions due to run
or left behind by a worker that died."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, select, true, update
from sqlalchemy.orm import Session

from baton.act import limits
from baton.act.heartbeat import stale
from baton.act.locks import execution_then_chain
from baton.act.runbook import Runbook
from baton.act.versions import get_version
from baton.kernel.audit import Actor, append, serialize
from baton.kernel.enums import ExecutionStatus, StepStatus
from baton.kernel.errors import NotFound, Refused
from baton.store.db import Database
from baton.store.models import Execution, ExecutionStep

EXECUTOR = Actor("baton.act", "system", "executor/1")

_RUNS = Execution.__table__
_BY_KEY = select(_RUNS.c.id).where(_RUNS.c.idempotency_key == bindparam("key"))


def idempotency_key(
    incident_id: int | None, decision_id: int | None, runbook: Runbook, params: dict[str, Any]
) -> str:
    """One decision about one incident, runbook and params never starts two executions;
    a new decision (a retry a human asked for) may."""
    body = {
        "incident": incident_id,
        "decision": decision_id,
        "runbook": runbook.id,
        "params": params,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def create_execution(
    session: Session,
    *,
    runbook: Runbook,
    params: dict[str, Any],
    incident_id: int | None,
    decision_id: int | None,
    at: datetime,
    requested_by: Actor,
    not_before: datetime | None = None,
    global_per_hour: int | None = None,
) -> tuple[Execution, bool]:
    """Queue an execution; return (execution, created). A repeat returns the original.

    `not_before` holds it for a veto window: it is not started before that time.
    """
    key = idempotency_key(incident_id, decision_id, runbook, params)
    serialize(session)  # the key, the limits and the insert under one lock: no race
    existing = session.execute(_BY_KEY, {"key": key}).scalar()
    if existing is not None:
        return session.get(Execution, existing), False
    try:
        limits.check(session, runbook, params, at, global_per_hour)
    except limits.LimitReached as exc:
        append(
            session,
            actor=requested_by,
            action="execution.limited",
            subject=f"runbook:{runbook.id}",
            at=at,
            inputs={"params": params, "incident": incident_id},
            decision="refused",
            rationale=str(exc),
        )
        raise
    execution = Execution(
        decision_id=decision_id,
        incident_id=incident_id,
        runbook_id=runbook.id,
        runbook_version=runbook.version,
        params=params,
        idempotency_key=key,
        status="queued",
        created_at=at,
        not_before=not_before,
    )
    session.add(execution)
    session.flush()
    append(
        session,
        actor=requested_by,
        action="execution.queued",
        subject=f"execution:{execution.id}",
        at=at,
        inputs={
            "runbook": runbook.id,
            "version": runbook.version,
            "params": params,
            "incident": incident_id,
            "decision": decision_id,
        },
        decision="queued",
        rationale=f"runbook {runbook.id} queued for incident {incident_id}"
        + (f"; runs at {not_before.isoformat()} unless vetoed" if not_before else ""),
    )
    return execution, True


def due(session: Session, at: datetime) -> list[int]:
    """Queued executions whose veto window has passed (or that have none)."""
    rows = session.scalars(
        select(Execution.id).where(
            Execution.status == ExecutionStatus.QUEUED,
            Execution.not_before.is_(None) | (Execution.not_before <= at),
        )
    )
    return list(rows)


def _locked(session: Session, execution_id: int) -> Execution:
    """The execution, its row and the audit chain locked for a person's command."""
    execution = execution_then_chain(session, execution_id)
    if execution is None:
        raise LookupError(f"no execution {execution_id}")
    return execution


def veto(session: Session, execution_id: int, at: datetime) -> Execution:
    """Stop a queued execution before it starts; Refused if it already started."""
    execution = _locked(session, execution_id)
    if execution.status != ExecutionStatus.QUEUED:
        raise Refused(
            f"execution {execution_id} is {execution.status}; only a queued execution can be "
            "vetoed (cancel a running one, roll back a finished one)"
        )
    finish(session, execution, "vetoed", "vetoed by a human before it started", at)
    return execution


def request_cancel(session: Session, execution_id: int) -> Execution:
    """Ask a running execution to stop at its next step boundary."""
    execution = _locked(session, execution_id)
    if execution.status not in ("running", "verifying"):
        raise Refused(
            f"execution {execution_id} is {execution.status}; only a running one can be cancelled"
        )
    execution.cancel_requested = True
    return execution


def claim_rollback(session: Session, execution_id: int, at: datetime) -> Execution:
    """Mark a succeeded execution `rolling_back` (only one request can win); Refused
    if it cannot be undone."""
    execution = _locked(session, execution_id)
    if execution.status != ExecutionStatus.SUCCEEDED:
        raise Refused(
            f"execution {execution_id} is {execution.status}; only a succeeded one can be "
            "rolled back"
        )
    runbook = get_version(session, execution.runbook_id, execution.runbook_version)
    if runbook is None or not runbook.reversible or not runbook.doc.get("rollback"):
        raise Refused(f"runbook {execution.runbook_id} is not reversible")
    execution.status = ExecutionStatus.ROLLING_BACK
    execution.worker, execution.heartbeat_at = None, at  # no worker has it yet
    return execution


def finish(
    s: Session,
    execution: Execution,
    status: str,
    summary: str,
    at: datetime,
    verified: bool | None = None,
) -> None:
    """Record how an execution ended, on its row and in the audit chain."""
    execution.status, execution.summary, execution.finished_at = status, summary, at
    if verified is not None:
        execution.verified = verified
    execution_then_chain(s, execution)
    audit_ending(s, execution, status, summary, at)


def audit_ending(s: Session, run: Any, status: str, summary: str, at: datetime) -> None:
    """The audit record of an ending; `run` is an Execution or the row a write returned."""
    append(
        s,
        actor=EXECUTOR,
        action=f"execution.{status}",
        subject=f"execution:{run.id}",
        at=at,
        inputs={"runbook": run.runbook_id, "version": run.runbook_version},
        decision=status,
        rationale=summary,
        outcome=status,
    )


def escalate(s: Session, execution_id: int, at: datetime, why: str) -> None:
    """Record that an execution needs a person."""
    append(
        s,
        actor=EXECUTOR,
        action="execution.escalated",
        subject=f"execution:{execution_id}",
        at=at,
        decision="escalate",
        rationale=why,
    )


def claimed_undo() -> Any:
    """A person's rollback that a worker has taken (one still queued has no worker)."""
    return (Execution.status == ExecutionStatus.ROLLING_BACK) & Execution.worker.is_not(None)


def _busy(session: Session, where: Any = None) -> list[int]:
    """Executions being run or undone (a person's rollback, or a failed run's own), as
    two indexed lookups: by status, and by a rollback step stored `running`."""
    where = true() if where is None else where
    by_status = select(Execution.id).where(
        (Execution.status == ExecutionStatus.RUNNING) | claimed_undo(), where
    )
    by_step = (
        select(Execution.id)
        .join(ExecutionStep, ExecutionStep.execution_id == Execution.id)
        .where(ExecutionStep.status == StepStatus.RUNNING, ExecutionStep.phase == "rollback", where)
    )
    return sorted(set(session.scalars(by_status)) | set(session.scalars(by_step)))


def orphaned(session: Session, at: datetime, lease_s: float) -> list[int]:
    """Executions whose worker stopped beating for longer than the lease while running
    their steps or undoing them."""
    return _busy(session, stale(at, lease_s))


def forget_workers(db: Database) -> list[int]:
    """After a restart of the only process that runs executions: every execution it was
    running or undoing lost its worker, whatever its last beat says. Returns them, to be
    taken over."""
    with db.session() as s:
        ids = _busy(s)
        if ids:
            s.execute(update(Execution).where(Execution.id.in_(ids)).values(heartbeat_at=None))
        return ids


def undos_waiting(db: Database) -> list[int]:
    """A person's rollbacks that no worker has taken yet."""
    with db.session() as s:
        waiting = (Execution.status == ExecutionStatus.ROLLING_BACK) & Execution.worker.is_(None)
        return list(s.scalars(select(Execution.id).where(waiting)))


def recent(session: Session, status: str | None, limit: int) -> list[Execution]:
    query = select(Execution).order_by(Execution.id.desc()).limit(limit)
    if status:
        query = query.where(Execution.status == status)
    return list(session.scalars(query))


def get(session: Session, execution_id: int) -> Execution:
    execution = session.get(Execution, execution_id)
    if execution is None:
        raise NotFound(f"no execution {execution_id}")
    return execution


def to_dict(execution: Execution, with_steps: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": execution.id,
        "runbook_id": execution.runbook_id,
        "runbook_version": execution.runbook_version,
        "incident_id": execution.incident_id,
        "decision_id": execution.decision_id,
        "params": execution.params,
        "status": execution.status,
        "verified": execution.verified,
        "created_at": execution.created_at,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "not_before": execution.not_before,
        "cancel_requested": execution.cancel_requested,
        "summary": execution.summary,
    }
    if with_steps:
        data["steps"] = [
            {
                "seq": st.seq,
                "phase": st.phase,
                "name": st.name,
                "action": st.action,
                "status": st.status,
                "rendered": st.rendered,
                "output": st.output,
                "started_at": st.started_at,
                "finished_at": st.finished_at,
            }
            for st in execution.steps
        ]
    return data
