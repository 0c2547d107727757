"""Track records: each runbook's finished runs, kept as running counts as they end.

The KPIs themselves are in `figures`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from baton.kernel.audit import Actor, append, serialize
from baton.kernel.enums import TRACKED_ENDING
from baton.store.db import lock_row
from baton.store.models import (
    Execution,
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
