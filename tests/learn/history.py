"""Recorded histories with a known right answer: proposals, decisions, approvals, runs
and overrides written straight into the store, on the simulated clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from baton.store.models import Approval, Decision, Execution, Incident, Override, Proposal

AI = "baton.triage/symptom-match/1"


def record(
    platform: Any,
    runbook: str,
    service: str = "web",
    *,
    tier: str = "approve",
    approval: str | None = "approved",
    status: str | None = "succeeded",
    verified: bool | None = True,
    override: tuple[str, str] | None = None,  # (kind, category)
    proposer: str = AI,
    incident: int | None = None,
    params: dict[str, Any] | None = None,
    approver: str = "tia",
    minutes: float = 10,
) -> dict[str, int | None]:
    """One proposal's life, `minutes` after the previous one (the clock moves on)."""
    clock = platform.clock
    clock.advance(timedelta(minutes=minutes))
    at = clock.now()
    with platform.db.session() as s:
        if incident is None:
            inc = Incident(
                title=f"{service} trouble",
                origin_service=service,
                services=[service],
                opened_at=at - timedelta(minutes=5),
                updated_at=at,
            )
            s.add(inc)
            s.flush()
            incident = inc.id
        p = Proposal(
            incident_id=incident,
            runbook_id=runbook,
            runbook_version="v1",
            params=params or {"service": service},
            confidence=0.9,
            rationale="test history",
            proposer=proposer,
            status="decided",
            created_at=at,
        )
        s.add(p)
        s.flush()
        d = Decision(proposal_id=p.id, tier=tier, decided_by="test", decided_at=at)
        s.add(d)
        s.flush()
        if tier == "approve" and approval:
            s.add(
                Approval(
                    decision_id=d.id,
                    status=approval,
                    requested_by=proposer,
                    approvers=[approver] if approval == "approved" else [],
                    decided_by=approver,
                    created_at=at,
                    decided_at=at + timedelta(minutes=1),
                )
            )
        execution = None
        if status:
            e = Execution(
                decision_id=d.id,
                incident_id=incident,
                runbook_id=runbook,
                runbook_version="v1",
                params=p.params,
                idempotency_key=f"test-{p.id}",
                status=status,
                verified=verified,
                created_at=at,
                started_at=at + timedelta(minutes=1),
                finished_at=at + timedelta(minutes=3),
            )
            s.add(e)
            s.flush()
            execution = e.id
            if override:
                kind, category = override
                s.add(
                    Override(
                        execution_id=e.id,
                        kind=kind,
                        category=category,
                        reason="test",
                        actor="lee",
                        created_at=at + timedelta(minutes=2),
                    )
                )
        return {"incident": incident, "proposal": p.id, "execution": execution}
