"""Read-only views people look at to understand Baton's standing decisions: why each
runbook has the tier it has, per environment, before any incident asks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from baton.act.actions import cannot_act_here, host_actions
from baton.api.deps import platform, require, session
from baton.govern.flows import evaluate
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["views"])
READ = Depends(require(Permission.READ))


@router.get(
    "/policy/tiers",
    summary="Each runbook's tier per environment now, with the limits that set it",
)
def policy_tiers(
    _: Principal = READ, p: Platform = Depends(platform), s: Session = Depends(session)
) -> list[dict[str, Any]]:
    """The tier a sure (confidence 1.0) proposal of each runbook would get in each
    environment at this moment; incidents may only lower it (confidence, service caps)."""
    graph = p.graph(s)
    envs = sorted({"prod", *p.policy.environments, *(d.env for d in graph.services.values())})
    at = p.clock.now()
    rows = []
    for rb in sorted(p.catalogue, key=lambda r: r.id):
        for env in envs:
            result = evaluate(
                s,
                rb,
                confidence=1.0,
                service=None,
                env=env,
                policy=p.policy,
                at=at,
                missing_target=cannot_act_here(rb.doc, p.targets),
            )
            rows.append(
                {
                    "runbook": rb.id,
                    "env": env,
                    "tier": result.tier.label,
                    "reasons": result.reasons,
                    "acts_on_host": host_actions(rb.doc),
                }
            )
    return rows
