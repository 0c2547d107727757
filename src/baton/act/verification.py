"""Verify checks after the steps: polled on the scheduler's tick rather than slept for
inside a worker, so they work the same in simulated and real time. A failed check (or
a deadline passed first) rolls the change back and calls a person."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import select, update

from baton.act.actions import ActionContext, Outcome, run_check
from baton.act.executions import finish
from baton.act.rollback import undo_and_escalate
from baton.act.runbook import Runbook
from baton.act.steps import Clock, LostClaim, end_step, next_seq, perform, step_row
from baton.act.versions import get_version
from baton.kernel.enums import ExecutionStatus
from baton.store.db import Database
from baton.store.models import Execution

log = logging.getLogger("baton.act")

Checked = list[tuple[dict[str, Any], dict[str, Any], Outcome]]  # (check, shown, outcome)


def check_verifications(
    db: Database,
    ctx: ActionContext,
    now: Clock,
    holding: Callable[[int], AbstractContextManager[Any]] = lambda execution_id: nullcontext(),
    worker: str | None = None,
) -> list[int]:
    """Evaluate verify checks of executions awaiting them; return ids that finished.

    An execution finishes when every check passes, or when its deadline passes first.
    While one is concluded (and maybe undone) it is `worker`'s, kept by `holding`'s
    heartbeat, so a long rollback step is not mistaken for a dead worker's.
    """
    finished = []
    for execution_id in _verifying(db):
        try:
            with holding(execution_id):
                if _check_one(db, execution_id, ctx, now, worker):
                    finished.append(execution_id)
        except LostClaim:
            log.warning("execution %s was taken over while being concluded", execution_id)
    return finished


def _verifying(db: Database) -> list[int]:
    with db.session() as s:
        return list(
            s.scalars(select(Execution.id).where(Execution.status == ExecutionStatus.VERIFYING))
        )


def _evaluate(runbook: Runbook, params: dict[str, Any], ctx: ActionContext) -> Checked:
    results = []
    for check in runbook.doc["verify"]:
        shown, outcome = perform(check, params, ctx, run_check)
        results.append((check, shown, outcome))
    return results


def _check_one(
    db: Database, execution_id: int, ctx: ActionContext, now: Clock, worker: str | None
) -> bool:
    """Conclude one verifying execution if it is time; True if it finished."""
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        if execution is None or execution.status != ExecutionStatus.VERIFYING:
            return False
        runbook = get_version(s, execution.runbook_id, execution.runbook_version)
        params, deadline = dict(execution.params), execution.verify_deadline
        cancelled = execution.cancel_requested
    if not cancelled:
        results = _evaluate(runbook, params, ctx)
        expired = deadline is not None and now() >= deadline
        if not (all(r.ok for _, _, r in results) or expired):
            return False
    if worker is not None:  # from here it is ours: the heartbeat keeps it
        with db.session() as s:
            taken = s.execute(
                update(Execution)
                .where(Execution.id == execution_id)
                .values(heartbeat_at=now(), worker=worker)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:
                raise LostClaim(execution_id)
    if cancelled:
        _cancel_verifying(db, execution_id, runbook, ctx, now)
    else:
        _record_verdict(db, execution_id, runbook, ctx, now, results)
    return True


def _record_verdict(
    db: Database,
    execution_id: int,
    runbook: Runbook,
    ctx: ActionContext,
    now: Clock,
    results: Checked,
) -> None:
    """Record the checks and the ending they make (succeeded, verified, or failed); on
    failure roll back and escalate."""
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        seq, params = next_seq(execution), dict(execution.params)
    with db.session() as s:
        for offset, (check, rendered, outcome) in enumerate(results):
            row = step_row(execution_id, seq + offset, "verify", check, rendered, now(), params)
            end_step(s, row, check, outcome, now())
    passed = all(r.ok for _, _, r in results)
    detail = "; ".join(r.output for _, _, r in results)
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        if passed:
            finish(s, execution, "succeeded", f"verified: {detail}", now(), verified=True)
        else:
            finish(s, execution, "failed", f"verify failed: {detail}", now(), verified=False)
    if not passed:
        undo_and_escalate(
            db, execution_id, runbook, ctx, now, seq + len(results), "verification failed"
        )


def _cancel_verifying(
    db: Database, execution_id: int, runbook: Runbook, ctx: ActionContext, now: Clock
) -> None:
    """A person cancelled while the checks were still running: undo the change."""
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        seq = next_seq(execution)
        finish(s, execution, "cancelled", "cancelled by a person during verification", now())
    undo_and_escalate(db, execution_id, runbook, ctx, now, seq, "cancelled during verification")
