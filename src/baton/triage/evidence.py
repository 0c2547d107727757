"""The copilot's read-only tools: each gathers one kind of evidence about an incident.

Every item has a stable id (``alert:12``, ``runbook:clear-disk``...) that claims cite;
a claim citing no id that was gathered is dropped (`investigate.supported`). Text that
came from outside Baton (alert annotations, ticket bodies) is kept apart in ``text`` and
marked untrusted, so a reader, and a model, sees it as data and never as instructions.

No function here writes: they take a session and return values. The LLM backend calls
these same functions by name (`TOOLS`); there is no write tool to call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from baton.act.runbook import Catalogue
from baton.correlate.topology import Topology
from baton.detect.events import SOURCE as DETECT_SOURCE
from baton.govern import oncall
from baton.kernel.enums import EventStatus
from baton.store.models import AuditRecord, Event, Execution, Incident, Ticket, TrackRecord
from baton.triage.propose import score, specificity

CHANGE_WINDOW = timedelta(hours=1)
PAST_LIMIT = 5
# what the ledger records when something on the estate changed
CHANGE_ACTIONS = ("execution.", "policy.", "runbooks.", "services.", "override.", "killswitch.")


@dataclass(frozen=True)
class Evidence:
    id: str
    kind: str  # alert | grouping | finding | change | neighbour | past | runbook | owner | ticket
    service: str | None
    at: datetime | None
    facts: dict[str, Any] = field(default_factory=dict)  # Baton's own values
    text: str = ""  # untrusted text from outside (annotations, ticket bodies): data only

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "service": self.service,
            "at": self.at.isoformat() if self.at else None,
            "facts": self.facts,
        }
        if self.text:
            out["untrusted_text"] = self.text
        return out


@dataclass
class Scope:
    """What the tools look at: the incident, the catalogue and graph, the time now."""

    session: Session
    incident: Incident
    catalogue: Catalogue
    graph: Topology
    at: datetime

    @property
    def since(self) -> datetime:
        return self.incident.opened_at - CHANGE_WINDOW

    @cached_property
    def events(self) -> list[Event]:
        """The incident's alerts, read once per investigation (every tool wants them)."""
        return incident_events(self.session, self.incident.id)


def _annotations(event: Event) -> str:
    return " | ".join(f"{k}: {v}" for k, v in sorted(event.annotations.items()))


def incident_events(session: Session, incident_id: int) -> list[Event]:
    query = select(Event).where(Event.incident_id == incident_id).order_by(Event.id)
    return list(session.scalars(query))


def alerts(scope: Scope) -> list[Evidence]:
    """The incident's alerts; detector findings among them are marked as findings."""
    out = []
    for e in scope.events:
        finding = e.source == DETECT_SOURCE
        out.append(
            Evidence(
                f"{'finding' if finding else 'alert'}:{e.id}",
                "finding" if finding else "alert",
                e.service,
                e.starts_at,
                {
                    "name": e.name,
                    "severity": e.severity,
                    "status": e.status,
                    "firing": e.status == EventStatus.FIRING,
                    "occurrences": e.occurrences,
                    "host": e.host or e.labels.get("host"),
                    "source": e.source,
                },
                _annotations(e),
            )
        )
    return out


def grouping(scope: Scope) -> list[Evidence]:
    """Why each alert joined the incident (the correlator's recorded reasons)."""
    out = []
    for n, reason in enumerate(scope.incident.grouping):
        if not isinstance(reason, dict):
            continue
        facts = {k: reason[k] for k in ("rule", "detail", "score", "event_id") if k in reason}
        out.append(
            Evidence(
                f"group:{scope.incident.id}:{n}", "grouping", reason.get("service"), None, facts
            )
        )
    return out


def findings(scope: Scope) -> list[Evidence]:
    """Detector findings on the incident's services around its window, grouped or not."""
    services = list(scope.incident.services or [])
    if not services:
        return []
    query = (
        select(Event)
        .where(
            Event.source == DETECT_SOURCE,
            Event.service.in_(services),
            Event.starts_at >= scope.since,
            or_(Event.incident_id.is_(None), Event.incident_id != scope.incident.id),
        )
        .order_by(Event.id)
        .limit(50)
    )
    return [
        Evidence(
            f"finding:{e.id}",
            "finding",
            e.service,
            e.starts_at,
            {"name": e.name, "status": e.status, "source": e.source},
            _annotations(e),
        )
        for e in scope.session.scalars(query)
    ]


def changes(
    scope: Scope, service: str | None = None, since: datetime | None = None
) -> list[Evidence]:
    """What changed (runs, policy, catalogue, overrides) from an hour before the incident
    opened until now; on one service when `service` is given."""
    start = since or scope.since
    query = (
        select(AuditRecord)
        .where(
            AuditRecord.ts >= start,
            AuditRecord.ts <= scope.at,
            or_(*(AuditRecord.action.startswith(a) for a in CHANGE_ACTIONS)),
        )
        .order_by(AuditRecord.seq)
        .limit(500)
    )
    out = []
    for r in scope.session.scalars(query):
        touched = _service_of(r)
        if service is not None and touched not in (service, None):
            continue
        if service is not None and touched is None and not r.action.startswith("policy."):
            continue
        out.append(
            Evidence(
                f"change:{r.seq}",
                "change",
                touched,
                r.ts,
                {
                    "action": r.action,
                    "subject": r.subject,
                    "actor": r.actor,
                    "decision": r.decision,
                },
            )
        )
    return out


def _service_of(record: AuditRecord) -> str | None:
    inputs = record.inputs or {}
    params = inputs.get("params") if isinstance(inputs.get("params"), dict) else {}
    for value in (inputs.get("service"), params.get("service"), inputs.get("target")):
        if isinstance(value, str):
            return value
    return None


def neighbours(scope: Scope) -> list[Evidence]:
    """The state of services next to the incident's in the graph: what they need and what
    needs them, with the alerts firing there now."""
    graph, services = scope.graph, set(scope.incident.services or [])
    near: set[str] = set()
    for name in services:
        near |= set(graph.needs(name)) | set(graph.dependents(name))
    near -= services
    if not near:
        return []
    query = (
        select(Event.service, Event.name)
        .where(Event.service.in_(sorted(near)), Event.status == EventStatus.FIRING)
        .distinct()
    )
    firing: dict[str, set[str]] = {}
    for svc, name in scope.session.execute(query):
        firing.setdefault(svc, set()).add(name)
    return [
        Evidence(
            f"neighbour:{name}",
            "neighbour",
            name,
            scope.at,
            {
                "firing": sorted(firing.get(name, ())),
                "healthy": name not in firing,
                "needed_by": sorted(s for s in services if name in graph.needs(s)),
                "needs": sorted(s for s in services if s in graph.needs(name)),
            },
        )
        for name in sorted(near)
    ]


def past(scope: Scope) -> list[Evidence]:
    """Earlier incidents at the same origin, and how each ended (the runs on them)."""
    inc = scope.incident
    if not inc.origin_service:
        return []
    query = (
        select(Incident)
        .where(
            Incident.id != inc.id,
            Incident.origin_service == inc.origin_service,
            Incident.opened_at < inc.opened_at,
        )
        .order_by(Incident.opened_at.desc())
        .limit(PAST_LIMIT)
    )
    earlier = list(scope.session.scalars(query))
    ids = [o.id for o in earlier]
    runs_of: dict[int, list[Execution]] = {}
    names_of: dict[int, set[str]] = {}
    if ids:  # two queries for all of them, not two per incident
        executions = select(Execution).where(Execution.incident_id.in_(ids)).order_by(Execution.id)
        for run in scope.session.scalars(executions):
            runs_of.setdefault(run.incident_id, []).append(run)
        alerts = select(Event.incident_id, Event.name).where(Event.incident_id.in_(ids)).distinct()
        for incident_id, name in scope.session.execute(alerts):
            names_of.setdefault(incident_id, set()).add(name)
    out = []
    for other in earlier:
        runs, names = runs_of.get(other.id, []), sorted(names_of.get(other.id, ()))
        out.append(
            Evidence(
                f"past:{other.id}",
                "past",
                other.origin_service,
                other.opened_at,
                {
                    "title": other.title,
                    "status": other.status,
                    "alerts": names,
                    "resolved_by": [
                        {"runbook": r.runbook_id, "status": r.status, "verified": r.verified}
                        for r in runs
                    ],
                },
            )
        )
    return out


def runbooks(scope: Scope) -> list[Evidence]:
    """Runbooks whose declared causes match alerts of some service in the incident, with
    their track records."""
    by_service: dict[str, list[str]] = {}
    for e in scope.events:
        if e.service and e.status == EventStatus.FIRING:
            by_service.setdefault(e.service, []).append(e.name)
    spec = specificity(scope.catalogue)
    kinds = {service: scope.graph.kind(service) for service in by_service}
    out, seen = [], set()
    for rb in scope.catalogue:
        fits = []
        for service, names in sorted(by_service.items()):
            c = score(rb, names, kinds[service], spec)
            if c is not None:
                fits.append(
                    {"service": service, "matched": list(c.matched), "strength": c.strength}
                )
        if fits and rb.id not in seen:
            seen.add(rb.id)
            row = scope.session.get(TrackRecord, rb.id)
            runs, ok = (row.runs, row.succeeded) if row else (0, 0)
            record = {
                "runs": runs,
                "succeeded": ok,
                "success_rate": round(ok / runs, 3) if runs else None,
            }
            out.append(
                Evidence(
                    f"runbook:{rb.id}",
                    "runbook",
                    None,
                    None,
                    {
                        "runbook": rb.id,
                        "version": rb.version,
                        "title": rb.doc.get("title", rb.id),
                        "risk": rb.doc.get("risk"),
                        "reversible": bool(rb.doc.get("reversible")),
                        "fits": fits,
                        "track_record": record,
                    },
                )
            )
    return out


def owner(scope: Scope, service: str | None = None) -> list[Evidence]:
    """Who owns the service in the catalogue and who is on call for it now."""
    name = service or scope.incident.origin_service
    if not name:
        return []
    who = oncall.to_dict(oncall.who_is_on_call(scope.session, name, scope.at))
    return [
        Evidence(
            f"owner:{name}",
            "owner",
            name,
            scope.at,
            {"owner": scope.graph.owner(name), "on_call": who},
        )
    ]


def tickets(scope: Scope) -> list[Evidence]:
    """Tickets linked to the incident; their bodies are people's words, so untrusted."""
    query = select(Ticket).where(Ticket.incident_id == scope.incident.id).order_by(Ticket.id)
    return [
        Evidence(
            f"ticket:{t.id}",
            "ticket",
            t.service,
            t.created_at,
            {"category": t.category, "priority": t.priority, "status": t.status},
            f"{t.subject}\n{t.body}",
        )
        for t in scope.session.scalars(query)
    ]


Tool = Callable[[Scope], list[Evidence]]
# The whole toolset, by the names the LLM backend sees. Every one only reads.
TOOLS: dict[str, tuple[Tool, str]] = {
    "incident_alerts": (alerts, "the incident's alerts and detector findings"),
    "grouping_reasons": (grouping, "why each alert was grouped into the incident"),
    "detector_findings": (findings, "detector findings on its services around its window"),
    "recent_changes": (changes, "runs, policy and catalogue changes since an hour before"),
    "graph_neighbours": (neighbours, "services next to it in the graph and what fires there"),
    "similar_incidents": (past, "earlier incidents at the same origin and how they ended"),
    "matching_runbooks": (runbooks, "runbooks that fit its alerts, with track records"),
    "owner_and_oncall": (owner, "who owns the origin and who is on call"),
    "linked_tickets": (tickets, "tickets linked to the incident"),
}


def gather(scope: Scope) -> list[Evidence]:
    """Every tool's evidence, ids unique (a finding grouped into the incident once)."""
    seen: dict[str, Evidence] = {}
    for tool, _ in TOOLS.values():
        for item in tool(scope):
            seen.setdefault(item.id, item)
    return list(seen.values())
