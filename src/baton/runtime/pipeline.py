"""The pipeline that connects the domains: sense → correlate → triage → decide → act →
verify → learn, each arrow audited by the domain that takes it.

Stages share one signature, `run(ctx, items) -> items`, and are composed, so a later
stage (dedup filters, classifiers...) slots in without rewiring the others. Domains never
call each other's flows; this module is the only place that knows the order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.act import executor
from baton.act.actions import ActionContext, missing_targets
from baton.act.runbook import Catalogue, load_dir
from baton.act.service import get_version, sync_catalogue
from baton.correlate import topology
from baton.correlate.incidents import IncidentChange, correlate
from baton.govern import flows as governance
from baton.govern import killswitch
from baton.govern.audit import Actor, append
from baton.govern.config import PolicyConfig, load_policy
from baton.learn.kpis import record_outcome
from baton.runtime.clock import Clock
from baton.runtime.settings import Settings
from baton.runtime.tasks import InProcessBackend, TaskBackend
from baton.sense import normalize
from baton.sense.service import store
from baton.servicedesk.tickets import file_ticket
from baton.store.db import Database
from baton.store.migrate import upgrade
from baton.store.models import Approval, Decision, Execution, Incident, Proposal, Ticket
from baton.triage.propose import propose

INTAKE = Actor("baton.sense", "system", "intake/1")
GRAPH_TTL_S = 30.0
Observer = Callable[[str, dict[str, Any]], None]


@dataclass
class StageContext:
    session: Session
    at: datetime
    platform: Platform


class Stage(Protocol):
    name: str

    def run(self, ctx: StageContext, items: list[Any]) -> list[Any]: ...


@dataclass
class MultiStage:
    """Stages in sequence; each one's output is the next one's input."""

    stages: Sequence[Stage]
    name: str = "multi"

    def run(self, ctx: StageContext, items: list[Any]) -> list[Any]:
        for stage in self.stages:
            items = stage.run(ctx, items)
            if not items:
                break
        return items


class SenseStage:
    """EventIn → stored Events whose state changed (dedup happens here)."""

    name = "sense"

    def run(self, ctx: StageContext, items: list[Any]) -> list[Any]:
        changed = store(ctx.session, items, ctx.at)
        append(
            ctx.session,
            actor=INTAKE,
            action="events.received",
            subject="events",
            at=ctx.at,
            inputs={
                "received": len(items),
                "changed": len(changed),
                "sources": sorted({e.source for e in items}),
            },
            decision="stored",
            rationale="batch committed before acknowledging the sender",
        )
        return changed


class CorrelateStage:
    """Events → incident changes."""

    name = "correlate"

    def run(self, ctx: StageContext, items: list[Any]) -> list[Any]:
        changes = correlate(ctx.session, items, ctx.platform.graph(ctx.session), ctx.at)
        for change in changes:
            if change.kind == "resolved":
                governance.cancel_pending(
                    ctx.session, change.incident_id, "the incident resolved on its own", ctx.at
                )
        if ctx.platform.observer is not None:
            for change in changes:
                ctx.platform.notify(f"incident.{change.kind}", _incident_note(ctx.session, change))
        return changes


class TriageStage:
    """Incidents due for triage → proposals."""

    name = "triage"

    def run(self, ctx: StageContext, items: list[Any]) -> list[Any]:
        graph = ctx.platform.graph(ctx.session)
        out = []
        for incident in items:
            stale = ctx.session.scalars(
                select(Proposal).where(
                    Proposal.incident_id == incident.id, Proposal.status.in_(("new", "decided"))
                )
            )
            for old in stale:
                old.status = "superseded"
            governance.cancel_pending(
                ctx.session, incident.id, f"origin is now {incident.origin_service}", ctx.at
            )
            incident.triaged_origin = incident.origin_service
            proposal = propose(ctx.session, incident, ctx.platform.catalogue, graph, ctx.at)
            if proposal is not None:
                ctx.platform.notify(
                    "proposal",
                    {
                        "incident": incident.id,
                        "runbook": proposal.runbook_id,
                        "params": proposal.params,
                        "confidence": proposal.confidence,
                        "rationale": proposal.rationale,
                    },
                )
                out.append(proposal)
            else:
                ctx.platform.notify(
                    "triage.no_match", {"incident": incident.id, "origin": incident.origin_service}
                )
        return out


class DecideStage:
    """Proposals → decisions (and approval requests)."""

    name = "decide"

    def run(self, ctx: StageContext, items: list[Any]) -> list[Any]:
        graph = ctx.platform.graph(ctx.session)
        out = []
        for proposal in items:
            runbook = get_version(ctx.session, proposal.runbook_id, proposal.runbook_version)
            service = proposal.params.get("service")
            missing = missing_targets(runbook.doc, ctx.platform.targets)
            decision, approval = governance.decide_proposal(
                ctx.session,
                proposal,
                runbook,
                service=service,
                env=graph.env(service or ""),
                policy=ctx.platform.policy,
                at=ctx.at,
                missing_target=(
                    f"the runbook acts on the {', '.join(missing)} target, which this "
                    "instance does not have"
                )
                if missing
                else None,
            )
            ctx.platform.notify(
                "decision",
                {
                    "proposal": proposal.id,
                    "runbook": runbook.id,
                    "tier": decision.tier,
                    "reasons": decision.reasons,
                    "approval": approval.id if approval else None,
                },
            )
            out.append((decision, proposal))
        return out


class ActStage:
    """Decisions at `auto` → queued executions."""

    name = "act"

    def run(self, ctx: StageContext, items: list[Any]) -> list[Any]:
        queued = []
        for decision, proposal in items:
            if decision.tier != "auto":
                continue
            execution = ctx.platform.queue_execution(
                ctx.session, proposal, decision.id, ctx.at, governance.POLICY
            )
            if execution is not None:
                queued.append(execution)
        return queued


def _incident_note(session: Session, change: IncidentChange) -> dict[str, Any]:
    inc = session.get(Incident, change.incident_id)
    return {
        "incident": inc.id,
        "title": inc.title,
        "origin": inc.origin_service,
        "services": inc.services,
        "status": inc.status,
    }


@dataclass
class TickReport:
    proposals: int = 0
    executions_queued: int = 0
    executions_finished: list[int] = field(default_factory=list)
    approvals_expired: int = 0


class Platform:
    """One running Baton: database, clock, runbooks, policy, task backend and targets."""

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
        self.backend = backend or InProcessBackend(settings.task_workers)
        self.observer = observer
        self.triage_settle = triage_settle
        self.catalogue = Catalogue()
        self.policy = PolicyConfig()
        self._graph: tuple[float, topology.Topology] | None = None
        self.ingest_pipeline = MultiStage([SenseStage(), CorrelateStage()], name="ingest")
        self.decide_pipeline = MultiStage([TriageStage(), DecideStage(), ActStage()], name="decide")
        self.backend.register("execute", self._execute_task)

    # --- setup -----------------------------------------------------------------------
    def start(self, migrate: bool = True) -> Platform:
        """Migrate the schema and load runbooks and policy."""
        if migrate:
            upgrade(self.db.url)
        self.reload_runbooks()
        self.recover()
        return self

    def recover(self) -> None:
        """After a restart: never re-run a half-done execution; deliver queued ones.

        Only the embedded (SQLite, single-process) deployment can tell that a `running`
        execution has lost its process; with shared PostgreSQL another replica may own it.
        """
        if self.db.is_sqlite:
            for execution_id in executor.mark_interrupted(self.db, self.clock.now):
                self.notify(
                    "execution.finished", {"execution": execution_id, "status": "interrupted"}
                )
        with self.db.session() as s:
            queued = s.scalars(select(Execution.id).where(Execution.status == "queued")).all()
        for execution_id in queued:
            self.backend.submit("execute", {"execution_id": execution_id})

    def reload_runbooks(self, actor: Actor = INTAKE) -> Catalogue:
        """Load runbooks and policy from disk; audit what changed and who asked."""
        path = self.settings.runbooks_path
        catalogue = load_dir(path)
        policy = load_policy(path / "policy.yaml")
        before = {rb.id: rb.version for rb in self.catalogue}
        after = {rb.id: rb.version for rb in catalogue}
        changed = sorted(k for k in after if before.get(k) != after[k])
        self.catalogue, self.policy = catalogue, policy
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
                f"removed: {', '.join(sorted(set(before) - set(after))) or 'none'}",
            )
        return catalogue

    def close(self) -> None:
        self.backend.close()
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

    def action_context(self) -> ActionContext:
        return ActionContext(targets=self.targets)

    # --- signals in ------------------------------------------------------------------
    def ingest(self, events: list[normalize.EventIn]) -> dict[str, int]:
        """Store and correlate a batch in one transaction; returns counts once committed."""
        at = self.clock.now()
        with self.db.session() as s:
            changes = self.ingest_pipeline.run(StageContext(s, at, self), list(events))
        return {"accepted": len(events), "incident_changes": len(changes)}

    def ingest_alertmanager(self, payload: Any, source: str = "alertmanager") -> dict[str, int]:
        return self.ingest(normalize.from_alertmanager(payload, self.clock.now(), source))

    def ingest_generic(self, payload: Any) -> dict[str, int]:
        return self.ingest(normalize.from_generic(payload, self.clock.now()))

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

    # --- the periodic heartbeat ------------------------------------------------------
    def due_for_triage(self, session: Session, at: datetime) -> list[Incident]:
        rows = session.scalars(
            select(Incident)
            .where(
                Incident.status.in_(("open", "acknowledged")),
                Incident.origin_service.is_not(None),
                Incident.opened_at <= at - self.triage_settle,
            )
            .order_by(Incident.id)
        )
        return [i for i in rows if i.origin_service != i.triaged_origin]

    def tick(self) -> TickReport:
        """Triage settled incidents, decide, queue executions, verify, expire approvals."""
        report = TickReport()
        at = self.clock.now()
        with self.db.session() as s:
            report.approvals_expired = len(governance.expire_approvals(s, at))
            due = self.due_for_triage(s, at)
            queued = self.decide_pipeline.run(StageContext(s, at, self), due) if due else []
            ids = [e.id for e in queued]
        report.executions_queued = len(ids)
        for execution_id in ids:
            self.backend.submit("execute", {"execution_id": execution_id})
        finished = executor.check_verifications(self.db, self.action_context(), self.clock.now)
        for execution_id in finished:
            self._learn(execution_id)
        report.executions_finished = finished
        return report

    # --- act -------------------------------------------------------------------------
    def queue_execution(
        self,
        session: Session,
        proposal: Proposal,
        decision_id: int,
        at: datetime,
        requested_by: Actor,
    ) -> Execution | None:
        runbook = get_version(session, proposal.runbook_id, proposal.runbook_version)
        execution, created = executor.create_execution(
            session,
            runbook=runbook,
            params=proposal.params,
            incident_id=proposal.incident_id,
            decision_id=decision_id,
            at=at,
            requested_by=requested_by,
        )
        if created:
            self.notify(
                "execution.queued",
                {"execution": execution.id, "runbook": runbook.id, "params": proposal.params},
            )
        return execution if created else None

    def _execute_task(self, payload: dict[str, Any]) -> None:
        execution_id = int(payload["execution_id"])
        with self.db.session() as s:
            execution = s.get(Execution, execution_id)
            runbook_id, service = execution.runbook_id, execution.params.get("service")

        def should_stop() -> str | None:
            with self.db.session() as s:
                return killswitch.paused_scope(s, runbook_id, service)

        status = executor.run_execution(
            self.db, execution_id, self.action_context(), self.clock.now, should_stop
        )
        self.notify(
            "execution.ran", {"execution": execution_id, "runbook": runbook_id, "status": status}
        )
        if status in executor.FINAL:
            self._learn(execution_id)

    def _learn(self, execution_id: int) -> None:
        with self.db.session() as s:
            record = record_outcome(s, execution_id, self.clock.now())
            execution = s.get(Execution, execution_id)
            self.notify(
                "execution.finished",
                {
                    "execution": execution_id,
                    "runbook": execution.runbook_id,
                    "status": execution.status,
                    "verified": execution.verified,
                    "summary": execution.summary,
                    "trust": record,
                },
            )

    # --- humans ----------------------------------------------------------------------
    def approve(self, approval_id: int, approver: Actor, reason: str) -> Execution | None:
        """Record an approval; queue the execution once enough people approved."""
        at = self.clock.now()
        execution_id = None
        with self.db.session() as s:
            blocked = governance.blocked_reason(s, approval_id, self.policy, at)
            if blocked:
                raise governance.ApprovalError(f"cannot approve now: {blocked}")
            if governance.approve(s, approval_id, approver, reason, at):
                approval = s.get(Approval, approval_id)
                decision = s.get(Decision, approval.decision_id)
                proposal = s.get(Proposal, decision.proposal_id)
                execution = self.queue_execution(s, proposal, decision.id, at, approver)
                execution_id = execution.id if execution else None
        if execution_id is None:
            return None
        self.backend.submit("execute", {"execution_id": execution_id})
        with self.db.session() as s:
            return s.get(Execution, execution_id)

    def reject(self, approval_id: int, approver: Actor, reason: str) -> None:
        with self.db.session() as s:
            governance.reject(s, approval_id, approver, reason, self.clock.now())
