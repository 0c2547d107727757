"""Running one execution's steps (or rollback steps): each persisted before it runs and
after, with its secrets injected, its timeout and its retries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from baton.act import confine
from baton.act.actions import ActionContext, Outcome, pause, run_action
from baton.act.executions import EXECUTOR
from baton.act.locks import execution_then_chain
from baton.act.runbook import render
from baton.act.secrets import known, masked, resolve
from baton.act.secrets import names as secret_names
from baton.kernel.audit import append
from baton.store.db import Database
from baton.store.models import Execution, ExecutionStep

Clock = Callable[[], datetime]
TAKEN_OVER = "another worker took this execution over"

# Core statements built once: every execution runs them (ORM statements cost far more).
_RUNS, _STEPS = Execution.__table__, ExecutionStep.__table__
_BEAT = (
    _RUNS.update()
    .where(_RUNS.c.id == bindparam("run"))
    .values(heartbeat_at=bindparam("at"))
    .returning(  # what a stop check and an ending need to know
        _RUNS.c.status,
        _RUNS.c.worker,
        _RUNS.c.cancel_requested,
        _RUNS.c.runbook_id,
        _RUNS.c.runbook_version,
        _RUNS.c.params,
    )
)
_BEAT_MINE = _BEAT.where(_RUNS.c.worker == bindparam("by"))
_STEP_INSERT = _STEPS.insert()
_STEP_END = (
    _STEPS.update()
    .where(_STEPS.c.id == bindparam("step"), _STEPS.c.status == "running")
    .values(status=bindparam("ended"), output=bindparam("out"), finished_at=bindparam("at"))
)


class LostClaim(Exception):
    """This worker no longer holds the execution (its heartbeat lapsed and another took
    over): it must stop writing anything about it."""


def next_seq(execution: Execution) -> int:
    """The number of the next step row (steps, verify checks and rollbacks share one)."""
    return max((st.seq for st in execution.steps), default=0) + 1


def step_row(
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


def hold(s: Session, execution_id: int, at: datetime, worker: str | None) -> Any:
    """Open a step boundary: beat on the execution's row, then take the audit chain.
    With `worker`, only while that worker still holds the execution (else LostClaim).
    Returns the execution's state (a RunState) as the write left it."""
    values = {"run": execution_id, "at": at, "by": worker}
    state = execution_then_chain(s, _BEAT if worker is None else _BEAT_MINE, values)
    if state is None:
        raise LostClaim(execution_id)
    return state


def _start_step(s: Session, row: ExecutionStep) -> int:
    """Persist a step as `running` before it runs, so a crash leaves evidence of the step
    that was in flight (and it is never re-run blindly). Returns the row's id."""
    values = {c.name: getattr(row, c.name) for c in _STEPS.columns if c.name != "id"}
    return int(s.execute(_STEP_INSERT, values).inserted_primary_key[0])


def end_step(
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
Settle = Callable[[Session, StepsResult, Any], StepsResult]  # (.., result, held state)


@dataclass(frozen=True)
class Phase:
    """The steps (or rollback steps) of one execution, run in order, each persisted
    before and after it runs. With `worker`, they belong to that worker's claim: losing
    it ends the run (LostClaim).

    One transaction per step boundary: a step's end, the stop check and the next step's
    start commit together; the last step's end commits with `settle`, which may turn
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
    specs: dict[str, Any] = field(default_factory=dict)  # the runbook's params: confined
    # ones are checked again just before each step

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
        row = step_row(self.execution_id, seq, self.name, item, shown, self.now(), self.params)
        row.id = _start_step(s, row)
        return row

    def run(
        self,
        steps: list[dict[str, Any]],
        first_seq: int,
        settle: Settle | None = None,
        started: ExecutionStep | str | None = None,
    ) -> StepsResult:
        """`started`: the first step's boundary, already written by the caller."""
        seq, completed = first_seq, 0
        ended: tuple[ExecutionStep, dict[str, Any], Outcome, datetime] | None = None

        def finish(s: Session, result: StepsResult, state: Any) -> StepsResult:
            if ended is not None:
                end_step(s, *ended)
            return settle(s, result, state) if settle else result

        def named(item: dict[str, Any]) -> str:
            return repr(render(item["name"], self.params))

        for item in steps:
            opened, started = started, None
            if not isinstance(opened, ExecutionStep):
                with self.db.session() as s:
                    state = hold(s, self.execution_id, self.now(), self.worker)
                    if opened is None:
                        if ended is not None:
                            end_step(s, *ended)
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
                    state = hold(s, self.execution_id, self.now(), self.worker)
                    return finish(s, result, state)
        with self.db.session() as s:
            state = hold(s, self.execution_id, self.now(), self.worker)
            return finish(s, StepsResult(True, seq, completed, "all steps ok"), state)


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
