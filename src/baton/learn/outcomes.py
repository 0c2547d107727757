"""Learning from how an execution ended: its runbook's track record, its circuit breaker,
and whether a person must hear about it.

Runs inside the transaction that records the ending, so an ending is learned exactly
once; what to tell people is returned, to be said once that transaction committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.govern import breaker
from baton.govern.escalation import Notice, Raised, escalate
from baton.kernel.enums import BAD_ENDING
from baton.learn.kpis import FinishedRun, record_outcome
from baton.store.models import Override


class Ending(FinishedRun, Protocol):
    """A finished execution as learning reads it (an Execution row, or the executor's
    record of the ending it just wrote)."""

    runbook_version: str
    params: dict[str, Any]
    summary: str


@dataclass
class Learned:
    """What one ending taught, and what to tell people about it, in order."""

    finished: dict[str, Any]
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def add(self, raised: Raised) -> None:
        self.notices += raised.notices
        if raised.news:
            self.notes.append(("escalation", raised.note()))


def learn_from(session: Session, execution: Ending, at: datetime) -> Learned:
    """Feed a finished execution back: track record, breaker, escalation."""
    record = record_outcome(session, execution, at)
    learned = Learned(
        {
            "execution": execution.id,
            "runbook": execution.runbook_id,
            "status": execution.status,
            "verified": execution.verified,
            "summary": execution.summary,
            "track_record": record,
        }
    )
    service = execution.params.get("service")
    if breaker.count_ending(session, execution, at):
        rid = execution.runbook_id
        learned.notes.append(("breaker.opened", {"runbook": rid}))
        reason = f"circuit breaker of {rid} opened after repeated failures"
        learned.add(escalate(session, f"runbook:{rid}", service, reason, at))
    # A run cancelled or rolled back by a person (or by a person's pause) is that
    # person's own decision and pages nobody.
    if execution.status in BAD_ENDING and not _overridden(session, execution.id):
        reason = f"{execution.runbook_id} ended {execution.status}: {execution.summary}"
        learned.add(escalate(session, f"execution:{execution.id}", service, reason, at))
    return learned


def _overridden(session: Session, execution_id: int) -> bool:
    """A person stopped or undid it: their decision, nobody to page."""
    found = session.scalar(select(Override.id).where(Override.execution_id == execution_id))
    return found is not None
