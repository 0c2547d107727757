"""When an incident is (again) due for triage: the settle time, the hold-off after a veto,
the release after a pause, and replacing what was proposed for an origin that moved.

Triage looks at an incident once per origin: `triaged_origin` remembers the origin it
last proposed for, so clearing it asks for a fresh look and `triage_after` defers it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.govern import flows as governance
from baton.kernel.enums import (
    FIXING,
    LIVE_INCIDENT,
    OPEN_PROPOSAL,
    ApprovalStatus,
    IncidentStatus,
    ProposalStatus,
)
from baton.store.models import Approval, Decision, Execution, Incident, Proposal


def due(session: Session, at: datetime, settle: timedelta) -> list[Incident]:
    """Live incidents whose origin has settled and has not been triaged yet."""
    rows = session.scalars(
        select(Incident)
        .where(
            Incident.status.in_(LIVE_INCIDENT),
            Incident.origin_service.is_not(None),
            Incident.opened_at <= at - settle,
            Incident.triage_after.is_(None) | (Incident.triage_after <= at),
        )
        .order_by(Incident.id)
    )
    return [i for i in rows if i.origin_service != i.triaged_origin]


def replace_proposals(session: Session, incident: Incident, at: datetime) -> None:
    """Before proposing for the incident's current origin: what was proposed for an
    earlier origin is superseded and its pending approvals withdrawn."""
    stale = session.scalars(
        select(Proposal).where(
            Proposal.incident_id == incident.id, Proposal.status.in_(OPEN_PROPOSAL)
        )
    )
    for old in stale:
        old.status = ProposalStatus.SUPERSEDED
    governance.cancel_pending(session, incident.id, f"origin is now {incident.origin_service}", at)
    incident.triaged_origin, incident.triage_after = incident.origin_service, None


def hold_off(session: Session, incident_id: int | None, at: datetime, seconds: float) -> None:
    """After a person vetoes a fix, propose again only once `seconds` have passed."""
    if incident_id is None:
        return
    incident = session.get(Incident, incident_id)
    incident.triaged_origin = None
    incident.triage_after = at + timedelta(seconds=seconds)


def release(session: Session, scope: str, target: str | None) -> list[Incident]:
    """After a pause is lifted: open incidents in its scope that nothing is fixing and no
    person is being asked about are triaged again; returns them."""
    released = []
    for incident in session.scalars(select(Incident).where(Incident.status == IncidentStatus.OPEN)):
        proposals = list(
            session.scalars(select(Proposal).where(Proposal.incident_id == incident.id))
        )
        in_scope = (
            scope == "all"
            or (scope == "service" and incident.origin_service == target)
            or (scope == "runbook" and any(p.runbook_id == target for p in proposals))
        )
        if not in_scope:
            continue
        busy = session.scalar(
            select(Execution.id).where(
                Execution.incident_id == incident.id, Execution.status.in_(FIXING)
            )
        )
        asking = session.scalar(
            select(Approval.id)
            .join(Decision, Decision.id == Approval.decision_id)
            .where(
                Decision.proposal_id.in_([p.id for p in proposals]),
                Approval.status == ApprovalStatus.PENDING,
            )
        )
        if busy is None and asking is None:
            incident.triaged_origin = None
            released.append(incident)
    return released
