"""Task dispatch: what the task backend runs (executions, rollbacks, message delivery),
what is handed to it and when, and saying what an ending taught once it committed.

The backend may be threads in this process or Celery workers elsewhere; the handlers
registered here are the same either way.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from baton.act import executions, rollback, verification, worker
from baton.act.actions import ActionContext
from baton.act.heartbeat import Heartbeat
from baton.act.versions import get_version
from baton.govern import killswitch, notifications
from baton.govern.escalation import Notice, Raised
from baton.kernel.audit import Actor
from baton.kernel.clock import Clock
from baton.learn.outcomes import Learned, learn_from
from baton.runtime import outbox
from baton.runtime.config import LiveConfig
from baton.runtime.notify import deliver, group_message
from baton.runtime.pipeline import Observer
from baton.runtime.settings import Settings
from baton.runtime.tasks import TaskBackend
from baton.store.db import Database
from baton.store.models import Execution, Proposal

SUBMITTED_KEPT = 10_000  # remote starts are never seen here: forget the oldest past this


class Dispatch:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        backend: TaskBackend,
        config: LiveConfig,
        heartbeat: Heartbeat,
        worker: str,
        targets: dict[str, Any],
        observer: Observer | None,
    ) -> None:
        self.settings, self.db, self.clock, self.backend = settings, db, clock, backend
        self.config, self.heartbeat, self.worker = config, heartbeat, worker
        self.targets, self.observer = targets, observer
        # handed to the backend and not seen starting here: id → when (monotonic)
        self._submitted: dict[int, float] = {}
        self._submitted_lock = threading.Lock()
        backend.register("execute", self.execute)
        backend.register("rollback", self.rollback)
        backend.register("outbox", self.deliver_outbox)
        backend.register("notify_group", self.notify_group)

    def note(self, kind: str, data: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer(kind, data)

    def action_context(self) -> ActionContext:
        return ActionContext(targets=self.targets, sleep=self.clock.sleep)

    # --- queueing and handing over -----------------------------------------------------
    def queue(
        self,
        session: Session,
        proposal: Proposal,
        decision_id: int,
        at: datetime,
        requested_by: Actor,
        *,
        params: dict[str, Any] | None = None,
        not_before: datetime | None = None,
    ) -> Execution | None:
        """Create the execution a decision allowed (None if the same one already exists)."""
        runbook = get_version(session, proposal.runbook_id, proposal.runbook_version)
        chosen = proposal.params if params is None else params
        execution, created = executions.create_execution(
            session,
            global_per_hour=self.config.policy.max_runs_per_hour,
            runbook=runbook,
            params=chosen,
            incident_id=proposal.incident_id,
            decision_id=decision_id,
            at=at,
            requested_by=requested_by,
            not_before=not_before,
        )
        if not created:
            return None
        self.note(
            "execution.queued",
            {
                "execution": execution.id,
                "runbook": runbook.id,
                "params": chosen,
                "not_before": not_before,
                "proposal": proposal.id,
                "by": requested_by.name if requested_by.kind == "human" else None,
            },
        )
        return execution

    def start_due(self) -> int:
        """Hand due executions, and those whose worker died, to the backend.

        Each is submitted once: one still waiting in the queue is not submitted again on
        the next tick. A remote worker's start is not seen here, so after a lease the
        execution may be submitted again; the executor's claim makes that harmless.
        """
        at, mine = self.clock.now(), self.heartbeat.held()
        with self.db.session() as s:
            orphans = executions.orphaned(s, at, self.settings.execution_lease_s)
            ids = executions.due(s, at) + [o for o in orphans if o not in mine]
        return self.submit(ids)

    def submit(self, ids: list[int]) -> int:
        fresh, now = [], time.monotonic()
        # a local backend's starts are seen here: a submitted id is still waiting its turn
        again = None if self.backend.local else self.settings.execution_lease_s
        with self._submitted_lock:
            for i in ids:
                since = self._submitted.get(i)
                if since is None or (again is not None and now - since > again):
                    self._submitted[i] = now
                    fresh.append(i)
            if len(self._submitted) > SUBMITTED_KEPT:
                lease = self.settings.execution_lease_s
                self._submitted = {k: v for k, v in self._submitted.items() if now - v <= lease}
        for execution_id in fresh:
            self.backend.submit("execute", {"execution_id": execution_id})
        return len(fresh)

    def roll_back(self, execution_id: int, why: str) -> None:
        self.backend.submit("rollback", {"execution_id": execution_id, "why": why})

    def send(self, notices: list[Notice]) -> None:
        """The notices are already in the outbox (written with the escalation); ask for
        delivery now rather than at the next tick."""
        if notices:
            self.backend.submit("outbox", {})

    def raised(self, raised: list[Raised]) -> int:
        """Say escalations that are news, and deliver their messages; returns how many
        messages were handed over."""
        notices = []
        for item in raised:
            if item.news:
                self.note("escalation", item.note())
            notices += item.notices
        self.send(notices)
        return len(notices)

    def flush_notifications(self) -> int:
        """Hand the notification groups that are due to the backend for delivery."""
        with self.db.session() as s:
            due = notifications.flush(s, self.config.routing, self.clock.now())
        for notification in due:
            self.backend.submit("notify_group", notification)
        return len(due)

    # --- what the backend runs ---------------------------------------------------------
    def execute(self, payload: dict[str, Any]) -> None:
        execution_id = int(payload["execution_id"])
        with self._submitted_lock:
            self._submitted.pop(execution_id, None)

        def paused(s: Session, state: worker.RunState) -> str | None:
            service = state.params.get("service")
            scope = killswitch.paused_scope(s, state.runbook_id, service)
            return f"automation paused ({scope})" if scope else None

        learned: list[Learned] = []
        with self.heartbeat.holding(execution_id):
            status = worker.run_execution(
                self.db,
                execution_id,
                self.action_context(),
                self.clock.now,
                paused,
                worker=self.worker,
                lease_s=self.settings.execution_lease_s,
                learn=lambda s, execution: learned.append(
                    learn_from(s, execution, self.clock.now())
                ),
            )
        self.note("execution.ran", {"execution": execution_id, "status": status})
        for lesson in learned:  # only what this call ended: a redelivery learns nothing
            self.tell(lesson)

    def rollback(self, payload: dict[str, Any]) -> None:
        execution_id = int(payload["execution_id"])
        with self.heartbeat.holding(execution_id):
            ended = rollback.roll_back(
                self.db,
                execution_id,
                self.action_context(),
                self.clock.now,
                payload.get("why", "a human asked for a rollback"),
                self.worker,
            )
        if ended is not None:  # a redelivered request did nothing, so learns nothing
            self.learn(execution_id)

    def learn(self, execution_id: int) -> None:
        """Learn from an execution that ended outside a worker's run (verification, a
        person's rollback), in a transaction of its own."""
        with self.db.session() as s:
            lesson = learn_from(s, s.get(Execution, execution_id), self.clock.now())
        self.tell(lesson)

    def tell(self, lesson: Learned) -> None:
        for kind, data in lesson.notes:
            self.note(kind, data)
        self.note("execution.finished", lesson.finished)
        self.send(lesson.notices)

    def verify(self) -> list[int]:
        """Poll the checks of executions that finished their steps; learn from those that
        concluded."""
        finished = verification.check_verifications(
            self.db, self.action_context(), self.clock.now, self.heartbeat.holding, self.worker
        )
        for execution_id in finished:
            self.learn(execution_id)
        return finished

    def deliver_outbox(self, payload: dict[str, Any] | None = None) -> int:
        """Deliver the outbox's due messages (the task, and the tick's retry job), with
        the live settings (a changed Slack channel or API applies without a restart)."""
        return outbox.deliver_due(self.db, self.config.settings, self.clock.now)

    def notify_group(self, notification: dict[str, Any]) -> None:
        """Every channel of the receiver is tried; the group is settled as delivered only
        if all of them took it, otherwise it is said again at its next group_interval."""
        ok = False
        try:
            message = group_message(notification)
            results = [  # a list, not all(): every channel is tried
                deliver(
                    self.db,
                    self.settings,
                    channel,
                    message,
                    "notification.delivery",
                    self.clock.now(),
                )
                for channel in notification["channels"]
            ]
            ok = all(results)
        finally:  # settled whatever happened, so a failure is said again next interval
            with self.db.session() as s:
                notifications.delivered(s, notification, ok)
