"""Deciding proposals and the approval queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.act.actions import cannot_act_here, host_actions
from baton.act.confine import Scope
from baton.act.runbook import ParamError, Runbook, resolve_params
from baton.govern import breaker, killswitch
from baton.govern.config import PolicyConfig
from baton.govern.policy import PolicyInputs, Tier, TierDecision, decide
from baton.kernel.audit import Actor, append
from baton.kernel.enums import ApprovalStatus, IncidentStatus, ProposalStatus
from baton.kernel.errors import NotFound, Refused
from baton.store.db import lock_row
from baton.store.models import Approval, Decision, Incident, Proposal
from baton.store.models import Service as ServiceRow

POLICY = Actor("baton.govern.policy", "system", "tiers/1")
# A runbook that changes a real host runs only after a person approves, until a lead
# raises it in the policy (runbooks.<id>.autonomy): a file alone cannot make it `auto`.
HOST_CEILING = Tier.APPROVE


class ApprovalError(Refused):
    """An approval action that is not allowed; the message says why."""


def decide_tier(
    session: Session,
    runbook: Runbook,
    *,
    confidence: float,
    service: str | None,
    env: str,
    policy: PolicyConfig,
    at: datetime,
    missing_target: str | None = None,
    origin: str | None = None,
) -> tuple[TierDecision, PolicyInputs]:
    """Gather every limit that applies and ask `decide()`; one place for all callers.
    Returns the decision, its reasons in words that name where each limit is set, and the
    inputs it was made from.

    `origin`: the incident's origin service when the run names another (a label chose
    it); the caps and pauses of both apply, so naming a service never escapes a cap."""
    cap, cap_source = policy.cap(service, env)
    if origin and origin != service:
        other, other_source = policy.cap(origin, env)
        if other < cap:
            cap, cap_source = other, other_source
    freeze = policy.frozen(service, at)
    recommend_below, observe_below = policy.gates(runbook.id, runbook.gates())
    ceiling, ceiling_source = policy.ceiling(runbook.id, env, runbook.ceiling(env), service)
    if origin and origin != service:  # a service's own ceiling never lifts another's run
        other, other_source = policy.ceiling(runbook.id, env, runbook.ceiling(env), origin)
        if other < ceiling:
            ceiling, ceiling_source = other, other_source
    touches, held = host_actions(runbook.doc), ""
    if ceiling_source == "runbook" and touches:
        ceiling = min(ceiling, HOST_CEILING)
        held = (
            f" ({', '.join(touches)} steps act on a real host: at most approve until a "
            "lead raises it in the policy)"
        )
    inputs = PolicyInputs(
        runbook_ceiling=ceiling,
        confidence=confidence,
        recommend_below=recommend_below,
        observe_below=observe_below,
        service_cap=cap,
        has_owner=bool(runbook.owner),
        frozen=freeze is not None,
        paused=killswitch.paused_scope(session, runbook.id, service)
        or (killswitch.paused_scope(session, runbook.id, origin) if origin else None),
        breaker_open=breaker.is_open(session, runbook.id),
        missing_target=missing_target,
    )
    decided = decide(inputs)
    reasons = [
        (f"{r}: {freeze.reason}" if freeze is not None and "freeze" in r else r)
        .replace("service/environment cap", f"cap of {cap_source}")
        .replace("runbook ceiling", f"runbook ceiling (set in the {ceiling_source})")
        + (held if r.startswith("runbook ceiling") else "")
        for r in decided.reasons
    ]
    return TierDecision(decided.tier, tuple(reasons)), inputs


def standing_tiers(
    session: Session,
    runbooks: Iterable[Runbook],
    envs: Iterable[str],
    policy: PolicyConfig,
    at: datetime,
    targets: dict[str, Any],
) -> list[dict[str, Any]]:
    """The tier a sure (confidence 1.0) proposal of each runbook would get in each
    environment at this moment, and for each service the policy gives the runbook its own
    ceiling, with its reasons; incidents may only lower it (confidence, service caps)."""
    envs = list(envs)
    service_env = dict(session.execute(select(ServiceRow.name, ServiceRow.env)).tuples().all())
    rows = []
    for rb in sorted(runbooks, key=lambda r: r.id):
        chosen = policy.runbooks.get(rb.id)
        own = sorted(chosen.services) if chosen else []
        scopes = [(env, None) for env in envs]
        scopes += [(service_env.get(name, "prod"), name) for name in own]
        for env, service in scopes:
            decided, _ = decide_tier(
                session,
                rb,
                confidence=1.0,
                service=service,
                env=env,
                policy=policy,
                at=at,
                missing_target=cannot_act_here(rb.doc, targets),
            )
            rows.append(
                {
                    "runbook": rb.id,
                    "env": env,
                    "service": service,
                    "tier": decided.tier.label,
                    "reasons": list(decided.reasons),
                    "acts_on_host": host_actions(rb.doc),
                }
            )
    return rows


def _origin_of(session: Session, proposal: Proposal) -> str | None:
    incident = session.get(Incident, proposal.incident_id) if proposal.incident_id else None
    return incident.origin_service if incident else None


def decide_proposal(
    session: Session,
    proposal: Proposal,
    runbook: Runbook,
    *,
    service: str | None,
    env: str,
    policy: PolicyConfig,
    at: datetime,
    missing_target: str | None = None,
) -> tuple[Decision, Approval | None]:
    """Apply the autonomy policy to a proposal; queue an approval when one is needed."""
    result, inputs = decide_tier(
        session,
        runbook,
        confidence=proposal.confidence,
        service=service,
        env=env,
        policy=policy,
        at=at,
        missing_target=missing_target,
        origin=_origin_of(session, proposal),
    )
    reasons = list(result.reasons)
    decision = Decision(
        proposal_id=proposal.id,
        tier=result.tier.label,
        reasons=reasons,
        decided_by=f"{POLICY.name}/{POLICY.version}",
        decided_at=at,
    )
    session.add(decision)
    proposal.status = ProposalStatus.DECIDED
    session.flush()
    append(
        session,
        actor=POLICY,
        action="decision.made",
        subject=f"proposal:{proposal.id}",
        at=at,
        inputs={
            "runbook": runbook.id,
            "version": runbook.version,
            "env": env,
            "service": service,
            "confidence": proposal.confidence,
            "ceiling": inputs.runbook_ceiling.label,
            "cap": inputs.service_cap.label,
            "owner": runbook.owner,
            "paused": inputs.paused,
            "frozen": inputs.frozen,
        },
        decision=result.tier.label,
        rationale="; ".join(reasons),
    )
    approval = None
    if result.tier == Tier.APPROVE:
        approval = Approval(
            decision_id=decision.id,
            status=ApprovalStatus.PENDING,
            requested_by=proposal.proposer,
            required_approvals=2 if runbook.risk == "high" else 1,
            approvers=[],
            counted_people=[],
            created_at=at,
            expires_at=at + timedelta(seconds=policy.approval_ttl_s),
        )
        session.add(approval)
        session.flush()
        append(
            session,
            actor=POLICY,
            action="approval.requested",
            subject=f"approval:{approval.id}",
            at=at,
            inputs={"decision": decision.id, "runbook": runbook.id, "risk": runbook.risk},
            decision="pending",
            rationale=f"{approval.required_approvals} approver(s) needed ({runbook.risk} risk)",
        )
    return decision, approval


def _pending(session: Session, approval_id: int, at: datetime) -> Approval:
    """The approval, locked for this transaction, if it can still be decided."""
    if not lock_row(session, Approval, approval_id):
        raise NotFound(f"no approval {approval_id}")
    approval = session.get(Approval, approval_id)
    if approval.status != ApprovalStatus.PENDING:
        raise ApprovalError(f"approval {approval_id} is {approval.status}, not pending")
    if approval.expires_at is not None and at >= approval.expires_at:
        raise ApprovalError(f"approval {approval_id} expired at {approval.expires_at.isoformat()}")
    return approval


def blocked_reason(
    session: Session, approval_id: int, policy: PolicyConfig, at: datetime
) -> str | None:
    """Why approving now would be wrong even though the request is still pending."""
    approval = session.get(Approval, approval_id)
    if approval is None:  # checked first: everything after (params too) reads it
        raise NotFound(f"no approval {approval_id}")
    proposal = proposal_of(session, approval)
    service = params_of(session, approval).get("service")
    incident = session.get(Incident, proposal.incident_id) if proposal.incident_id else None
    if incident is not None and incident.status == IncidentStatus.RESOLVED:
        return f"incident {incident.id} has resolved; nothing to fix"
    if proposal.status == ProposalStatus.SUPERSEDED:
        return "the proposal was superseded by a newer diagnosis"
    scope = killswitch.paused_scope(session, proposal.runbook_id, service)
    if scope:
        return f"automation is paused ({scope})"
    freeze = policy.frozen(service, at)
    if freeze is not None:
        return f"a freeze window is active: {freeze.reason}"
    if breaker.is_open(session, proposal.runbook_id):
        return f"the circuit breaker of {proposal.runbook_id} is open"
    return None


def proposal_of(session: Session, approval: Approval) -> Proposal:
    return session.get(Proposal, session.get(Decision, approval.decision_id).proposal_id)


def params_of(session: Session, approval: Approval) -> dict[str, Any]:
    """What would run: the params a person changed, else the proposal's."""
    return dict(approval.params) if approval.params else dict(proposal_of(session, approval).params)


def change_params(
    session: Session,
    approval_id: int,
    changes: dict[str, Any],
    runbook: Runbook,
    *,
    env_of: Callable[[str | None], str],
    policy: PolicyConfig,
    approver: Actor,
    at: datetime,
    scope: Scope | None = None,
) -> dict[str, Any]:
    """A person changes what would run. The new params are validated like the AI's, the
    policy is asked again for them (cap, freeze, pause...), and earlier approvals are
    cleared: they approved something else."""
    approval = _pending(session, approval_id, at)
    current = params_of(session, approval)
    fixed = sorted(
        n for n in changes if runbook.params.get(n, {}).get("source", "").startswith("const:")
    )
    if fixed:
        raise ApprovalError(f"param {fixed[0]!r} is fixed by the runbook and cannot be changed")
    try:
        chosen = resolve_params(
            runbook,
            origin_service=current.get("service"),
            labels={},
            overrides={**current, **changes},
            scope=scope,
        )
    except ParamError as exc:
        raise ApprovalError(f"modified params rejected: {exc}") from None
    if chosen == current:
        return current
    service = chosen.get("service")
    result, _ = decide_tier(
        session,
        runbook,
        confidence=proposal_of(session, approval).confidence,
        service=service,
        env=env_of(service),
        policy=policy,
        at=at,
    )
    if result.tier < Tier.APPROVE:
        raise ApprovalError(
            f"with these params the policy allows only {result.tier.label}: "
            + "; ".join(result.reasons)
        )
    cleared = list(approval.approvers)
    approval.params, approval.approvers, approval.counted_people = chosen, [], []
    append(
        session,
        actor=approver,
        action="approval.params_modified",
        subject=f"approval:{approval.id}",
        at=at,
        inputs={"before": current, "after": chosen, "cleared_approvers": cleared},
        decision="modified",
        rationale="earlier approvals were for other params" if cleared else None,
    )
    return chosen


def people(actor: Actor) -> set[str]:
    """Everyone an actor's word speaks for: the person, and whoever minted their token
    for them (that issuer has seen the secret, so could have said it)."""
    return {actor.name} | ({actor.issued_by} if actor.issued_by else set())


def _requesters(session: Session, approval: Approval) -> set[str]:
    """The requester (an AI component by its name) and, for a person's request made with
    a token someone else minted, that issuer too."""
    names = {approval.requested_by, approval.requested_by.split("/")[0]}
    for item in proposal_of(session, approval).evidence or []:
        if isinstance(item, dict) and item.get("kind") == "request" and item.get("issued_by"):
            names.add(item["issued_by"])
    return names


def approve(session: Session, approval_id: int, approver: Actor, reason: str, at: datetime) -> bool:
    """Add an approval; True when enough distinct people have said yes.

    Four-eyes counts people, not names: an approval is credited to everyone it speaks
    for (`people`), and counts only if none of them requested the run or was already
    counted. So an admin who mints a token "for bob" cannot approve twice, or approve
    a run requested as bob: the second word is the admin's again."""
    if approver.kind != "human":
        raise ApprovalError("only a person can approve; AI and system actors cannot")
    approval = _pending(session, approval_id, at)
    who, requesters = people(approver), _requesters(session, approval)
    if approver.name in (approval.requested_by, approval.requested_by.split("/")[0]):
        raise ApprovalError("the requester cannot approve its own request")
    if who & requesters:
        raise ApprovalError(
            f"the requester cannot approve its own request: {sorted(who & requesters)[0]} "
            "held the token that asked for it or the one approving it; another person must"
        )
    if approver.name in approval.approvers:
        raise ApprovalError(f"{approver.name} has already approved; another person must")
    counted = set(approval.counted_people)
    if who & counted:
        raise ApprovalError(
            f"{approver.name}'s token was issued by {approver.issued_by}, whose approval is "
            "already counted; another person must approve"
        )
    approval.approvers = [*approval.approvers, approver.name]
    approval.counted_people = sorted(counted | who)
    done = len(approval.approvers) >= approval.required_approvals
    if done:
        approval.status, approval.decided_by, approval.decided_at = (
            ApprovalStatus.APPROVED,
            approver.name,
            at,
        )
        approval.reason = reason
    append(
        session,
        actor=approver,
        action="approval.approved" if done else "approval.partial",
        subject=f"approval:{approval.id}",
        at=at,
        inputs={
            "approvers": approval.approvers,
            "required": approval.required_approvals,
            "token_issued_by": approver.issued_by,
        },
        decision="approved" if done else "approved (awaiting another approver)",
        rationale=reason,
    )
    return done


def reject(session: Session, approval_id: int, approver: Actor, reason: str, at: datetime) -> None:
    approval = _pending(session, approval_id, at)
    approval.status, approval.decided_by, approval.decided_at = (
        ApprovalStatus.REJECTED,
        approver.name,
        at,
    )
    approval.reason = reason
    append(
        session,
        actor=approver,
        action="approval.rejected",
        subject=f"approval:{approval.id}",
        at=at,
        decision="rejected",
        rationale=reason,
    )


def cancel_pending(session: Session, incident_id: int, why: str, at: datetime) -> list[int]:
    """Withdraw every pending approval about an incident (re-triaged or resolved)."""
    rows = session.scalars(
        select(Approval)
        .join(Decision, Decision.id == Approval.decision_id)
        .join(Proposal, Proposal.id == Decision.proposal_id)
        .where(Proposal.incident_id == incident_id, Approval.status == ApprovalStatus.PENDING)
    ).all()
    for approval in rows:
        approval.status, approval.decided_at, approval.reason = ApprovalStatus.WITHDRAWN, at, why
        append(
            session,
            actor=POLICY,
            action="approval.withdrawn",
            subject=f"approval:{approval.id}",
            at=at,
            decision="withdrawn",
            rationale=why,
        )
    return [a.id for a in rows]


def expire_approvals(session: Session, at: datetime) -> list[Approval]:
    """Expire approvals that waited too long, and escalate each."""
    stale = list(
        session.scalars(
            select(Approval).where(
                Approval.status == ApprovalStatus.PENDING, Approval.expires_at <= at
            )
        )
    )
    for approval in stale:
        approval.status, approval.decided_at = ApprovalStatus.EXPIRED, at
        append(
            session,
            actor=POLICY,
            action="approval.expired",
            subject=f"approval:{approval.id}",
            at=at,
            decision="escalate",
            rationale="nobody approved in time; escalated to the owner and on-call",
        )
    return stale


def pending_approvals(session: Session) -> list[Approval]:
    return list(
        session.scalars(
            select(Approval).where(Approval.status == ApprovalStatus.PENDING).order_by(Approval.id)
        )
    )


def recent_decisions(session: Session, limit: int) -> list[Decision]:
    return list(session.scalars(select(Decision).order_by(Decision.id.desc()).limit(limit)))


def decision_of(session: Session, approval: Approval) -> Decision:
    return session.get(Decision, approval.decision_id)


def approvals(session: Session, status: str | None) -> list[Approval]:
    """Approvals oldest first (the queue people work through), optionally one status."""
    query = select(Approval).order_by(Approval.id)
    if status:
        query = query.where(Approval.status == status)
    return list(session.scalars(query))


def decision_dict(d: Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "proposal_id": d.proposal_id,
        "tier": d.tier,
        "reasons": d.reasons,
        "decided_by": d.decided_by,
        "decided_at": d.decided_at,
    }


def to_dict(a: Approval) -> dict[str, Any]:
    return {
        "id": a.id,
        "decision_id": a.decision_id,
        "status": a.status,
        "requested_by": a.requested_by,
        "required_approvals": a.required_approvals,
        "approvers": a.approvers,
        "decided_by": a.decided_by,
        "reason": a.reason,
        "created_at": a.created_at,
        "expires_at": a.expires_at,
        "decided_at": a.decided_at,
    }
