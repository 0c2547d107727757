"""Policy replay: decide past proposals again under a candidate policy, and say what
would have changed and whether those changes would have been safe.

Each decision's recorded inputs (confidence, environment, service, the pause and the
freeze that held then, from its `decision.made` audit record) are kept as they were;
what the candidate changes (ceilings, caps, gates, freeze windows) is applied by the
same `decide()` the live policy uses. A change towards more autonomy on a proposal
whose run failed, was rolled back or overridden, or whose approval a person rejected,
is *flagged*: the candidate would have let Baton do on its own what people stopped or
what went wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.act.runbook import Runbook
from baton.act.versions import get_version
from baton.govern.config import PolicyConfig
from baton.govern.policy import PolicyInputs, Tier, decide
from baton.kernel.enums import BAD_ENDING
from baton.learn.shadow import Outcome, outcomes
from baton.learn.trust import standing_ceiling
from baton.store.models import AuditRecord

_HELD_BY_RECORD = ("circuit breaker is open", "cannot act here")


def _recorded_inputs(session: Session, since: datetime | None) -> dict[int, AuditRecord]:
    query = select(AuditRecord).where(AuditRecord.action == "decision.made")
    if since is not None:
        query = query.where(AuditRecord.ts >= since)
    return {int(r.subject.split(":", 1)[1]): r for r in session.scalars(query)}


def redecide(
    record: AuditRecord | None, o: Outcome, runbook: Runbook, policy: PolicyConfig
) -> Tier:
    """The tier `policy` gives this proposal, with the facts of the moment it was made."""
    inputs = record.inputs if record is not None else {}
    env = inputs.get("env") or o.env
    service = inputs.get("service", o.service)
    recommend_below, observe_below = policy.gates(runbook.id, runbook.gates())
    rationale = (record.rationale or "") if record is not None else ""
    held = next((why for why in _HELD_BY_RECORD if why in rationale), None)
    at = record.ts if record is not None else o.created_at
    decided = decide(
        PolicyInputs(
            runbook_ceiling=standing_ceiling(runbook, env, policy, service),
            confidence=float(inputs.get("confidence", 1.0)),
            recommend_below=recommend_below,
            observe_below=observe_below,
            service_cap=policy.cap(service, env)[0],
            has_owner=bool(inputs.get("owner", runbook.owner)),
            frozen=policy.frozen(service, at) is not None,
            paused=inputs.get("paused"),
            breaker_open=held == "circuit breaker is open",
            missing_target=held,
        )
    )
    return decided.tier


def _went_wrong(o: Outcome) -> str | None:
    if o.override:
        return f"overridden ({o.override})"
    if o.approval == "rejected":
        return "a person rejected the approval"
    if o.status in BAD_ENDING:
        return f"the run {o.status}"
    return None


def replay(
    session: Session,
    candidate: PolicyConfig,
    catalogue: Mapping[str, Runbook],
    since: datetime | None = None,
) -> dict[str, Any]:
    """Every decided proposal since `since` under `candidate`: the moves between tiers,
    and each change, with the ones towards more autonomy that went wrong flagged."""
    recorded = _recorded_inputs(session, since)
    moves: Counter[tuple[str, str]] = Counter()
    changed, flagged = [], []
    skipped = 0
    for o in outcomes(session, since):
        if o.requested:
            continue
        record = recorded.get(o.proposal)
        version = (record.inputs.get("version") if record is not None else None) or ""
        runbook = get_version(session, o.runbook, version) or catalogue.get(o.runbook)
        if runbook is None:
            skipped += 1
            continue
        before = Tier.parse(o.tier)
        after = redecide(record, o, runbook, candidate)
        moves[(before.label, after.label)] += 1
        if after == before:
            continue
        row = {
            "proposal": o.proposal,
            "runbook": o.runbook,
            "service": o.service,
            "was": before.label,
            "would_be": after.label,
            "execution": o.execution,
            "status": o.status,
            "went_wrong": _went_wrong(o),
        }
        changed.append(row)
        if after > before and row["went_wrong"]:
            flagged.append(row)
    total = sum(moves.values())
    return {
        "proposals": total,
        "skipped": skipped,
        "changed": len(changed),
        "more_autonomy": sum(n for (a, b), n in moves.items() if Tier.parse(b) > Tier.parse(a)),
        "less_autonomy": sum(n for (a, b), n in moves.items() if Tier.parse(b) < Tier.parse(a)),
        "auto": {"before": _count(moves, 0, "auto"), "after": _count(moves, 1, "auto")},
        "approvals": {"before": _count(moves, 0, "approve"), "after": _count(moves, 1, "approve")},
        "blocked": {"before": _count(moves, 0, "observe"), "after": _count(moves, 1, "observe")},
        "moves": [{"was": a, "would_be": b, "count": n} for (a, b), n in sorted(moves.items())],
        "flagged": flagged,
        "changes": changed,
    }


def _count(moves: Counter[tuple[str, str]], side: int, tier: str) -> int:
    return sum(n for pair, n in moves.items() if pair[side] == tier)
