"""One running Baton: database, clock, runbooks, policy, task backend and targets.

The Platform runs the stage pipelines (`pipeline.py`), the heartbeat (`tick`) that
triages, verifies and escalates, and the operations people use to hold the baton:
approve, reject, override, pause, resume, and change the policy.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from baton.act import executor
from baton.act.actions import ActionContext
from baton.act.confine import Scope
from baton.act.limits import LimitReached
from baton.act.runbook import Catalogue, Runbook, load_dir, resolve_params
from baton.act.service import get_version, sync_catalogue
from baton.correlate import topology
from baton.correlate.config import load_config
from baton.govern import breaker, escalation, killswitch, notifications, overrides
from baton.govern import flows as governance
from baton.govern.config import PolicyConfig, load_policy, plan_policy, write_policy
from baton.govern.oncall import DEFAULT_ACK_TIMEOUT_S, escalation_policy_for
from baton.govern.routes import Routing, load_routing
from baton.kernel.audit import Actor, append
from baton.kernel.clock import Clock
from baton.learn.kpis import record_outcome
from baton.runtime.intake import Intake
from baton.runtime.notify import deliver, escalation_message, group_message
from baton.runtime.pipeline import (
    INTAKE,
    ActStage,
    CorrelateStage,
    DecideStage,
    MultiStage,
    Observer,
    SenseStage,
    StageContext,
    SuppressStage,
    TriageStage,
)
from baton.runtime.settings import Settings
from baton.runtime.tasks import TaskBackend, make_backend
from baton.sense import inbox, normalize, receivers
from baton.servicedesk.tickets import file_ticket
from baton.store.db import Database
from baton.store.migrate import upgrade
from baton.store.models import (
    Approval,
    Decision,
    Execution,
    Incident,
    Override,
    Proposal,
    Ticket,
)

log = logging.getLogger("baton.platform")
GRAPH_TTL_S = 30.0
# Endings a person must hear about. A run cancelled or rolled back by a person (or by a
# person's pause) is that person's own decision and pages nobody.
BAD_ENDINGS = ("failed", "rolled_back", "interrupted")


@dataclass
class TickReport:
    executions_started: int = 0
    executions_finished: list[int] = field(default_factory=list)
    approvals_expired: int = 0
    escalations: int = 0
    notifications: int = 0


class Platform:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        targets: dict[str, Any] | None = None,
        backend: TaskBackend | None = None,
        observer: Observer | None = None,
        triage_settle: timedelta = timedelta(seconds=60),
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.db = Database(settings.db_url)
        self.targets = targets or {}
        self.backend = backend or make_backend(settings)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.heartbeat = executor.Heartbeat(
            self.db, clock.now, self.worker, settings.execution_lease_s / 3
        )
        self.intake = Intake(self.db, clock)
        self._processing = False  # a `process_until` thread drains the inbox
        self.observer = observer
        self.triage_settle = triage_settle
        self.catalogue = Catalogue()
        self.policy = PolicyConfig()
        self.routing: Routing | None = None  # notifications.yaml; None: no notifications
        self.correlation = load_config(settings.correlation_path)
        self._graph: tuple[float, topology.Topology] | None = None
        self._policy_stamp: float | None = None
        # handed to the backend and not seen starting here: id → when (monotonic)
        self._submitted: dict[int, float] = {}
        self._submitted_lock = threading.Lock()
        self.ingest_pipeline = MultiStage(
            [SenseStage(), SuppressStage(), CorrelateStage()], name="ingest"
        )
        # Held and muted alerts are looked at again on every heartbeat, not only when
        # new alerts arrive: a transient hold ends whether or not anything else happens.
        self.release_pipeline = MultiStage([SuppressStage(), CorrelateStage()], name="release")
        self.decide_pipeline = MultiStage([TriageStage(), DecideStage(), ActStage()], name="decide")
        self.backend.register("execute", self._execute_task)
        self.backend.register("rollback", self._rollback_task)
        self.backend.register("notify", self._notify_task)
        self.backend.register("notify_group", self._notify_group_task)

    # --- setup -----------------------------------------------------------------------
    def start(self, migrate: bool = True) -> Platform:
        """Migrate the schema, load runbooks and policy, recover from a restart."""
        if migrate:
            upgrade(self.db.url)
        self.reload_runbooks()
        self.recover()
        return self

    def recover(self) -> None:
        """After a restart: go on with executions whose worker died; deliver queued ones.

        In the embedded deployment (SQLite, tasks in this process) nothing else can be
        running them, so every `running` execution is taken over at once, and a person's
        rollback still waiting for a worker is asked again (the queue it waited in was in
        memory); elsewhere the scheduler takes over those whose heartbeat has gone stale
        (see `_start_due`) and the broker keeps waiting requests.
        Taking over re-runs no finished step and no step that is not idempotent.
        """
        if self.db.is_sqlite and self.backend.local:
            executor.forget_workers(self.db)
            for execution_id in executor.undos_waiting(self.db):  # their queue was memory
                why = "a person's rollback, asked before a restart"
                self.backend.submit("rollback", {"execution_id": execution_id, "why": why})
        self._start_due()

    def reload_runbooks(self, actor: Actor = INTAKE) -> Catalogue:
        """Load runbooks and policy from disk; audit what changed and who asked."""
        path = self.settings.runbooks_path
        catalogue = load_dir(path)
        policy = load_policy(path / "policy.yaml")
        self.routing = load_routing(path / "notifications.yaml")
        before = {rb.id: rb.version for rb in self.catalogue}
        after = {rb.id: rb.version for rb in catalogue}
        changed = sorted(k for k in after if before.get(k) != after[k])
        removed = sorted(set(before) - set(after))
        self.catalogue, self.policy = catalogue, policy
        self._policy_stamp = self._policy_mtime()
        with self.db.session() as s:
            sync_catalogue(s, catalogue, self.clock.now())
            append(
                s,
                actor=actor,
                action="runbooks.loaded",
                subject="runbooks",
                at=self.clock.now(),
                inputs={
                    "path": str(path),
                    "versions": after,
                    "policy": policy.model_dump(mode="json"),
                    "errors": [str(e) for e in catalogue.errors],
                },
                decision=f"{len(after)} loaded, {len(catalogue.errors)} rejected",
                rationale=f"new or changed: {', '.join(changed) or 'none'}; "
                f"removed: {', '.join(removed) or 'none'}",
            )
        return catalogue

    def _policy_mtime(self) -> float | None:
        path = self.settings.runbooks_path / "policy.yaml"
        return path.stat().st_mtime if path.exists() else None

    def _follow_policy_file(self) -> None:
        """Pick up a policy another replica (or an editor) wrote; a bad file keeps the old
        policy and is logged rather than stopping the heartbeat."""
        stamp = self._policy_mtime()
        if stamp == self._policy_stamp:
            return
        self._policy_stamp = stamp
        try:
            self.policy = load_policy(self.settings.runbooks_path / "policy.yaml")
        except ValueError as exc:
            log.error("policy file not applied", extra={"problem": str(exc)})

    def close(self) -> None:
        self.intake.close()
        self.backend.close()
        self.heartbeat.close()
        self.db.dispose()

    def notify(self, kind: str, data: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer(kind, data)

    def graph(self, session: Session) -> topology.Topology:
        """The service graph, cached for a short while (other replicas may change it)."""
        now = time.monotonic()
        if self._graph is None or now - self._graph[0] > GRAPH_TTL_S:
            self._graph = (now, topology.load_topology(session))
        return self._graph[1]

    def register_services(self, defs: list[topology.ServiceDef], actor: Actor = INTAKE) -> int:
        """Declare services (upsert) and audit who did, in one transaction."""
        with self.db.session() as s:
            n = topology.upsert_services(s, defs)
            append(
                s,
                actor=actor,
                action="services.declared",
                subject="services",
                at=self.clock.now(),
                inputs={"services": [d.name for d in defs]},
                decision="upserted",
            )
        self._graph = None
        return n

    def scope(self, runbook: Runbook, graph: topology.Topology) -> Scope:
        """What a runbook's confined params may name: the policy's roots and allow-lists
        (else the runbook's) and the catalogue's hosts."""
        return Scope.of(runbook.params, self.policy.confinement(runbook.id), graph.hosts)

    def action_context(self) -> ActionContext:
        return ActionContext(targets=self.targets, sleep=self.clock.sleep)

    # --- signals in ------------------------------------------------------------------
    def ingest(
        self,
        events: list[normalize.EventIn],
        *,
        at: datetime | None = None,
        batch: int | None = None,
    ) -> dict[str, int]:
        """Store and correlate events in one transaction; returns counts once committed.

        With `batch` (an inbox row) the batch is claimed in the same transaction, so its
        effects and "processed" land together; one already processed is skipped.
        """
        at = at or self.clock.now()
        with self.db.session() as s:
            if batch is not None and not inbox.claim(s, batch, self.clock.now()):
                return {"accepted": 0, "incident_changes": 0}
            changes = self._correlate(s, self.ingest_pipeline, list(events), at)
        return {"accepted": len(events), "incident_changes": len(changes)}

    def _correlate(
        self, s: Session, pipeline: MultiStage, events: list[Any], at: datetime
    ) -> list[Any]:
        """Run a sense/suppress/correlate pipeline; changed incidents join their
        notification groups in the same transaction."""
        changes = pipeline.run(StageContext(s, at, self), events)
        notifications.track(s, self.routing, [c.incident_id for c in changes], at)
        return changes

    def ingest_alertmanager(self, payload: Any, source: str = "alertmanager") -> dict[str, int]:
        return self.ingest_payload(receivers.alertmanager_api, payload, source)

    def ingest_generic(self, payload: Any, source: str = "generic") -> dict[str, int]:
        return self.ingest_payload(receivers.generic, payload, source)

    def ingest_payload(
        self, parse: Callable[[bytes, datetime, str], Any], payload: Any, source: str
    ) -> dict[str, int]:
        """In-process intake (sandbox, benches, tests): parse, normalise and process at
        once, skipping the inbox."""
        batch = parse(orjson.dumps(payload), self.clock.now(), source)
        return self.ingest([normalize.EventIn.model_validate(e) for e in batch.events])

    def process_inbox(self, limit: int = 20) -> int:
        """Process up to `limit` acknowledged batches, oldest first; returns how many.

        Each batch is processed at the time it was received. A batch that cannot be
        processed is set aside with its error (kept for inspection) rather than
        blocking every batch behind it; a database that is busy or gone only defers it.
        """
        with self.db.session() as s:
            waiting = inbox.pending(s, limit)
        for item in waiting:
            try:
                with self.intake.turn():
                    self.ingest(item.events(), at=item.received_at, batch=item.id)
            except OperationalError:  # locked, deadlocked or disconnected: try again later
                log.warning("inbox batch deferred", extra={"batch": item.id}, exc_info=True)
                break
            except Exception as exc:
                log.exception("inbox batch failed", extra={"batch": item.id})
                with self.db.session() as s:
                    inbox.claim(s, item.id, self.clock.now(), error=repr(exc)[:2000])
        return len(waiting)

    def process_until(self, stop: threading.Event) -> None:
        """Process the inbox as batches are committed, until `stop` is set (`baton serve`)."""
        seen, self._processing = 0, True
        while not stop.is_set():
            try:
                if self.process_inbox() == 0:
                    seen = self.intake.wait_for_commit(seen, timeout=1.0)
            except Exception:  # keep processing alive; the error is logged
                log.exception("inbox processing failed")
                stop.wait(1.0)

    def prune_inbox(self) -> int:
        """Enforce raw-event retention (age and count) on processed batches."""
        cfg = self.settings
        with self.db.session() as s:
            return inbox.prune(
                s,
                self.clock.now(),
                timedelta(seconds=cfg.inbox_max_age_s),
                cfg.inbox_max_events,
            )

    def file_ticket(self, reporter: str, subject: str, body: str) -> Ticket:
        at = self.clock.now()
        with self.db.session() as s:
            ticket = file_ticket(
                s, reporter=reporter, subject=subject, body=body, graph=self.graph(s), at=at
            )
        self.notify(
            "ticket",
            {
                "ticket": ticket.id,
                "subject": ticket.subject,
                "category": ticket.category,
                "incident": ticket.incident_id,
            },
        )
        return ticket

    # --- the heartbeat ---------------------------------------------------------------
    def due_for_triage(self, session: Session, at: datetime) -> list[Incident]:
        rows = session.scalars(
            select(Incident)
            .where(
                Incident.status.in_(("open", "acknowledged")),
                Incident.origin_service.is_not(None),
                Incident.opened_at <= at - self.triage_settle,
                Incident.triage_after.is_(None) | (Incident.triage_after <= at),
            )
            .order_by(Incident.id)
        )
        return [i for i in rows if i.origin_service != i.triaged_origin]

    def tick(self) -> TickReport:
        """Triage, decide, start what is due, verify, learn, expire and escalate."""
        report = TickReport()
        if not self._processing:  # else `process_until` is already on it
            self.process_inbox(limit=1000)
        self.prune_inbox()
        at = self.clock.now()
        self._follow_policy_file()
        notices: list[escalation.Notice] = []
        with self.intake.turn(), self.db.session() as s:  # like processing, after intake
            self._correlate(s, self.release_pipeline, [], at)
        with self.db.session() as s:
            for approval in governance.expire_approvals(s, at):
                notices += self._escalate(
                    s,
                    f"approval:{approval.id}",
                    self._service_of(s, approval),
                    "an approval waited too long and expired",
                    at,
                )
            due = self.due_for_triage(s, at)
            if due:
                self.decide_pipeline.run(StageContext(s, at, self), due)
            notices += self._unacknowledged(s, at)
            notices += escalation.advance(s, at)
        report.executions_started = self._start_due()
        finished = executor.check_verifications(
            self.db, self.action_context(), self.clock.now, self.heartbeat.holding, self.worker
        )
        for execution_id in finished:
            self._learn(execution_id)
        report.executions_finished = finished
        report.escalations = len(notices)
        self._send(notices)
        report.notifications = self._flush_notifications()
        return report

    def _flush_notifications(self) -> int:
        """Hand the notification groups that are due to the backend for delivery."""
        with self.db.session() as s:
            due = notifications.flush(s, self.routing, self.clock.now())
        for notification in due:
            self.backend.submit("notify_group", notification)
        return len(due)

    def _start_due(self) -> int:
        """Hand due executions, and those whose worker died, to the backend.

        Each is submitted once: one still waiting in the queue is not submitted again on
        the next tick. A remote worker's start is not seen here, so after a lease the
        execution may be submitted again; the executor's claim makes that harmless.
        """
        at, mine = self.clock.now(), self.heartbeat.held()
        with self.db.session() as s:
            orphans = executor.orphaned(s, at, self.settings.execution_lease_s)
            ids = executor.due(s, at) + [o for o in orphans if o not in mine]
        return self._submit(ids)

    def _submit(self, ids: list[int]) -> int:
        fresh, now = [], time.monotonic()
        # a local backend's starts are seen here: a submitted id is still waiting its turn
        again = None if self.backend.local else self.settings.execution_lease_s
        with self._submitted_lock:
            for i in ids:
                since = self._submitted.get(i)
                if since is None or (again is not None and now - since > again):
                    self._submitted[i] = now
                    fresh.append(i)
            if len(self._submitted) > 10_000:  # remote starts are never seen here
                lease = self.settings.execution_lease_s
                self._submitted = {k: v for k, v in self._submitted.items() if now - v <= lease}
        for execution_id in fresh:
            self.backend.submit("execute", {"execution_id": execution_id})
        return len(fresh)

    def _unacknowledged(self, session: Session, at: datetime) -> list[escalation.Notice]:
        notices: list[escalation.Notice] = []
        for inc in session.scalars(select(Incident).where(Incident.status == "open")):
            policy = escalation_policy_for(session, inc.origin_service)
            timeout = timedelta(seconds=policy.ack_timeout_s if policy else DEFAULT_ACK_TIMEOUT_S)
            if inc.opened_at + timeout <= at:
                notices += self._escalate(
                    session,
                    f"incident:{inc.id}",
                    inc.origin_service,
                    f"incident #{inc.id} unacknowledged for "
                    f"{int(timeout.total_seconds() // 60)} min",
                    at,
                )
        return notices

    def _escalate(
        self, session: Session, subject: str, service: str | None, reason: str, at: datetime
    ) -> list[escalation.Notice]:
        esc, notices = escalation.open_escalation(
            session, subject=subject, service=service, reason=reason, at=at
        )
        if notices or esc.created_at == at:
            self.notify(
                "escalation",
                {
                    "escalation": esc.id,
                    "subject": subject,
                    "reason": reason,
                    "notified": esc.notified[-1:],
                },
            )
        return notices

    @staticmethod
    def _service_of(session: Session, approval: Approval) -> str | None:
        return governance.params_of(session, approval).get("service")

    def _send(self, notices: list[escalation.Notice]) -> None:
        for notice in notices:
            self.backend.submit(
                "notify",
                {
                    "escalation_id": notice.escalation_id,
                    "channel": notice.channel,
                    "text": notice.text,
                },
            )

    def _notify_task(self, payload: dict[str, Any]) -> None:
        notice = escalation.Notice(**payload)
        deliver(
            self.db,
            self.settings,
            notice.channel,
            escalation_message(notice),
            "escalation.delivery",
            self.clock.now(),
        )

    def _notify_group_task(self, notification: dict[str, Any]) -> None:
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

    # --- act -------------------------------------------------------------------------
    def queue_execution(
        self,
        session: Session,
        proposal: Proposal,
        decision_id: int,
        at: datetime,
        requested_by: Actor,
        params: dict[str, Any] | None = None,
        not_before: datetime | None = None,
    ) -> Execution | None:
        runbook = get_version(session, proposal.runbook_id, proposal.runbook_version)
        chosen = proposal.params if params is None else params
        execution, created = executor.create_execution(
            session,
            global_per_hour=self.policy.max_runs_per_hour,
            runbook=runbook,
            params=chosen,
            incident_id=proposal.incident_id,
            decision_id=decision_id,
            at=at,
            requested_by=requested_by,
            not_before=not_before,
        )
        if created:
            self.notify(
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
        return execution if created else None

    def _execute_task(self, payload: dict[str, Any]) -> None:
        execution_id = int(payload["execution_id"])
        with self._submitted_lock:
            self._submitted.pop(execution_id, None)

        def paused(s: Session, state: executor.RunState) -> str | None:
            service = state.params.get("service")
            scope = killswitch.paused_scope(s, state.runbook_id, service)
            return f"automation paused ({scope})" if scope else None

        learned: list[tuple[dict[str, Any], list[escalation.Notice]]] = []
        with self.heartbeat.holding(execution_id):
            status = executor.run_execution(
                self.db,
                execution_id,
                self.action_context(),
                self.clock.now,
                paused,
                worker=self.worker,
                lease_s=self.settings.execution_lease_s,
                learn=lambda s, execution: learned.append(self._learn_from(s, execution)),
            )
        self.notify("execution.ran", {"execution": execution_id, "status": status})
        for note, notices in learned:  # only what this call ended: a redelivery learns nothing
            self._tell(note, notices)

    def _rollback_task(self, payload: dict[str, Any]) -> None:
        execution_id = int(payload["execution_id"])
        with self.heartbeat.holding(execution_id):
            ended = executor.roll_back(
                self.db,
                execution_id,
                self.action_context(),
                self.clock.now,
                payload.get("why", "a human asked for a rollback"),
                self.worker,
            )
        if ended is not None:  # a redelivered request did nothing, so learns nothing
            self._learn(execution_id)

    def _learn(self, execution_id: int) -> None:
        with self.db.session() as s:
            learned = self._learn_from(s, s.get(Execution, execution_id))
        self._tell(*learned)

    def _learn_from(
        self, s: Session, execution: Execution | executor.Ended
    ) -> tuple[dict[str, Any], list[escalation.Notice]]:
        """Feed a finished execution back (track record, breaker, escalation) inside the
        caller's transaction; returns what to tell people once it committed."""
        record = record_outcome(s, execution, self.clock.now())
        notices = self._trip_breaker(s, execution)
        if execution.status in BAD_ENDINGS:
            overridden = s.scalar(select(Override.id).where(Override.execution_id == execution.id))
            if overridden is None:
                notices += self._escalate(
                    s,
                    f"execution:{execution.id}",
                    execution.params.get("service"),
                    f"{execution.runbook_id} ended {execution.status}: {execution.summary}",
                    self.clock.now(),
                )
        note = {
            "execution": execution.id,
            "runbook": execution.runbook_id,
            "status": execution.status,
            "verified": execution.verified,
            "summary": execution.summary,
            "trust": record,
        }
        return note, notices

    def _tell(self, note: dict[str, Any], notices: list[escalation.Notice]) -> None:
        self.notify("execution.finished", note)
        self._send(notices)

    def _trip_breaker(
        self, session: Session, execution: Execution | executor.Ended
    ) -> list[escalation.Notice]:
        if execution.status not in breaker.FAILED:  # a success ends any failure streak
            return []
        runbook = get_version(session, execution.runbook_id, execution.runbook_version)
        limit = (runbook.doc.get("limits") or {}).get("breaker_after") if runbook else None
        if not breaker.record_outcome(session, execution.runbook_id, limit, self.clock.now()):
            return []
        self.notify("breaker.opened", {"runbook": execution.runbook_id})
        return self._escalate(
            session,
            f"runbook:{execution.runbook_id}",
            execution.params.get("service"),
            f"circuit breaker of {execution.runbook_id} opened after repeated failures",
            self.clock.now(),
        )

    def close_breaker(self, runbook_id: str, actor: Actor, reason: str) -> None:
        with self.db.session() as s:
            breaker.close(s, runbook_id, actor, reason, self.clock.now())
            escalation.close_for(
                s, f"runbook:{runbook_id}", f"breaker closed by {actor.name}", self.clock.now()
            )

    # --- people hold the baton -------------------------------------------------------
    def approve(
        self, approval_id: int, approver: Actor, reason: str, params: dict[str, Any] | None = None
    ) -> Execution | None:
        """Record an approval (optionally with changed params); queue the run once enough
        distinct people approved what will actually run."""
        at = self.clock.now()
        try:
            execution_id = self._approve(approval_id, approver, reason, params, at)
        except LimitReached as exc:  # the approval stays pending; say so in the ledger
            with self.db.session() as s:
                append(
                    s,
                    actor=approver,
                    action="execution.limited",
                    subject=f"approval:{approval_id}",
                    at=at,
                    decision="refused",
                    rationale=str(exc),
                )
            raise
        if execution_id is None:
            return None
        self._start_due()
        with self.db.session() as s:
            return s.get(Execution, execution_id)

    def _approve(
        self,
        approval_id: int,
        approver: Actor,
        reason: str,
        params: dict[str, Any] | None,
        at: datetime,
    ) -> int | None:
        execution_id = None
        with self.db.session() as s:
            blocked = governance.blocked_reason(s, approval_id, self.policy, at)
            if blocked:
                raise governance.ApprovalError(f"cannot approve now: {blocked}")
            if params:
                approval = s.get(Approval, approval_id)
                proposal = governance.proposal_of(s, approval)
                runbook = get_version(s, proposal.runbook_id, proposal.runbook_version)
                graph = self.graph(s)
                governance.change_params(
                    s,
                    approval_id,
                    params,
                    runbook,
                    env_of=lambda svc: graph.env(svc or ""),
                    policy=self.policy,
                    approver=approver,
                    at=at,
                    scope=self.scope(runbook, graph),
                )
            if governance.approve(s, approval_id, approver, reason, at):
                approval = s.get(Approval, approval_id)
                execution = self.queue_execution(
                    s,
                    governance.proposal_of(s, approval),
                    approval.decision_id,
                    at,
                    approver,
                    params=governance.params_of(s, approval),
                )
                execution_id = execution.id if execution else None
        return execution_id

    def request_run(
        self,
        runbook_id: str,
        params: dict[str, Any],
        requester: Actor,
        reason: str,
        incident_id: int | None = None,
    ) -> dict[str, Any]:
        """A person asks for a runbook to run. It is a proposal like any other: validated,
        decided by the same policy (so it may need someone else's approval), audited."""
        runbook = self.catalogue.get(runbook_id)
        if runbook is None:
            raise LookupError(f"no runbook {runbook_id!r}")
        with self.db.session() as s:
            scope = self.scope(runbook, self.graph(s))
        chosen = resolve_params(
            runbook, origin_service=None, labels={}, overrides=params, scope=scope
        )
        at = self.clock.now()
        with self.db.session() as s:
            if incident_id is not None and s.get(Incident, incident_id) is None:
                raise LookupError(f"no incident {incident_id}")
            proposal = Proposal(
                incident_id=incident_id,
                runbook_id=runbook.id,
                runbook_version=runbook.version,
                params=chosen,
                confidence=1.0,
                rationale=f"requested by {requester.name}: {reason}",
                evidence=[{"kind": "request", "by": requester.name, "reason": reason}],
                proposer=requester.name,
                status="new",
                created_at=at,
            )
            s.add(proposal)
            s.flush()
            append(
                s,
                actor=requester,
                action="run.requested",
                subject=f"proposal:{proposal.id}",
                at=at,
                inputs={"runbook": runbook.id, "params": chosen, "incident": incident_id},
                decision="proposed",
                rationale=reason,
            )
            stage = StageContext(s, at, self)
            [(decision, _)] = DecideStage().run(stage, [proposal])
            queued = ActStage().run(stage, [(decision, proposal)])
            execution = queued[0] if queued else None
            approval = (
                s.scalar(select(Approval).where(Approval.decision_id == decision.id))
                if decision.tier == "approve"
                else None
            )
            due_now = execution is not None and execution.not_before is None
            result = {
                "proposal": proposal.id,
                "tier": decision.tier,
                "reasons": decision.reasons,
                "approval": approval.id if approval else None,
                "execution": execution.id if execution else None,
            }
        if due_now:  # no veto window: straight to the backend, no wait for the next tick
            self._submit([result["execution"]])
        return result

    def reject(self, approval_id: int, approver: Actor, reason: str) -> None:
        with self.db.session() as s:
            governance.reject(s, approval_id, approver, reason, self.clock.now())

    def override(
        self, execution_id: int, kind: str, category: str, reason: str, actor: Actor
    ) -> Execution:
        """Veto (before it starts), cancel (while it runs) or roll back (after) an execution."""
        overrides.validate(kind, category, reason)
        at = self.clock.now()
        with self.db.session() as s:
            if kind == "veto":
                execution = executor.veto(s, execution_id, at)
                self._hold_off_triage(s, execution, at)
            elif kind == "cancel":
                execution = executor.request_cancel(s, execution_id)
            else:
                execution = executor.claim_rollback(s, execution_id, self.clock.now())
            overrides.record(
                s,
                execution_id=execution_id,
                kind=kind,
                category=category,
                reason=reason,
                actor=actor,
                at=at,
            )
        self.notify(
            "override",
            {
                "execution": execution_id,
                "kind": kind,
                "category": category,
                "by": actor.name,
                "reason": reason,
            },
        )
        if kind == "rollback":
            self.backend.submit(
                "rollback",
                {"execution_id": execution_id, "why": f"rolled back by {actor.name}: {reason}"},
            )
        with self.db.session() as s:
            return s.get(Execution, execution.id)

    def _hold_off_triage(self, session: Session, execution: Execution, at: datetime) -> None:
        """After a veto, propose again only once `retriage_after_veto_s` has passed."""
        if execution.incident_id is None:
            return
        incident = session.get(Incident, execution.incident_id)
        incident.triaged_origin = None
        incident.triage_after = at + timedelta(seconds=self.policy.retriage_after_veto_s)

    def pause(self, scope: str, target: str | None, actor: Actor, reason: str) -> list[str]:
        with self.db.session() as s:
            killswitch.pause(s, scope, target, actor, reason, self.clock.now())
            active = killswitch.active(s)
        self.notify("pause", {"scope": scope, "target": target, "by": actor.name, "reason": reason})
        return active

    def resume(self, scope: str, target: str | None, actor: Actor, reason: str) -> list[str]:
        """Lift a pause and look again at the open incidents it held back: those in its
        scope that nothing is fixing and no person is already being asked about."""
        at = self.clock.now()
        with self.db.session() as s:
            killswitch.resume(s, scope, target, actor, reason, at)
            active = killswitch.active(s)
            for incident in self._held_back(s, scope, target):
                incident.triaged_origin = None
        self.notify(
            "resume", {"scope": scope, "target": target, "by": actor.name, "reason": reason}
        )
        return active

    @staticmethod
    def _held_back(session: Session, scope: str, target: str | None) -> list[Incident]:
        held = []
        for incident in session.scalars(select(Incident).where(Incident.status == "open")):
            proposals = list(
                session.scalars(select(Proposal).where(Proposal.incident_id == incident.id))
            )
            in_scope = (
                scope == "all"
                or (scope == "service" and incident.origin_service == target)
                or (scope == "runbook" and any(p.runbook_id == target for p in proposals))
            )
            busy = session.scalar(
                select(Execution.id).where(
                    Execution.incident_id == incident.id,
                    Execution.status.in_(("queued", "running", "verifying", "succeeded")),
                )
            )
            asking = session.scalar(
                select(Approval.id)
                .join(Decision, Decision.id == Approval.decision_id)
                .where(
                    Decision.proposal_id.in_([p.id for p in proposals]),
                    Approval.status == "pending",
                )
            )
            if in_scope and busy is None and asking is None:
                held.append(incident)
        return held

    def update_policy(self, data: Any, actor: Actor) -> tuple[PolicyConfig, str, list[str]]:
        """Validate and write policy.yaml, audit author and diff, apply it at once.

        The audit record is written first and committed only once the file is in place,
        so there is never a change without its record. Returns (policy, diff, warnings).
        """
        path = self.settings.runbooks_path / "policy.yaml"
        policy, diff = plan_policy(path, data)
        unknown = policy.unknown_runbooks({rb.id for rb in self.catalogue})
        warnings = [f"runbooks.{rid}: no such runbook in the catalogue" for rid in unknown]
        if not diff:
            return policy, diff, warnings
        with self.db.session() as s:
            append(
                s,
                actor=actor,
                action="policy.changed",
                subject="policy",
                at=self.clock.now(),
                inputs={"diff": diff, "warnings": warnings},
                decision="applied",
                rationale=f"{diff.count(chr(10))} diff line(s)",
            )
            write_policy(path, policy)
        self.policy, self._policy_stamp = policy, self._policy_mtime()
        return policy, diff, warnings
