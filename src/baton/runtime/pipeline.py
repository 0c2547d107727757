"""The stages that connect the domains: sense → correlate → triage → decide → act, each
arrow audited by the domain that takes it (verify and learn run from the Platform's tick).

Stages share one signature, `run(ctx, items) -> items`, and are composed, so a later
stage (dedup filters, classifiers...) slots in without rewiring the others. Domains never
call each other's flows; this module and `platform.py` are the only places that know the
order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.act.actions import cannot_act_here
from baton.act.limits import LimitReached
from baton.act.service import get_version
from baton.correlate.incidents import IncidentChange, correlate
from baton.correlate.suppress import screen
from baton.govern import escalation
from baton.govern import flows as governance
from baton.kernel.audit import Actor, append
from baton.sense.service import store
from baton.store.models import Incident, Proposal
from baton.triage.propose import propose

if TYPE_CHECKING:
    from baton.runtime.platform import Platform

INTAKE = Actor("baton.sense", "system", "intake/1")
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


class SuppressStage:
    """Changed events → those that may go on to correlation (silences, maintenance,
    flapping, transient hold, inhibition); also releases events whose hold is over."""

    name = "suppress"

    def run(self, ctx: StageContext, items: list[Any]) -> list[Any]:
        # the heartbeat's pass (no new events) looks at every waiting event again
        everything = not items
        return screen(ctx.session, items, ctx.platform.correlation, ctx.at, everything).events


class CorrelateStage:
    """Events → incident changes."""

    name = "correlate"

    def run(self, ctx: StageContext, items: list[Any]) -> list[Any]:
        changes = correlate(
            ctx.session, items, ctx.platform.graph(ctx.session), ctx.at, ctx.platform.correlation
        )
        for change in changes:
            if change.kind == "resolved":
                escalation.close_for(
                    ctx.session, f"incident:{change.incident_id}", "the incident resolved", ctx.at
                )
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
            incident.triaged_origin, incident.triage_after = incident.origin_service, None
            proposal = propose(
                ctx.session,
                incident,
                ctx.platform.catalogue,
                graph,
                ctx.at,
                scopes=lambda rb, g=graph: ctx.platform.scope(rb, g),
            )
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
            decision, approval = governance.decide_proposal(
                ctx.session,
                proposal,
                runbook,
                service=service,
                env=graph.env(service or ""),
                policy=ctx.platform.policy,
                at=ctx.at,
                missing_target=cannot_act_here(runbook.doc, ctx.platform.targets),
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
            window = ctx.platform.policy.veto_window(proposal.runbook_id)
            try:
                execution = ctx.platform.queue_execution(
                    ctx.session,
                    proposal,
                    decision.id,
                    ctx.at,
                    governance.POLICY,
                    not_before=ctx.at + timedelta(seconds=window) if window else None,
                )
            except LimitReached as exc:
                ctx.platform.notify(
                    "execution.limited", {"runbook": proposal.runbook_id, "reason": str(exc)}
                )
                continue
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
