"""Undoing an execution: a person's rollback, a failed run's own undo, and what happens
when the worker undoing one dies. A failed or impossible undo always calls a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from baton.act.actions import ActionContext
from baton.act.executions import EXECUTOR, claimed_undo, escalate, finish
from baton.act.heartbeat import stale
from baton.act.locks import execution_then_chain
from baton.act.runbook import Runbook
from baton.act.steps import Clock, Phase, next_seq
from baton.act.versions import get_version
from baton.kernel.audit import append
from baton.kernel.enums import ExecutionStatus, StepStatus
from baton.store.db import Database
from baton.store.models import Execution, ExecutionStep


def roll_back(
    db: Database, execution_id: int, ctx: ActionContext, now: Clock, why: str, worker: str
) -> str | None:
    """Undo an execution a person claimed with `claim_rollback`; a failed undo escalates.
    Returns how it ended, or None when there was nothing to do (a redelivery, say).

    The rollback is `worker`'s while it runs: its heartbeat keeps it, and a worker that
    dies leaves it to be taken over (interrupted and escalated, see `interrupt_rollback`)."""
    with db.session() as s:
        claim = (
            update(Execution)
            .where(
                Execution.id == execution_id,
                Execution.status == ExecutionStatus.ROLLING_BACK,
                Execution.worker.is_(None),  # one delivery wins; a redelivery does nothing
            )
            .values(worker=worker, heartbeat_at=now())
            .execution_options(synchronize_session=False)
        )
        if s.execute(claim).rowcount != 1:
            return None
        execution = s.get(Execution, execution_id)
        runbook = get_version(s, execution.runbook_id, execution.runbook_version)
        seq = next_seq(execution)
    rolled = undo_and_escalate(db, execution_id, runbook, ctx, now, seq, why)
    if not rolled:
        with db.session() as s:
            finish(s, s.get(Execution, execution_id), "failed", f"rollback failed: {why}", now())
    return "rolled_back" if rolled else "failed"


def undo_and_escalate(
    db: Database,
    execution_id: int,
    runbook: Runbook,
    ctx: ActionContext,
    now: Clock,
    first_seq: int,
    why: str,
    changed: bool = True,
) -> bool:
    """Roll back what may have changed (if the runbook is reversible); always escalate."""
    steps = runbook.doc.get("rollback", [])
    rolled, note = False, "nothing had changed, so nothing to roll back"
    if changed and runbook.reversible and steps:
        with db.session() as s:
            params = dict(s.get(Execution, execution_id).params)
        phase = Phase(
            db,
            execution_id,
            "rollback",
            params,
            ctx,
            now,
            lambda s, state: None,
            None,
            runbook.params,
        )
        result = phase.run(steps, first_seq)
        rolled, note = result.ok, "rolled back" if result.ok else f"rollback {result.summary}"
    elif changed:
        note = "the runbook is not reversible: no rollback possible"
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        if rolled:
            execution.status = ExecutionStatus.ROLLED_BACK
            execution_then_chain(s, execution)
        append(
            s,
            actor=EXECUTOR,
            action="execution.escalated",
            subject=f"execution:{execution_id}",
            at=now(),
            inputs={"why": why, "rolled_back": rolled},
            decision="escalate",
            rationale=f"{why}; {note}; needs a human (owner: {runbook.owner or 'nobody'})",
        )
    return rolled


def _rollback_in_flight(execution_id: int) -> Any:
    """A rollback step stored `running`: some worker was undoing this execution."""
    return (
        select(ExecutionStep.id)
        .where(
            ExecutionStep.execution_id == execution_id,
            ExecutionStep.phase == "rollback",
            ExecutionStep.status == StepStatus.RUNNING,
        )
        .exists()
    )


def take_over_rollback(
    db: Database, execution_id: int, at: datetime, lease_s: float, worker: str
) -> bool:
    """Claim an execution whose undoing worker died: one winner."""
    with db.session() as s:
        undoing = claimed_undo() | _rollback_in_flight(execution_id)
        claim = (
            update(Execution)
            .where(
                Execution.id == execution_id,
                Execution.status != ExecutionStatus.RUNNING,
                stale(at, lease_s),
                undoing,
            )
            .values(worker=worker, heartbeat_at=at)
            .execution_options(synchronize_session=False)
        )
        return s.execute(claim).rowcount == 1


def interrupt_rollback(s: Session, execution_id: int, at: datetime) -> Execution:
    """The worker undoing this execution died: nobody knows how far the undo got, so it
    is not re-run; the step in flight is marked interrupted and a person is called."""
    execution = execution_then_chain(s, execution_id)
    note = "\n[the worker running this step stopped]"
    s.execute(
        update(ExecutionStep)
        .where(
            ExecutionStep.execution_id == execution_id,
            ExecutionStep.phase == "rollback",
            ExecutionStep.status == StepStatus.RUNNING,  # a step that did end keeps its ending
        )
        .values(
            status="interrupted",
            finished_at=at,
            output=func.coalesce(ExecutionStep.output, "") + note,
        )
        .execution_options(synchronize_session=False)
    )
    why = "the worker undoing this execution stopped mid-rollback: not re-run"
    if execution.status == ExecutionStatus.ROLLING_BACK:
        finish(s, execution, "failed", f"rollback interrupted: {why}", at)
    escalate(s, execution.id, at, f"{why}; the undo may be partial, check the target")
    return execution
