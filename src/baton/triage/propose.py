"""Runbook proposals for incidents: which runbook fits the origin's symptoms, with the
evidence and a confidence a human (and the policy gate) can judge.

A proposal is only a proposal; it goes through `decide` like everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from baton.act.confine import Scope
from baton.act.runbook import Catalogue, ParamError, Runbook, resolve_params
from baton.correlate.topology import Topology
from baton.kernel.audit import Actor, append
from baton.kernel.enums import EventStatus, ProposalStatus
from baton.store.models import Event, Incident, Proposal

PROPOSER = Actor("baton.triage", "ai", "symptom-match/1")


@dataclass(frozen=True)
class Candidate:
    runbook: Runbook
    confidence: float
    matched: tuple[str, ...]
    strength: float


def specificity(catalogue: Catalogue) -> dict[str, float]:
    """How strongly an alert points at one runbook: 1 / number of runbooks that list it.

    An alert no runbook lists (a pure symptom such as latency) points nowhere and weighs 0.
    """
    counts: dict[str, int] = {}
    for rb in catalogue:
        for name in set(rb.doc["match"]["alertnames"]):
            counts[name] = counts.get(name, 0) + 1
    return {name: 1.0 / n for name, n in counts.items()}


def score(
    runbook: Runbook,
    alert_names: list[str],
    kind: str | None,
    spec: dict[str, float],
    any_kind: bool = False,
) -> Candidate | None:
    """How well a runbook's declared causes explain the origin's firing alerts.

    Evidence is the specificity of the alerts it matches; alerts that point clearly at
    another runbook (specificity 1) and that it does not match count against it.
    `any_kind` sets the runbook's service kinds aside (what failure mode is this?).
    """
    match = runbook.doc["match"]
    kinds = match.get("service_kinds") or []
    if kinds and kind not in kinds and not any_kind:
        return None
    wanted = set(match["alertnames"])
    present = set(alert_names)
    matched = tuple(sorted(present & wanted))
    if not matched:
        return None
    strength = sum(spec.get(n, 0.0) for n in matched)
    against = sum(1.0 for n in present - wanted if spec.get(n, 0.0) >= 1.0)
    share = strength / (strength + against)
    confidence = 0.4 + 0.55 * share * min(1.0, max(spec.get(n, 0.0) for n in matched) + 0.3)
    return Candidate(runbook, round(confidence, 3), matched, round(strength, 3))


def _origin_events(session: Session, incident: Incident) -> list[Event]:
    """The origin's firing alerts; alerts naming no service are grouped under 'unknown'."""
    origin = incident.origin_service
    at_origin = (
        or_(Event.service.is_(None), Event.service == origin)
        if origin == "unknown"
        else Event.service == origin
    )
    return list(
        session.scalars(
            select(Event)
            .where(
                Event.incident_id == incident.id,
                at_origin,
                Event.status == EventStatus.FIRING,
            )
            .order_by(Event.id)
        )
    )


def propose(
    session: Session,
    incident: Incident,
    catalogue: Catalogue,
    graph: Topology,
    at: datetime,
    scopes: Callable[[Runbook], Scope] | None = None,
) -> Proposal | None:
    """Propose the best-fitting runbook for the incident's origin, or record that none fits.

    `scopes` gives each runbook's confinement (policy roots, catalogue hosts); without it
    only the runbook's own lists apply."""
    events = _origin_events(session, incident)
    names = [e.name for e in events]
    kind = graph.kind(incident.origin_service or "")
    spec = specificity(catalogue)
    ranked = sorted(
        (c for rb in catalogue if (c := score(rb, names, kind, spec)) is not None),
        key=lambda c: (-c.strength, -c.confidence, c.runbook.id),
    )
    subject = f"incident:{incident.id}"
    if not ranked:
        append(
            session,
            actor=PROPOSER,
            action="triage.no_match",
            subject=subject,
            at=at,
            inputs={"origin": incident.origin_service, "alerts": names, "kind": kind},
            decision="none",
            rationale="no runbook declares these symptoms; left to humans",
        )
        return None
    best = ranked[0]
    labels = events[0].labels if events else {}
    try:
        params = resolve_params(
            best.runbook,
            origin_service=incident.origin_service,
            labels=labels,
            scope=scopes(best.runbook) if scopes else None,
        )
    except ParamError as exc:
        append(
            session,
            actor=PROPOSER,
            action="triage.rejected_params",
            subject=subject,
            at=at,
            inputs={"runbook": best.runbook.id, "labels": labels},
            decision="none",
            rationale=f"runbook {best.runbook.id} fits but its params do not validate: {exc}",
        )
        return None
    evidence: list[dict[str, Any]] = [
        {
            "kind": "alert",
            "event_id": e.id,
            "name": e.name,
            "service": e.service,
            "summary": e.annotations.get("summary", ""),
            "occurrences": e.occurrences,
        }
        for e in events
    ]
    evidence.append(
        {
            "kind": "topology",
            "origin": incident.origin_service,
            "services": incident.services,
            "grouping": incident.grouping[-3:],
        }
    )
    alternatives = [{"runbook": c.runbook.id, "confidence": c.confidence} for c in ranked[1:4]]
    what = f" ({kind})" if kind else ""
    rationale = (
        f"{incident.origin_service}{what} is the probable origin; its alerts "
        f"{', '.join(best.matched)} are causes runbook {best.runbook.id} fixes "
        f"(evidence strength {best.strength}; firing there: {', '.join(sorted(set(names)))})"
    )
    proposal = Proposal(
        incident_id=incident.id,
        runbook_id=best.runbook.id,
        runbook_version=best.runbook.version,
        params=params,
        confidence=best.confidence,
        rationale=rationale,
        evidence=[*evidence, {"kind": "alternatives", "runbooks": alternatives}],
        proposer=f"{PROPOSER.name}/{PROPOSER.version}",
        status=ProposalStatus.NEW,
        created_at=at,
    )
    session.add(proposal)
    session.flush()
    append(
        session,
        actor=PROPOSER,
        action="triage.proposed",
        subject=subject,
        at=at,
        inputs={
            "origin": incident.origin_service,
            "alerts": names,
            "kind": kind,
            "alternatives": alternatives,
        },
        decision=f"proposal:{proposal.id} {best.runbook.id} {params}",
        rationale=f"{rationale}; confidence {best.confidence}",
    )
    return proposal


def requested(
    session: Session,
    runbook: Runbook,
    params: dict[str, Any],
    requester: Actor,
    reason: str,
    incident_id: int | None,
    at: datetime,
) -> Proposal:
    """A person's request for a run, saved as a proposal like any other: it is decided by
    the same policy, so it may still need someone else's approval."""
    proposal = Proposal(
        incident_id=incident_id,
        runbook_id=runbook.id,
        runbook_version=runbook.version,
        params=params,
        confidence=1.0,
        rationale=f"requested by {requester.name}: {reason}",
        evidence=[
            {
                "kind": "request",
                "by": requester.name,
                "issued_by": requester.issued_by,  # counted as a requester too
                "reason": reason,
            }
        ],
        proposer=requester.name,
        status=ProposalStatus.NEW,
        created_at=at,
    )
    session.add(proposal)
    session.flush()
    append(
        session,
        actor=requester,
        action="execution.requested",
        subject=f"proposal:{proposal.id}",
        at=at,
        inputs={"runbook": runbook.id, "params": params, "incident": incident_id},
        decision="proposed",
        rationale=reason,
    )
    return proposal


def recent(session: Session, limit: int) -> list[Proposal]:
    return list(session.scalars(select(Proposal).order_by(Proposal.id.desc()).limit(limit)))


def for_incident(session: Session, incident_id: int) -> list[Proposal]:
    query = select(Proposal).where(Proposal.incident_id == incident_id).order_by(Proposal.id)
    return list(session.scalars(query))


def to_dict(p: Proposal) -> dict[str, Any]:
    return {
        "id": p.id,
        "incident_id": p.incident_id,
        "ticket_id": p.ticket_id,
        "runbook_id": p.runbook_id,
        "runbook_version": p.runbook_version,
        "params": p.params,
        "confidence": p.confidence,
        "rationale": p.rationale,
        "evidence": p.evidence,
        "proposer": p.proposer,
        "status": p.status,
        "created_at": p.created_at,
    }
