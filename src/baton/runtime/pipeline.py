"""The stages that connect the domains: sense → suppress → correlate, and triage → decide
→ act, each arrow audited by the domain that takes it (verify and learn run from the
scheduler's jobs).

Every stage has one signature, `run(ctx, items) -> items`, declares the type it takes and
the type it gives, and receives what it depends on (configuration, the service graph,
the execution queue) when it is built. The context carries only the session, the time
and the observer, nothing that reaches back up. `Pipelines.build` is the one place that
knows the order of the stages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from sqlalchemy.orm import Session

from baton.act.actions import cannot_act_here
from baton.act.confine import Scope
from baton.act.limits import LimitReached
from baton.act.runbook import Catalogue, Runbook
from baton.act.versions import get_version
from baton.correlate.config import CorrelationConfig
from baton.correlate.incidents import IncidentChange, correlate
from baton.correlate.suppress import screen
from baton.correlate.topology import Topology
from baton.govern import escalation
from baton.govern import flows as governance
from baton.govern.config import PolicyConfig
from baton.kernel.audit import Actor, append
from baton.kernel.enums import Tier
from baton.runtime import chatops
from baton.runtime.settings import Settings
from baton.sense.events import store
from baton.sense.normalize import EventIn
from baton.store.models import Approval, Decision, Event, Execution, Incident, Proposal
from baton.triage import schedule
from baton.triage.propose import propose

INTAKE = Actor("baton.sense", "system", "intake/1")
Observer = Callable[[str, dict[str, Any]], None]
In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class Decided:
    """What the policy decided for a proposal (and the approval it asked for, if any)."""

    decision: Decision
    proposal: Proposal
    approval: Approval | None = None


@dataclass(frozen=True)
class Acted:
    """A decision and the execution it queued (None: not `auto`, a duplicate, or over a
    limit)."""

    decided: Decided
    execution: Execution | None


@dataclass(frozen=True)
class StageContext:
    """What one pass of a pipeline shares: its transaction, its time, who is watching."""

    session: Session
    at: datetime
    observer: Observer | None = None

    def note(self, kind: str, data: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer(kind, data)


class Stage(Protocol[In, Out]):
    name: str
    takes: ClassVar[type]
    gives: ClassVar[type]

    def run(self, ctx: StageContext, items: list[In]) -> list[Out]: ...


class Pipeline(Generic[In, Out]):
    """Stages in sequence; each one's output is the next one's input. Built only from
    stages whose declared types chain, so what flows between them is written down."""

    def __init__(self, name: str, stages: Sequence[Stage[Any, Any]]) -> None:
        for before, after in pairwise(stages):
            if before.gives is not after.takes:
                raise TypeError(
                    f"pipeline {name}: {before.name} gives {before.gives.__name__}, "
                    f"but {after.name} takes {after.takes.__name__}"
                )
        self.name, self.stages = name, tuple(stages)
        self.takes: type = stages[0].takes
        self.gives: type = stages[-1].gives

    def run(self, ctx: StageContext, items: list[In]) -> list[Out]:
        flowing: list[Any] = items
        for stage in self.stages:
            flowing = stage.run(ctx, flowing)
            if not flowing:
                break
        return flowing


class Config(Protocol):
    """What stages read of the live configuration, asked at each pass (it is reloaded)."""

    catalogue: Catalogue
    policy: PolicyConfig
    correlation: CorrelationConfig
    settings: Settings

    def graph(self, session: Session) -> Topology: ...

    def scope(self, runbook: Runbook, graph: Topology) -> Scope: ...


# Queues the execution a decision allowed (`Dispatch.queue`); None if it already exists.
Queue = Callable[..., Execution | None]


class SenseStage:
    """EventIn → stored Events whose state changed (dedup happens here)."""

    name, takes, gives = "sense", EventIn, Event

    def run(self, ctx: StageContext, items: list[EventIn]) -> list[Event]:
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

    name, takes, gives = "suppress", Event, Event

    def __init__(self, config: Config) -> None:
        self.config = config

    def run(self, ctx: StageContext, items: list[Event]) -> list[Event]:
        # the heartbeat's pass (no new events) looks at every waiting event again
        everything = not items
        return screen(ctx.session, items, self.config.correlation, ctx.at, everything).events


class CorrelateStage:
    """Events → incident changes."""

    name, takes, gives = "correlate", Event, IncidentChange

    def __init__(self, config: Config) -> None:
        self.config = config

    def run(self, ctx: StageContext, items: list[Event]) -> list[IncidentChange]:
        graph = self.config.graph(ctx.session)
        changes = correlate(ctx.session, items, graph, ctx.at, self.config.correlation)
        for change in changes:
            if change.kind == "resolved":
                escalation.close_for(
                    ctx.session, f"incident:{change.incident_id}", "the incident resolved", ctx.at
                )
                governance.cancel_pending(
                    ctx.session, change.incident_id, "the incident resolved on its own", ctx.at
                )
        if ctx.observer is not None:
            for change in changes:
                ctx.note(f"incident.{change.kind}", _incident_note(ctx.session, change))
        return changes


class TriageStage:
    """Incidents due for triage → proposals (what was proposed before is replaced)."""

    name, takes, gives = "triage", Incident, Proposal

    def __init__(self, config: Config) -> None:
        self.config = config

    def run(self, ctx: StageContext, items: list[Incident]) -> list[Proposal]:
        graph = self.config.graph(ctx.session)
        out = []
        for incident in items:
            schedule.replace_proposals(ctx.session, incident, ctx.at)
            proposal = propose(
                ctx.session,
                incident,
                self.config.catalogue,
                graph,
                ctx.at,
                scopes=lambda rb, g=graph: self.config.scope(rb, g),
            )
            if proposal is None:
                ctx.note(
                    "triage.no_match", {"incident": incident.id, "origin": incident.origin_service}
                )
                continue
            ctx.note(
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
        return out


class DecideStage:
    """Proposals → decisions (and approval requests), each with its proposal."""

    name, takes, gives = "decide", Proposal, Decided

    def __init__(self, config: Config, targets: dict[str, Any]) -> None:
        self.config, self.targets = config, targets

    def run(self, ctx: StageContext, items: list[Proposal]) -> list[Decided]:
        graph = self.config.graph(ctx.session)
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
                policy=self.config.policy,
                at=ctx.at,
                missing_target=cannot_act_here(runbook.doc, self.targets),
            )
            if approval is not None:  # posted to Slack by the outbox, if it is configured
                chatops.announce(ctx.session, self.config.settings, approval.id, ctx.at)
            ctx.note(
                "decision",
                {
                    "proposal": proposal.id,
                    "runbook": runbook.id,
                    "tier": decision.tier,
                    "reasons": decision.reasons,
                    "approval": approval.id if approval else None,
                },
            )
            out.append(Decided(decision, proposal, approval))
        return out


class ActStage:
    """Decisions → what was done about each: those at `auto` queue their execution
    (after the policy's veto window)."""

    name, takes, gives = "act", Decided, Acted

    def __init__(self, config: Config, queue: Queue) -> None:
        self.config, self.queue = config, queue

    def run(self, ctx: StageContext, items: list[Decided]) -> list[Acted]:
        return [Acted(decided, self._queue(ctx, decided)) for decided in items]

    def _queue(self, ctx: StageContext, decided: Decided) -> Execution | None:
        decision, proposal = decided.decision, decided.proposal
        if decision.tier != Tier.AUTO.label:
            return None
        window = self.config.policy.veto_window(proposal.runbook_id)
        try:
            return self.queue(
                ctx.session,
                proposal,
                decision.id,
                ctx.at,
                governance.POLICY,
                not_before=ctx.at + timedelta(seconds=window) if window else None,
            )
        except LimitReached as exc:
            ctx.note("execution.limited", {"runbook": proposal.runbook_id, "reason": str(exc)})
            return None


@dataclass(frozen=True)
class Pipelines:
    """Every pipeline the platform runs, in the one place that orders the stages."""

    ingest: Pipeline[EventIn, IncidentChange]
    # Held and muted alerts are looked at again on every heartbeat, not only when new
    # alerts arrive: a transient hold ends whether or not anything else happens.
    release: Pipeline[Event, IncidentChange]
    decide: Pipeline[Incident, Acted]
    # An execution a person asks for: their proposal is decided and acted on like any other.
    request: Pipeline[Proposal, Acted]

    @classmethod
    def build(cls, config: Config, queue: Queue, targets: dict[str, Any]) -> Pipelines:
        suppress, group = SuppressStage(config), CorrelateStage(config)
        decide, act = DecideStage(config, targets), ActStage(config, queue)
        return cls(
            ingest=Pipeline("ingest", [SenseStage(), suppress, group]),
            release=Pipeline("release", [suppress, group]),
            decide=Pipeline("decide", [TriageStage(config), decide, act]),
            request=Pipeline("request", [decide, act]),
        )


def _incident_note(session: Session, change: IncidentChange) -> dict[str, Any]:
    inc = session.get(Incident, change.incident_id)
    return {
        "incident": inc.id,
        "title": inc.title,
        "origin": inc.origin_service,
        "services": inc.services,
        "status": inc.status,
    }
