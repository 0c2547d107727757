"""The heartbeat: a list of named jobs, each running one domain's rule on a schedule.

`baton serve` ticks every few seconds of real time; the demo ticks every simulated step.
A job is a name, the domain whose rule it runs, and a function; the tick runs them in
order and reports what each one did, so adding work to the heartbeat is adding a job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from baton.govern import escalation
from baton.govern import flows as governance
from baton.kernel import audit
from baton.kernel.clock import Clock
from baton.runtime.config import LiveConfig
from baton.runtime.dispatch import Dispatch
from baton.runtime.drain import Drain
from baton.runtime.pipeline import Observer, Pipelines, StageContext
from baton.runtime.watch import Watch
from baton.store.db import Database
from baton.triage import schedule


@dataclass(frozen=True)
class Job:
    name: str
    owner: str  # the domain whose rule the job runs
    run: Callable[[], Any]


@dataclass
class TickReport:
    """What each job of one tick returned, by job name."""

    results: dict[str, Any] = field(default_factory=dict)

    @property
    def notifications(self) -> int:
        return self.results.get("notification groups", 0)


class Scheduler:
    def __init__(self, jobs: list[Job]) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {names}")
        self.jobs = jobs

    def tick(self) -> TickReport:
        report = TickReport()
        for job in self.jobs:
            report.results[job.name] = job.run()
        return report


def every(clock: Clock, period: timedelta, run: Callable[[], Any]) -> Callable[[], Any]:
    """`run` at most once per `period` of the clock's time (None on the ticks between),
    for work that reads a lot and changes slowly, like the trust ledger."""
    last: list[Any] = []

    def throttled() -> Any:
        now = clock.now()
        if last and now - last[0] < period:
            return None
        last[:] = [now]
        return len(run())

    return throttled


def standard_jobs(
    db: Database,
    clock: Clock,
    config: LiveConfig,
    drain: Drain,
    pipelines: Pipelines,
    dispatch: Dispatch,
    observer: Observer | None,
    triage_settle: timedelta,
    watch: Watch,
) -> list[Job]:
    """The platform's heartbeat, in order: signals first, then people's queues, then
    what runs, then what is said."""

    def expire_approvals() -> int:
        at = clock.now()
        with db.session() as s:
            raised = [
                escalation.escalate(
                    s,
                    f"approval:{approval.id}",
                    governance.params_of(s, approval).get("service"),
                    "an approval waited too long and expired",
                    at,
                )
                for approval in governance.expire_approvals(s, at)
            ]
        return dispatch.raised(raised)

    def triage() -> int:
        at = clock.now()
        with db.session() as s:
            due = schedule.due(s, at, triage_settle)
            if due:
                pipelines.decide.run(StageContext(s, at, observer), due)
        return len(due)

    def unacknowledged() -> int:
        with db.session() as s:
            raised = escalation.unacknowledged(s, clock.now())
        return dispatch.raised(raised)

    def witness() -> None:
        with db.session() as s:  # the audit head, to the witness outside the database
            audit.witness(s, clock.now())

    def advance_escalations() -> int:
        with db.session() as s:
            notices = escalation.advance(s, clock.now())
        dispatch.send(notices)
        return len(notices)

    return [
        Job("metric pull", "sense", watch.pull),
        Job("detection", "detect", watch.detect),
        Job("inbox", "sense", drain.catch_up),
        Job("inbox retention", "sense", drain.prune_inbox),
        Job("configuration", "runtime", config.follow),
        Job("held alerts", "correlate", drain.release),
        Job("approval expiry", "govern", expire_approvals),
        Job("triage", "triage", triage),
        Job("acknowledgement timeout", "govern", unacknowledged),
        Job("escalation levels", "govern", advance_escalations),
        Job("due executions", "act", dispatch.start_due),
        Job("verification", "act", dispatch.verify),
        Job("notification groups", "govern", dispatch.flush_notifications),
        Job("outbox", "runtime", dispatch.deliver_outbox),
        Job("audit witness", "kernel", witness),
    ]
