"""How each AI proposal fared with people, and shadow mode's comparisons.

A proposal decided `approve` was agreed with when approved as proposed; one decided
`auto` when its run was let stand. In `observe` (shadow) and `recommend`, Baton only
recorded what it would have done; when a person then acts on the same incident, the two
are compared: same runbook? same params? and would it have worked (the person's run of
that runbook succeeded and was verified)? That agreement feeds the trust ledger like
any other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.audit import Actor, append
from baton.kernel.enums import FINAL_EXECUTION, ApprovalStatus, ExecutionStatus
from baton.store.models import Approval, AuditRecord, Decision, Execution, Override, Proposal
from baton.store.models import Service as ServiceRow

AI_PROPOSER = "baton."  # proposals by Baton's own triage; a person's name otherwise
SHADOW = Actor("baton.learn", "ai", "shadow-compare/1")


@dataclass(frozen=True)
class Outcome:
    """One proposal's life: what was proposed and decided, what people did, the end."""

    proposal: int
    runbook: str
    params: dict[str, Any]
    service: str | None
    env: str
    tier: str
    created_at: datetime
    incident: int | None
    requested: bool  # a person asked for it (not Baton's triage)
    approval: str | None
    approval_params: dict[str, Any] | None
    execution: int | None
    status: str | None
    verified: bool | None
    override: str | None = None  # the reason people went against it
    agreed: bool | None = None  # None: nobody judged it (yet)
    worked: bool = False
    shadow: dict[str, Any] | None = None  # the comparison, in observe/recommend


def outcomes(session: Session, since: datetime | None = None) -> list[Outcome]:
    """Every decided proposal since `since`, oldest first, with its ending."""
    envs = dict(session.execute(select(ServiceRow.name, ServiceRow.env)).tuples().all())
    query = (
        select(
            Proposal.id,
            Proposal.runbook_id,
            Proposal.params,
            Proposal.proposer,
            Proposal.incident_id,
            Proposal.created_at,
            Decision.tier,
            Approval.status,
            Approval.params,
            Execution.id,
            Execution.status,
            Execution.verified,
        )
        .join(Decision, Decision.proposal_id == Proposal.id)
        .outerjoin(Approval, Approval.decision_id == Decision.id)
        .outerjoin(Execution, Execution.decision_id == Decision.id)
        .order_by(Proposal.id)
    )
    if since is not None:
        query = query.where(Proposal.created_at >= since)
    overridden = dict(
        session.execute(select(Override.execution_id, Override.category).order_by(Override.id))
        .tuples()
        .all()
    )
    rows = []
    for r in session.execute(query).tuples():
        pid, rid, params, proposer, incident, at, tier, ap, ap_params, eid, status, ver = r
        service = (params or {}).get("service")
        rows.append(
            Outcome(
                proposal=pid,
                runbook=rid,
                params=params or {},
                service=service,
                env=envs.get(service or "", "prod"),
                tier=tier,
                created_at=at,
                incident=incident,
                requested=not proposer.startswith(AI_PROPOSER),
                approval=ap,
                approval_params=ap_params,
                execution=eid,
                status=status,
                verified=ver,
                override=overridden.get(eid) if eid is not None else None,
            )
        )
    return rows


def _judged_in_person(o: Outcome) -> Outcome:
    """approve / auto: what the person did with the proposal itself."""
    worked = o.status == ExecutionStatus.SUCCEEDED and o.verified is True
    if o.override:
        return replace(o, agreed=False, worked=worked)
    if o.approval == ApprovalStatus.REJECTED:
        return replace(o, agreed=False, override="rejected")
    if o.approval == ApprovalStatus.APPROVED and o.approval_params not in (None, o.params):
        return replace(o, agreed=False, override="params_changed", worked=worked)
    if o.tier == "approve" and o.approval != ApprovalStatus.APPROVED:
        return o  # still pending, expired or withdrawn: nobody judged it
    if o.status in FINAL_EXECUTION:
        return replace(o, agreed=True, worked=worked)
    return o


def _compared(o: Outcome, person: Outcome | None) -> Outcome:
    """observe / recommend: Baton's proposal beside what a person then did."""
    if person is None:
        return o
    same = person.runbook == o.runbook
    same_params = same and person.params == o.params
    worked = same and person.status == ExecutionStatus.SUCCEEDED and person.verified is True
    comparison = {
        "person_proposal": person.proposal,
        "person_runbook": person.runbook,
        "person_execution": person.execution,
        "same_runbook": same,
        "same_params": same_params,
        "would_have_worked": worked,
    }
    return replace(
        o,
        agreed=same,
        worked=worked,
        override=None if same else "different_fix",
        shadow=comparison,
    )


def judge(rows: Iterable[Outcome]) -> list[Outcome]:
    """Baton's own proposals, each with whether people agreed and whether it worked."""
    rows = list(rows)
    by_people: dict[int, list[Outcome]] = defaultdict(list)
    for o in rows:
        if o.requested and o.incident is not None and o.execution is not None:
            by_people[o.incident].append(o)
    judged = []
    for o in rows:
        if o.requested:
            continue
        if o.tier in ("observe", "recommend"):
            later = (p for p in by_people.get(o.incident or -1, ()) if p.created_at >= o.created_at)
            judged.append(_compared(o, next(later, None)))
        else:
            judged.append(_judged_in_person(o))
    return judged


def comparisons(session: Session, since: datetime | None = None) -> list[dict[str, Any]]:
    """Shadow comparisons: every observe/recommend proposal a person then acted on."""
    return [
        {"proposal": o.proposal, "runbook": o.runbook, "tier": o.tier, **o.shadow}
        for o in judge(outcomes(session, since))
        if o.shadow is not None
    ]


def record_comparisons(session: Session, at: datetime) -> int:
    """Write each new comparison to the audit ledger once (what Baton would have done
    beside what the person did). Returns how many were new."""
    seen = set(
        session.scalars(select(AuditRecord.subject).where(AuditRecord.action == "shadow.compared"))
    )
    new = 0
    for c in comparisons(session):
        subject = f"proposal:{c['proposal']}"
        if subject in seen:
            continue
        new += 1
        append(
            session,
            actor=SHADOW,
            action="shadow.compared",
            subject=subject,
            at=at,
            inputs=c,
            decision="agreed" if c["same_runbook"] else "differed",
            rationale=(
                f"Baton would have run {c['runbook']} ({c['tier']}); the person ran "
                f"{c['person_runbook']}"
            ),
        )
    return new
