"""One worker's go at one execution: claim it (or take over one whose worker died), run
its steps, and record how they ended: succeeded, failed and undone, cancelled, or left
`verifying` for the checks to settle."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from baton.act.actions import ActionContext
from baton.act.executions import EXECUTOR, audit_ending, escalate, finish
from baton.act.heartbeat import stale
from baton.act.locks import execution_then_chain
from baton.act.rollback import interrupt_rollback, take_over_rollback, undo_and_escalate
from baton.act.runbook import Runbook
from baton.act.steps import TAKEN_OVER, Clock, LostClaim, Phase, StepsResult, next_seq
from baton.act.versions import get_version
from baton.kernel.audit import append
from baton.kernel.enums import ExecutionStatus, StepStatus
from baton.store.db import Database
from baton.store.models import Execution, ExecutionStep

# Core statements built once: every execution runs them (ORM statements cost far more).
_RUNS = Execution.__table__
_CLAIM = (
    _RUNS.update()
    .where(_RUNS.c.id == bindparam("run"), _RUNS.c.status == "queued")
    .values(status="running", started_at=bindparam("at"), worker=bindparam("by"))
    .values(heartbeat_at=bindparam("at"))
    .returning(
        _RUNS.c.runbook_id,
        _RUNS.c.runbook_version,
        _RUNS.c.params,
        _RUNS.c.worker,
        _RUNS.c.cancel_requested,
    )
)
_END = (
    _RUNS.update()
    .where(_RUNS.c.id == bindparam("run"))
    .values(status=bindparam("ended"), summary=bindparam("summary"), finished_at=bindparam("at"))
)


@dataclass(frozen=True)
class Ended:
    """An execution as its ending left it: what learning from it reads."""

    id: int
    runbook_id: str
    runbook_version: str
    params: dict[str, Any]
    status: str
    summary: str
    verified: bool | None = None


class RunState(Protocol):
    """What a stop check may look at: an Execution, or the row its claim returned."""

    runbook_id: str
    params: dict[str, Any]
    worker: str | None
    cancel_requested: bool


StopCheck = Callable[[Session, RunState], str | None]
Learn = Callable[[Session, Any], None]  # with an Execution, or the Ended record


def run_execution(
    db: Database,
    execution_id: int,
    ctx: ActionContext,
    now: Clock,
    stop_check: StopCheck = lambda s, state: None,
    worker: str = "local",
    lease_s: float = 30.0,
    learn: Learn | None = None,
) -> str:
    """Run the steps of a queued execution (or go on with one whose worker died); leave it
    `verifying` or finished. Returns its status.

    `stop_check` is asked, with the execution's state, before each step and while a
    program runs; a reason it returns (a kill switch, say) stops the run like a cancel.
    `learn` is called once for the ending this call reached (none when another worker ran
    or ends it): a success inside the transaction that records it, so the outcome and
    what is learned from it commit together; other endings once they are settled.
    """
    run = _Run(db, execution_id, ctx, now, stop_check, worker, learn)
    try:
        return run.go(lease_s)
    except LostClaim:  # another worker took it over: everything from here is theirs
        return "taken_over"


def _throttled(check: Callable[[], str | None], every_s: float = 1.0) -> Callable[[], str | None]:
    """Ask the database at most once a second while a command runs."""
    last = [0.0]

    def ask() -> str | None:
        now = time.monotonic()
        if now - last[0] < every_s:
            return None
        last[0] = now
        return check()

    return ask


def _claim(s: Session, execution_id: int, at: datetime, worker: str) -> Any:
    """Atomically move queued → running: of two deliveries only one wins. Returns the
    claimed execution's state (runbook, params, cancel flag), or None if not won."""
    values = {"run": execution_id, "at": at, "by": worker}
    claimed = execution_then_chain(s, _CLAIM, values)
    if claimed is not None:
        append(
            s,
            actor=EXECUTOR,
            action="execution.started",
            subject=f"execution:{execution_id}",
            at=at,
            decision="running",
            inputs={"worker": worker},
        )
    return claimed


def _take_over(db: Database, execution_id: int, at: datetime, lease_s: float, worker: str) -> bool:
    """Claim a `running` execution whose worker stopped beating (it died): one winner."""
    orphaned = (Execution.status == ExecutionStatus.RUNNING) & stale(at, lease_s)
    with db.session() as s:
        return (
            s.execute(
                update(Execution)
                .where(Execution.id == execution_id, orphaned)
                .values(worker=worker, heartbeat_at=at)
            ).rowcount
            == 1
        )


@dataclass(frozen=True)
class Resume:
    index: int  # the runbook step to run next
    seq: int  # the next step row's number


def _resume_point(
    s: Session, execution: Execution, runbook: Runbook, at: datetime
) -> Resume | None:
    """Where a taken-over execution may go on, or None when it must stop.

    A step that was in flight when its worker died is re-run only if the runbook marks it
    `idempotent`; otherwise nobody knows whether it happened, so the execution is
    interrupted and escalated for a human. Steps that finished are never run again.
    """
    rows = [r for r in execution.steps if r.phase == "step"]
    done = [r for r in rows if r.status in ("ok", "failed")]
    index, seq = len(done), next_seq(execution)
    steps = runbook.doc["steps"]
    why = None
    if done and done[-1].status == "failed" and not steps[index - 1].get("continue_on_error"):
        why = f"the worker stopped right after step {done[-1].name!r} failed"
    for row in rows:
        if row.status != StepStatus.RUNNING:
            continue
        row.status, row.finished_at = StepStatus.INTERRUPTED, at
        row.output = (row.output or "") + "\n[the worker running this step stopped]"
        if not steps[index].get("idempotent"):
            why = f"the worker stopped during step {row.name!r}, which is not idempotent"
    if why:
        finish(s, execution, "interrupted", f"{why}: not re-run", at)
        escalate(s, execution.id, at, f"{why}; steps are not re-run automatically")
        return None
    append(
        s,
        actor=EXECUTOR,
        action="execution.resumed",
        subject=f"execution:{execution.id}",
        at=at,
        inputs={"worker": execution.worker, "step": index + 1},
        decision="resume",
        rationale=f"the worker running it stopped; going on at step {index + 1} of "
        f"{len(steps)} (finished steps are not re-run; an idempotent step in flight is)",
    )
    return Resume(index, seq)


def _owned(s: Session, execution_id: int, worker: str) -> Execution:
    execution = s.get(Execution, execution_id)
    if (
        execution is None
        or execution.worker != worker
        or execution.status != ExecutionStatus.RUNNING
    ):
        raise LostClaim(execution_id)
    return execution


def _status(db: Database, execution_id: int) -> str:
    with db.session() as s:
        return s.get(Execution, execution_id).status


Begun = tuple[Runbook | None, dict[str, Any], Resume, ExecutionStep | str | None]


class _Run:
    """One worker's go at one execution: claim it (or take it over), run its steps, then
    record how it ended."""

    def __init__(
        self,
        db: Database,
        execution_id: int,
        ctx: ActionContext,
        now: Clock,
        stop_check: StopCheck,
        worker: str,
        learn: Learn | None,
    ) -> None:
        self.db, self.execution_id, self.now = db, execution_id, now
        self.stop_check, self.worker, self.learn = stop_check, worker, learn
        self.ctx = replace(ctx, should_cancel=_throttled(self._should_stop))
        self.runbook: Runbook | None = None
        self.status = "failed"
        self.ended_here = False  # this call took the execution to its ending

    def stop_reason(self, s: Session, state: Any = None) -> str | None:
        state = state or s.get(Execution, self.execution_id)
        if state.worker != self.worker:
            return TAKEN_OVER
        if state.cancel_requested:
            return "a human cancelled it"
        return self.stop_check(s, state)

    def _should_stop(self) -> str | None:
        with self.db.session() as s:
            return self.stop_reason(s)

    def phase(self, params: dict[str, Any]) -> Phase:
        return Phase(
            self.db,
            self.execution_id,
            "step",
            params,
            self.ctx,
            self.now,
            self.stop_reason,
            self.worker,
            self.runbook.params if self.runbook else {},
        )

    def go(self, lease_s: float) -> str:
        begun = self._begin(lease_s)
        if isinstance(begun, str):
            if self.ended_here:  # taken over and interrupted here
                self._learn_apart()
            return begun
        runbook, params, start, started = begun
        if runbook is None:
            with self.db.session() as s:
                execution = _owned(s, self.execution_id, self.worker)
                finish(s, execution, "failed", "runbook version not found", self.now())
            self._learn_apart()
            return "failed"
        self.runbook = runbook
        steps = runbook.doc["steps"][start.index :]
        result = self.phase(params).run(steps, start.seq, self._settle_steps, started)
        if not result.ok:
            undo_and_escalate(
                self.db,
                self.execution_id,
                runbook,
                self.ctx,
                self.now,
                result.next_seq,
                result.summary,
                changed=result.completed > 0 or start.index > 0,
            )
            self._learn_apart()
            return _status(self.db, self.execution_id)
        return self.status

    def _learn_apart(self) -> None:
        """Learn from the ending in a transaction of its own."""
        if self.learn is not None:
            with self.db.session() as s:
                self.learn(s, s.get(Execution, self.execution_id))

    def _begin(self, lease_s: float) -> Begun | str:
        """Claim a queued execution, opening its first step in the same transaction, or
        take over an orphaned one; the execution's status when neither."""
        at = self.now()
        with self.db.session() as s:
            claimed = _claim(s, self.execution_id, at, self.worker)
            if claimed is not None:
                runbook = self.runbook = get_version(s, claimed.runbook_id, claimed.runbook_version)
                params = dict(claimed.params)
                steps = runbook.doc["steps"] if runbook else []
                started = self.phase(params).open(s, steps[0], 1, state=claimed) if steps else None
                return runbook, params, Resume(0, 1), started
            execution = s.get(Execution, self.execution_id)
            if execution is None:
                raise LookupError(f"no execution {self.execution_id}")
            status = execution.status
            runbook = get_version(s, execution.runbook_id, execution.runbook_version)
            params = dict(execution.params)
        if status != "running":
            if not take_over_rollback(self.db, self.execution_id, at, lease_s, self.worker):
                return status  # redelivery never runs an execution twice
            with self.db.session() as s:
                status = interrupt_rollback(s, self.execution_id, at).status
            self.ended_here = True
            return status
        if runbook is None or not _take_over(self.db, self.execution_id, at, lease_s, self.worker):
            return status
        with self.db.session() as s:
            execution = s.get(Execution, self.execution_id)
            point = _resume_point(s, execution, runbook, at)
        self.ended_here = point is None
        return (runbook, params, point, None) if point else "interrupted"

    def _settle_steps(self, s: Session, result: StepsResult, state: Any) -> StepsResult:
        """The steps are over: record the ending (or `verifying`) with the last step's end.
        `state` is the execution as this transaction's boundary left it (its row and the
        audit chain are already held)."""
        if state.status != ExecutionStatus.RUNNING:
            raise LostClaim(self.execution_id)
        late_stop = self.stop_reason(s, state) if result.ok else None
        if late_stop:  # asked to stop during the last step: undo rather than verify
            result = StepsResult(
                False,
                result.next_seq,
                result.completed,
                f"stopped after the last step: {late_stop}",
                stopped=True,
            )
        verify = self.runbook.doc.get("verify") if self.runbook else None
        if result.ok and not verify:  # the common ending, on Core statements
            self._succeed(s, state)
            return result
        execution = _owned(s, self.execution_id, self.worker)
        if not result.ok:
            ending = "cancelled" if result.stopped else "failed"
            finish(s, execution, ending, result.summary, self.now())
        elif verify:
            within = max(c.get("within_s", 300) for c in verify)
            execution.status = ExecutionStatus.VERIFYING
            execution.verify_deadline = self.now() + timedelta(seconds=within)
            append(
                s,
                actor=EXECUTOR,
                action="execution.verifying",
                subject=f"execution:{self.execution_id}",
                at=self.now(),
                decision="verifying",
                rationale=f"steps done; checking {len(verify)} verify check(s) "
                f"for up to {within:.0f}s",
            )
        self.status = execution.status
        return result

    def _succeed(self, s: Session, state: Any) -> None:
        """Record a success and learn from it in the same transaction: should learning
        fail, the success is not recorded either and the run is taken over after the
        lease like any crash (its steps are not re-run unless idempotent)."""
        at, done = self.now(), "steps done; runbook has no verify checks"
        s.execute(_END, {"run": self.execution_id, "ended": "succeeded", "summary": done, "at": at})
        ended = Ended(
            self.execution_id,
            state.runbook_id,
            state.runbook_version,
            state.params,
            "succeeded",
            done,
        )
        audit_ending(s, ended, ended.status, done, at)
        if self.learn is not None:
            self.learn(s, ended)
        self.status = ended.status
