"""Runs an execution step by step, persisting each step, then verifies and rolls back.

Verification is polled by `check_verifications` on the scheduler's tick rather than
slept for inside the executor, so it works the same in simulated and real time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import bindparam, func, select, true, update
from sqlalchemy.orm import Session

from baton.act import confine, limits
from baton.act.actions import ActionContext, Outcome, pause, run_action, run_check
from baton.act.runbook import Runbook, render
from baton.act.secrets import known, masked, resolve
from baton.act.secrets import names as secret_names
from baton.act.service import get_version
from baton.kernel.audit import Actor, append, serialize
from baton.kernel.errors import Refused
from baton.store.db import Database, lock_row
from baton.store.models import Execution, ExecutionStep

log = logging.getLogger("baton.act")
EXECUTOR = Actor("baton.act", "system", "executor/1")
TAKEN_OVER = "another worker took this execution over"
FINAL = ("succeeded", "failed", "rolled_back", "cancelled", "interrupted", "vetoed")
Clock = Callable[[], datetime]

# Core statements built once: every execution runs them (ORM statements cost far more).
_RUNS, _STEPS = Execution.__table__, ExecutionStep.__table__
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
_STATE = (  # what a stop check and an ending need to know
    _RUNS.c.status,
    _RUNS.c.worker,
    _RUNS.c.cancel_requested,
    _RUNS.c.runbook_id,
    _RUNS.c.runbook_version,
    _RUNS.c.params,
)
_BEAT = (
    _RUNS.update()
    .where(_RUNS.c.id == bindparam("run"))
    .values(heartbeat_at=bindparam("at"))
    .returning(*_STATE)
)
_BEAT_MINE = _BEAT.where(_RUNS.c.worker == bindparam("by"))
_END = (
    _RUNS.update()
    .where(_RUNS.c.id == bindparam("run"))
    .values(status=bindparam("ended"), summary=bindparam("summary"), finished_at=bindparam("at"))
)
_STEP_INSERT = _STEPS.insert()
_BY_KEY = select(_RUNS.c.id).where(_RUNS.c.idempotency_key == bindparam("key"))
_STEP_END = (
    _STEPS.update()
    .where(_STEPS.c.id == bindparam("step"), _STEPS.c.status == "running")
    .values(status=bindparam("ended"), output=bindparam("out"), finished_at=bindparam("at"))
)


def next_seq(execution: Execution) -> int:
    """The number of the next step row (steps, verify checks and rollbacks share one)."""
    return max((st.seq for st in execution.steps), default=0) + 1


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
            Execution.status == "queued",
            Execution.not_before.is_(None) | (Execution.not_before <= at),
        )
    )
    return list(rows)


def _locked(session: Session, execution_id: int) -> Execution:
    if not lock_row(session, Execution, execution_id):
        raise LookupError(f"no execution {execution_id}")
    return session.get(Execution, execution_id)


def veto(session: Session, execution_id: int, at: datetime) -> Execution:
    """Stop a queued execution before it starts; ValueError if it already started."""
    execution = _locked(session, execution_id)
    if execution.status != "queued":
        raise Refused(
            f"execution {execution_id} is {execution.status}; only a queued execution can be "
            "vetoed (cancel a running one, roll back a finished one)"
        )
    _finish(session, execution, "vetoed", "vetoed by a human before it started", at)
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
    """Mark a succeeded execution `rolling_back` (only one request can win); ValueError
    if it cannot be undone."""
    execution = _locked(session, execution_id)
    if execution.status != "succeeded":
        raise Refused(
            f"execution {execution_id} is {execution.status}; only a succeeded one can be "
            "rolled back"
        )
    runbook = get_version(session, execution.runbook_id, execution.runbook_version)
    if runbook is None or not runbook.reversible or not runbook.doc.get("rollback"):
        raise Refused(f"runbook {execution.runbook_id} is not reversible")
    execution.status = "rolling_back"
    execution.worker, execution.heartbeat_at = None, at  # no worker has it yet
    return execution


def roll_back(
    db: Database, execution_id: int, ctx: ActionContext, now: Clock, why: str, worker: str
) -> str | None:
    """Undo an execution a person claimed with `claim_rollback`; a failed undo escalates.
    Returns how it ended, or None when there was nothing to do (a redelivery, say).

    The rollback is `worker`'s while it runs: its heartbeat keeps it, and a worker that
    dies leaves it to be taken over (interrupted and escalated, see `_Run`)."""
    with db.session() as s:
        claim = (
            update(Execution)
            .where(
                Execution.id == execution_id,
                Execution.status == "rolling_back",
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
            _finish(s, s.get(Execution, execution_id), "failed", f"rollback failed: {why}", now())
    return "rolled_back" if rolled else "failed"


def _step_row(
    execution_id: int,
    seq: int,
    phase: str,
    item: dict[str, Any],
    rendered: dict[str, Any],
    started: datetime,
    params: dict[str, Any],
) -> ExecutionStep:
    """A step's row, its name rendered as people read it ('Restart web', not a template)."""
    return ExecutionStep(
        execution_id=execution_id,
        seq=seq,
        phase=phase,
        name=render(item["name"], params),
        action=item.get("action") or item.get("check", ""),
        status="running",
        rendered=rendered,
        started_at=started,
    )


def _hold(s: Session, execution_id: int, at: datetime, worker: str | None) -> Any:
    """Write the execution's row first in a transaction (a heartbeat): every writer takes
    it before the audit chain's lock, so a step boundary and a cancel cannot deadlock.
    With `worker`, only while that worker still holds the execution (else LostClaim).
    Returns the execution's state (a RunState) as the write left it."""
    values = {"run": execution_id, "at": at, "by": worker}
    state = s.execute(_BEAT if worker is None else _BEAT_MINE, values).first()
    if state is None:
        raise LostClaim(execution_id)
    return state


def _start_step(s: Session, row: ExecutionStep) -> int:
    """Persist a step as `running` before it runs, so a crash leaves evidence of the step
    that was in flight (and it is never re-run blindly). Returns the row's id."""
    values = {c.name: getattr(row, c.name) for c in _STEPS.columns if c.name != "id"}
    return int(s.execute(_STEP_INSERT, values).inserted_primary_key[0])


def _end_step(
    s: Session,
    row: ExecutionStep,
    item: dict[str, Any],
    outcome: Outcome,
    finished: datetime,
) -> None:
    """Record how a step ended: a new row is added whole, a stored one (known by its id)
    is updated in place."""
    status = "ok" if outcome.ok else "failed"
    if row.id is None:
        row.status, row.output, row.finished_at = status, outcome.output, finished
        s.add(row)
    else:
        end = {"step": row.id, "ended": status, "out": outcome.output, "at": finished}
        ended = s.execute(_STEP_END, end).rowcount
        if ended != 1:  # a worker that took over marked it interrupted: not ours anymore
            raise LostClaim(row.execution_id)
    append(
        s,
        actor=EXECUTOR,
        action=f"execution.{row.phase}",
        subject=f"execution:{row.execution_id}",
        at=finished,
        inputs={"step": item["name"], "rendered": row.rendered},
        decision=row.action,
        outcome=status,
        rationale=outcome.output[:500],
    )


def _live_output(db: Database, step_id: int) -> Callable[[str], None]:
    """Where a running step's output so far goes, for people following the run live."""

    def save(text: str) -> None:
        with db.session() as s:
            s.execute(update(ExecutionStep).where(ExecutionStep.id == step_id).values(output=text))

    return save


@dataclass(frozen=True)
class StepsResult:
    ok: bool
    next_seq: int
    completed: int  # steps that ran to success (and so may have changed something)
    summary: str
    stopped: bool = False


StopReason = Callable[[Session, Any], str | None]
Conclude = Callable[[Session, StepsResult, Any], StepsResult]  # (.., result, held state)


@dataclass(frozen=True)
class Phase:
    """The steps (or rollback steps) of one execution, run in order, each persisted
    before and after it runs. With `worker`, they belong to that worker's claim: losing
    it ends the run (LostClaim).

    One transaction per step boundary: a step's end, the stop check and the next step's
    start commit together; the last step's end commits with `conclude`, which may turn
    the result into the execution's ending. A boundary that finds the claim lost writes
    nothing, not even the end of the step that just ran: the new owner decides about it.
    """

    db: Database
    execution_id: int
    name: str
    params: dict[str, Any]
    ctx: ActionContext
    now: Clock
    stop_reason: StopReason  # asked with the execution's state, or None to read it
    worker: str | None = None
    specs: dict[str, Any] = field(
        default_factory=dict
    )  # the runbook's params, confined ones rechecked

    def open(
        self, s: Session, item: dict[str, Any], seq: int, state: Any = None
    ) -> ExecutionStep | str:
        """A boundary's start: the stored `running` row, or why the step must not start.
        The caller already holds the execution's row in this transaction."""
        reason = self.stop_reason(s, state) or confine.before_step(self.specs, self.params)
        if reason == TAKEN_OVER:
            raise LostClaim(self.execution_id)
        if reason:
            return reason
        shown = shown_args(item, self.params)
        row = _step_row(self.execution_id, seq, self.name, item, shown, self.now(), self.params)
        row.id = _start_step(s, row)
        return row

    def run(
        self,
        steps: list[dict[str, Any]],
        first_seq: int,
        conclude: Conclude | None = None,
        started: ExecutionStep | str | None = None,
    ) -> StepsResult:
        """`started`: the first step's boundary, already written by the caller."""
        seq, completed = first_seq, 0
        ended: tuple[ExecutionStep, dict[str, Any], Outcome, datetime] | None = None

        def finish(s: Session, result: StepsResult, state: Any) -> StepsResult:
            if ended is not None:
                _end_step(s, *ended)
            return conclude(s, result, state) if conclude else result

        def named(item: dict[str, Any]) -> str:
            return repr(render(item["name"], self.params))

        for item in steps:
            opened, started = started, None
            if not isinstance(opened, ExecutionStep):
                with self.db.session() as s:
                    state = _hold(s, self.execution_id, self.now(), self.worker)
                    if opened is None:
                        if ended is not None:
                            _end_step(s, *ended)
                            ended = None
                        opened = self.open(s, item, seq, state)
                    if isinstance(opened, str):
                        why = f"stopped before step {named(item)}: {opened}"
                        stopped = StepsResult(False, seq, completed, why, stopped=True)
                        return finish(s, stopped, state)
            row = opened
            live = replace(self.ctx, on_output=_live_output(self.db, row.id))
            _, outcome = perform(item, self.params, live, run_action)
            ended = (row, item, outcome, self.now())
            seq += 1
            result = None
            if outcome.observed.get("stopped"):  # cancelled mid-step: the process was killed
                why = f"stopped during step {named(item)}"
                result = StepsResult(False, seq, completed, why, stopped=True)
            elif not outcome.ok and not item.get("continue_on_error"):
                result = StepsResult(
                    False, seq, completed, f"step {named(item)} failed: {outcome.output}"
                )
            elif outcome.ok:
                completed += 1
            if result is not None:
                with self.db.session() as s:
                    state = _hold(s, self.execution_id, self.now(), self.worker)
                    return finish(s, result, state)
        with self.db.session() as s:
            state = _hold(s, self.execution_id, self.now(), self.worker)
            return finish(s, StepsResult(True, seq, completed, "all steps ok"), state)


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


def shown_args(item: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A step's arguments as they may be shown: rendered, with secrets masked."""
    return render(item.get("with", {}), {**params, **masked(secret_names(item.get("with", {})))})


def perform(
    item: dict[str, Any],
    params: dict[str, Any],
    ctx: ActionContext,
    runner: Callable[[str, dict[str, Any], ActionContext], Outcome],
) -> tuple[dict[str, Any], Outcome]:
    """Run one step or check with its secrets injected, its timeout and its retries.

    Returns what may be shown (secrets masked) and the outcome (secrets scrubbed).
    """
    wanted = secret_names(item.get("with", {}))
    shown = shown_args(item, params)
    try:
        values = resolve(wanted)
        everything = known()
    except KeyError as exc:
        return shown, Outcome(False, str(exc).strip("'\""))
    real = render(item.get("with", {}), {**params, **values})
    step_ctx = replace(
        ctx, secrets={**everything, **values}, timeout_s=item.get("timeout_s", ctx.timeout_s)
    )
    kind = item.get("action") or item.get("check", "")
    retries, backoff = int(item.get("retries", 0)), float(item.get("backoff_s", 1.0))
    for attempt in range(retries + 1):
        outcome = runner(kind, real, step_ctx)
        if outcome.ok or attempt == retries or outcome.observed.get("stopped"):
            break
        if why := pause(ctx, backoff * 2**attempt):  # a cancel ends the back-off too
            outcome = replace(
                outcome,
                observed={**outcome.observed, "stopped": True},
                output=f"{outcome.output}; stopped before a retry: {why}",
            )
            break
    if retries and attempt:
        outcome = replace(outcome, output=f"{outcome.output} (attempt {attempt + 1})")
    return shown, outcome


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
    s.flush()  # the execution's row before the audit chain's lock: one order for all
    _audit_ending(s, execution, status, summary, at)


def _audit_ending(s: Session, run: Any, status: str, summary: str, at: datetime) -> None:
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


def _claim(s: Session, execution_id: int, at: datetime, worker: str) -> Any:
    """Atomically move queued → running: of two deliveries only one wins. Returns the
    claimed execution's state (runbook, params, cancel flag), or None if not won."""
    claimed = s.execute(_CLAIM, {"run": execution_id, "at": at, "by": worker}).first()
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
    with db.session() as s:
        return (
            s.execute(
                update(Execution)
                .where(Execution.id == execution_id, _orphaned_at(at, lease_s))
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
        if row.status != "running":
            continue
        row.status, row.finished_at = "interrupted", at
        row.output = (row.output or "") + "\n[the worker running this step stopped]"
        if not steps[index].get("idempotent"):
            why = f"the worker stopped during step {row.name!r}, which is not idempotent"
    if why:
        _finish(s, execution, "interrupted", f"{why}: not re-run", at)
        _escalated(s, execution.id, at, f"{why}; steps are not re-run automatically")
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


def _escalated(s: Session, execution_id: int, at: datetime, why: str) -> None:
    append(
        s,
        actor=EXECUTOR,
        action="execution.escalated",
        subject=f"execution:{execution_id}",
        at=at,
        decision="escalate",
        rationale=why,
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


class LostClaim(Exception):
    """This worker no longer holds the execution (its heartbeat lapsed and another took
    over): it must stop writing anything about it."""


def _owned(s: Session, execution_id: int, worker: str) -> Execution:
    execution = s.get(Execution, execution_id)
    if execution is None or execution.worker != worker or execution.status != "running":
        raise LostClaim(execution_id)
    return execution


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
                _finish(s, execution, "failed", "runbook version not found", self.now())
            self._learn_apart()
            return "failed"
        self.runbook = runbook
        steps = runbook.doc["steps"][start.index :]
        result = self.phase(params).run(steps, start.seq, self._conclude, started)
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
            if not _take_over_rollback(self.db, self.execution_id, at, lease_s, self.worker):
                return status  # redelivery never runs an execution twice
            with self.db.session() as s:
                status = _interrupt_rollback(s, self.execution_id, at).status
            self.ended_here = True
            return status
        if runbook is None or not _take_over(self.db, self.execution_id, at, lease_s, self.worker):
            return status
        with self.db.session() as s:
            execution = s.get(Execution, self.execution_id)
            point = _resume_point(s, execution, runbook, at)
        self.ended_here = point is None
        return (runbook, params, point, None) if point else "interrupted"

    def _conclude(self, s: Session, result: StepsResult, state: Any) -> StepsResult:
        """The steps are over: record the ending (or `verifying`) with the last step's end.
        `state` is the execution as this transaction's heartbeat left it."""
        if state.status != "running":
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
            _finish(s, execution, ending, result.summary, self.now())
        elif verify:
            within = max(c.get("within_s", 300) for c in verify)
            execution.status = "verifying"
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
        _audit_ending(s, ended, ended.status, done, at)
        if self.learn is not None:
            self.learn(s, ended)
        self.status = ended.status


def _status(db: Database, execution_id: int) -> str:
    with db.session() as s:
        return s.get(Execution, execution_id).status


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
            execution.status = "rolled_back"
            s.flush()  # the execution's row before the audit chain's lock
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


def _evaluate(
    runbook: Runbook, params: dict[str, Any], ctx: ActionContext
) -> list[tuple[dict[str, Any], dict[str, Any], Outcome]]:
    results = []
    for check in runbook.doc["verify"]:
        shown, outcome = perform(check, params, ctx, run_check)
        results.append((check, shown, outcome))
    return results


def _conclude(
    db: Database,
    execution_id: int,
    runbook: Runbook,
    ctx: ActionContext,
    now: Clock,
    results: list[tuple[dict[str, Any], dict[str, Any], Outcome]],
) -> None:
    """Record the verify outcome; on failure roll back and escalate."""
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        seq, params = next_seq(execution), dict(execution.params)
    with db.session() as s:
        for offset, (check, rendered, outcome) in enumerate(results):
            row = _step_row(execution_id, seq + offset, "verify", check, rendered, now(), params)
            _end_step(s, row, check, outcome, now())
    passed = all(r.ok for _, _, r in results)
    detail = "; ".join(r.output for _, _, r in results)
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        if passed:
            _finish(s, execution, "succeeded", f"verified: {detail}", now(), verified=True)
        else:
            _finish(s, execution, "failed", f"verify failed: {detail}", now(), verified=False)
    if not passed:
        undo_and_escalate(
            db, execution_id, runbook, ctx, now, seq + len(results), "verification failed"
        )


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
        return list(s.scalars(select(Execution.id).where(Execution.status == "verifying")))


def _check_one(
    db: Database, execution_id: int, ctx: ActionContext, now: Clock, worker: str | None
) -> bool:
    """Conclude one verifying execution if it is time; True if it finished."""
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        if execution is None or execution.status != "verifying":
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
            _hold(s, execution_id, now(), None)
            s.execute(
                update(Execution)
                .where(Execution.id == execution_id)
                .values(worker=worker)
                .execution_options(synchronize_session=False)
            )
    if cancelled:
        _cancel_verifying(db, execution_id, runbook, ctx, now)
    else:
        _conclude(db, execution_id, runbook, ctx, now, results)
    return True


def _cancel_verifying(
    db: Database, execution_id: int, runbook: Runbook, ctx: ActionContext, now: Clock
) -> None:
    """A person cancelled while the checks were still running: undo the change."""
    with db.session() as s:
        execution = s.get(Execution, execution_id)
        seq = next_seq(execution)
        _finish(s, execution, "cancelled", "cancelled by a person during verification", now())
    undo_and_escalate(db, execution_id, runbook, ctx, now, seq, "cancelled during verification")


def _stale(at: datetime, lease_s: float) -> Any:
    """Its worker has not beaten for longer than the lease (or was declared gone)."""
    return Execution.heartbeat_at.is_(None) | (
        Execution.heartbeat_at < at - timedelta(seconds=lease_s)
    )


def _orphaned_at(at: datetime, lease_s: float) -> Any:
    return (Execution.status == "running") & _stale(at, lease_s)


def _claimed_undo() -> Any:
    """A person's rollback that a worker has taken (one still queued has no worker)."""
    return (Execution.status == "rolling_back") & Execution.worker.is_not(None)


def _rollback_in_flight(execution_id: int) -> Any:
    """A rollback step stored `running`: some worker was undoing this execution."""
    return (
        select(ExecutionStep.id)
        .where(
            ExecutionStep.execution_id == execution_id,
            ExecutionStep.phase == "rollback",
            ExecutionStep.status == "running",
        )
        .exists()
    )


def _busy(session: Session, where: Any = None) -> list[int]:
    """Executions being run or undone (a person's rollback, or a failed run's own), as
    two indexed lookups: by status, and by a rollback step stored `running`."""
    where = true() if where is None else where
    by_status = select(Execution.id).where((Execution.status == "running") | _claimed_undo(), where)
    by_step = (
        select(Execution.id)
        .join(ExecutionStep, ExecutionStep.execution_id == Execution.id)
        .where(ExecutionStep.status == "running", ExecutionStep.phase == "rollback", where)
    )
    return sorted(set(session.scalars(by_status)) | set(session.scalars(by_step)))


def orphaned(session: Session, at: datetime, lease_s: float) -> list[int]:
    """Executions whose worker stopped beating for longer than the lease while running
    their steps or undoing them."""
    return _busy(session, _stale(at, lease_s))


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
        waiting = (Execution.status == "rolling_back") & Execution.worker.is_(None)
        return list(s.scalars(select(Execution.id).where(waiting)))


def _take_over_rollback(
    db: Database, execution_id: int, at: datetime, lease_s: float, worker: str
) -> bool:
    """Claim an execution whose undoing worker died: one winner."""
    with db.session() as s:
        undoing = _claimed_undo() | _rollback_in_flight(execution_id)
        claim = (
            update(Execution)
            .where(
                Execution.id == execution_id,
                Execution.status != "running",
                _stale(at, lease_s),
                undoing,
            )
            .values(worker=worker, heartbeat_at=at)
            .execution_options(synchronize_session=False)
        )
        return s.execute(claim).rowcount == 1


def _interrupt_rollback(s: Session, execution_id: int, at: datetime) -> Execution:
    """The worker undoing this execution died: nobody knows how far the undo got, so it
    is not re-run; the step in flight is marked interrupted and a person is called."""
    lock_row(s, Execution, execution_id)  # the execution's row first, as every writer
    note = "\n[the worker running this step stopped]"
    s.execute(
        update(ExecutionStep)
        .where(
            ExecutionStep.execution_id == execution_id,
            ExecutionStep.phase == "rollback",
            ExecutionStep.status == "running",  # a step that did end keeps its ending
        )
        .values(
            status="interrupted",
            finished_at=at,
            output=func.coalesce(ExecutionStep.output, "") + note,
        )
        .execution_options(synchronize_session=False)
    )
    execution = s.get(Execution, execution_id)
    why = "the worker undoing this execution stopped mid-rollback: not re-run"
    if execution.status == "rolling_back":
        _finish(s, execution, "failed", f"rollback interrupted: {why}", at)
    else:
        s.flush()  # the execution's row before the audit chain's lock
    _escalated(s, execution.id, at, f"{why}; the undo may be partial, check the target")
    return execution


class Heartbeat:
    """Beats for every execution this process is running, in one statement, so other
    workers and the scheduler can tell it is alive (and take over when it is not)."""

    def __init__(self, db: Database, now: Clock, worker: str, every_s: float) -> None:
        self.db, self.now, self.worker, self.every_s = db, now, worker, every_s
        self._held: Counter[int] = Counter()  # a redelivered copy may hold it a second time
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, execution_id: int) -> Iterator[None]:
        with self._lock:
            self._held[execution_id] += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="baton-heartbeat")
                self._thread.daemon = True
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held[execution_id] -= 1
                if self._held[execution_id] <= 0:
                    del self._held[execution_id]

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.beat()
            except Exception:  # a locked or lost database must not end the beating
                log.exception("heartbeat failed; retrying")

    def beat(self) -> None:
        held = self.held()
        if held:
            with self.db.session() as s:
                s.execute(
                    update(Execution)
                    .where(Execution.id.in_(held), Execution.worker == self.worker)
                    .values(heartbeat_at=self.now())
                )

    def close(self) -> None:
        self._stop.set()


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
