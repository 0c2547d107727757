"""Runs an execution step by step, persisting each step, then verifies and rolls back.

Verification is polled by `check_verifications` on the scheduler's tick rather than
slept for inside the executor, so it works the same in simulated and real time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from baton.act.actions import ActionContext, run_action, run_check
from baton.act.runbook import Runbook, render
from baton.act.service import get_version
from baton.govern.audit import Actor, append
from baton.store.db import Database
from baton.store.models import Execution, ExecutionStep

EXECUTOR = Actor("baton.act", "system", "executor/1")
FINAL = ("succeeded", "failed", "rolled_back", "cancelled", "interrupted")


def idempotency_key(incident_id: int | None, runbook: Runbook, params: dict[str, Any]) -> str:
    """The same incident, runbook and params never start two executions."""
    body = {"incident": incident_id, "runbook": runbook.id, "params": params}
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
) -> tuple[Execution, bool]:
    """Queue an execution; return (execution, created). A repeat returns the original."""
    key = idempotency_key(incident_id, runbook, params)
    existing = session.scalar(select(Execution).where(Execution.idempotency_key == key))
    if existing is not None:
        return existing, False
    execution = Execution(
        decision_id=decision_id,
        incident_id=incident_id,
        runbook_id=runbook.id,
        runbook_version=runbook.version,
        params=params,
        idempotency_key=key,
        status="queued",
        created_at=at,
    )
    try:
        with session.begin_nested():
            session.add(execution)
            session.flush()
    except IntegrityError:  # a concurrent request won the race for this key
        return session.scalar(select(Execution).where(Execution.idempotency_key == key)), False
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
        rationale=f"runbook {runbook.id} queued for incident {incident_id}",
    )
    return execution, True


def _record_step(
    db: Database,
    execution_id: int,
    seq: int,
    phase: str,
    item: dict[str, Any],
    rendered: dict[str, Any],
    outcome_ok: bool,
    output: str,
    started: datetime,
    finished: datetime,
) -> None:
    with db.session() as s:
        s.add(
            ExecutionStep(
                execution_id=execution_id,
                seq=seq,
                phase=phase,
                name=item["name"],
                action=item.get("action") or item.get("check", ""),
                status="ok" if outcome_ok else "failed",
                rendered=rendered,
                output=output,
                started_at=started,
                finished_at=finished,
            )
        )
        append(
            s,
            actor=EXECUTOR,
            action=f"execution.{phase}",
            subject=f"execution:{execution_id}",
            at=finished,
            inputs={"step": item["name"], "rendered": rendered},
            decision=item.get("action") or item.get("check"),
            outcome="ok" if outcome_ok else "failed",
            rationale=output[:500],
        )


def _run_steps(
    db: Database,
    execution_id: int,
    steps: list[dict[str, Any]],
    phase: str,
    params: dict[str, Any],
    ctx: ActionContext,
    now: Callable[[], datetime],
    first_seq: int,
    should_stop: Callable[[], str | None],
) -> tuple[bool, int, str]:
    seq = first_seq
    for item in steps:
        reason = should_stop()
        if reason:
            return False, seq, f"stopped before step {item['name']!r}: {reason}"
        rendered = render(item.get("with", {}), params)
        started = now()
        outcome = run_action(item["action"], rendered, ctx)
        _record_step(
            db, execution_id, seq, phase, item, rendered, outcome.ok, outcome.output, started, now()
        )
        seq += 1
        if not outcome.ok:
            return False, seq, f"step {item['name']!r} failed: {outcome.output}"
    return True, seq, "all steps ok"


def _finish(
    s: Session,
    execution: Execution,
    status: str,
    summary: str,
    at: datetime,
    verified: bool | None = None,
) -> None:
    execution.status, execution.summary, execution.finished_at = status, summary, at
    if verified is not None:
        execution.verified = verified
    append(
        s,
        actor=EXECUTOR,
        action=f"execution.{status}",
        subject=f"execution:{execution.id}",
        at=at,
        inputs={"runbook": execution.runbook_id, "version": execution.runbook_version},
        decision=status,
        rationale=summary,
        outcome=status,
    )


def run_execution(
    db: Database,
    execution_id: int,
    ctx: ActionContext,
    now: Callable[[], datetime],
    should_stop: Callable[[], str | None] = lambda: None,
) -> str:
    """Run the steps of a queued execution; leave it `verifying` or finished. Returns status."""
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        if execution is None:
            raise LookupError(f"no execution {execution_id}")
        if execution.status != "queued":
            return execution.status  # redelivery of a started execution never re-runs it
        runbook = get_version(s, execution.runbook_id, execution.runbook_version)
        if runbook is None:
            _finish(s, execution, "failed", "runbook version not found", now())
            return "failed"
        execution.status, execution.started_at = "running", now()
        params = dict(execution.params)
        append(
            s,
            actor=EXECUTOR,
            action="execution.started",
            subject=f"execution:{execution_id}",
            at=execution.started_at,
            inputs={"runbook": runbook.id, "params": params},
            decision="running",
        )
    ok, seq, summary = _run_steps(
        db, execution_id, runbook.doc["steps"], "step", params, ctx, now, 1, should_stop
    )
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        if not ok:
            status = "cancelled" if summary.startswith("stopped") else "failed"
            _finish(s, execution, status, summary, now())
        elif runbook.doc.get("verify"):
            within = max(c.get("within_s", 300) for c in runbook.doc["verify"])
            execution.status = "verifying"
            execution.verify_deadline = now() + timedelta(seconds=within)
            append(
                s,
                actor=EXECUTOR,
                action="execution.verifying",
                subject=f"execution:{execution_id}",
                at=now(),
                decision="verifying",
                rationale=f"steps done; checking {len(runbook.doc['verify'])} verify check(s) "
                f"for up to {within:.0f}s",
            )
        else:
            _finish(s, execution, "succeeded", "steps done; runbook has no verify checks", now())
        status = execution.status
    if status == "failed":
        rollback(db, execution_id, runbook, ctx, now, seq, "steps failed")
    return status


def rollback(
    db: Database,
    execution_id: int,
    runbook: Runbook,
    ctx: ActionContext,
    now: Callable[[], datetime],
    first_seq: int,
    why: str,
) -> bool:
    """Run rollback steps if the runbook is reversible; escalate either way."""
    steps = runbook.doc.get("rollback", [])
    rolled, summary = False, "no rollback possible"
    if runbook.reversible and steps:
        with db.session() as s:
            params = dict(s.get(Execution, execution_id).params)
        rolled, _, summary = _run_steps(
            db, execution_id, steps, "rollback", params, ctx, now, first_seq, lambda: None
        )
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        if rolled:
            execution.status = "rolled_back"
        append(
            s,
            actor=EXECUTOR,
            action="execution.escalated",
            subject=f"execution:{execution_id}",
            at=now(),
            inputs={"why": why, "rolled_back": rolled},
            decision="escalate",
            rationale=f"{why}; "
            + ("rolled back" if rolled else summary)
            + f"; needs a human (owner: {runbook.owner or 'nobody'})",
        )
    return rolled


def check_verifications(
    db: Database,
    ctx: ActionContext,
    now: Callable[[], datetime],
) -> list[int]:
    """Evaluate verify checks of executions awaiting them; return ids that finished."""
    with db.session() as s:
        waiting = [
            (e.id, e.runbook_id, e.runbook_version, dict(e.params), e.verify_deadline)
            for e in s.scalars(select(Execution).where(Execution.status == "verifying"))
        ]
    finished = []
    for execution_id, runbook_id, version, params, deadline in waiting:
        with db.session() as s:
            runbook = get_version(s, runbook_id, version)
        results = []
        for check in runbook.doc["verify"]:
            rendered = render(check.get("with", {}), params)
            results.append((check, rendered, run_check(check["check"], rendered, ctx)))
        passed = all(r.ok for _, _, r in results)
        expired = deadline is not None and now() >= deadline
        if not passed and not expired:
            continue
        with db.session() as s:
            execution = s.get(Execution, execution_id)
            seq = len(execution.steps) + 1
        for offset, (check, rendered, outcome) in enumerate(results):
            _record_step(
                db,
                execution_id,
                seq + offset,
                "verify",
                check,
                rendered,
                outcome.ok,
                outcome.output,
                now(),
                now(),
            )
        detail = "; ".join(r.output for _, _, r in results)
        with db.session() as s:
            execution = s.get(Execution, execution_id)
            if passed:
                _finish(s, execution, "succeeded", f"verified: {detail}", now(), verified=True)
            else:
                _finish(s, execution, "failed", f"verify failed: {detail}", now(), verified=False)
        if not passed:
            rollback(db, execution_id, runbook, ctx, now, seq + len(results), "verification failed")
        finished.append(execution_id)
    return finished


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
