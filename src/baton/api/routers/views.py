"""Read-only views people look at to understand Baton's standing decisions: why each
runbook has the tier it has, per environment, before any incident asks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from baton.api.deps import platform, require, session
from baton.govern.flows import standing_tiers
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
    graph = p.config.graph(s)
    policy = p.config.policy
    envs = sorted({"prod", *policy.environments, *(d.env for d in graph.services.values())})
    catalogue, targets = p.config.catalogue, p.dispatch.targets
    return standing_tiers(s, catalogue, envs, policy, p.clock.now(), targets)
