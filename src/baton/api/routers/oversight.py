"""How people hold the baton: overrides, on-call and escalation, and the policy itself."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from baton.act.executions import to_dict as execution_dict
from baton.api.deps import actor_of, parsed, platform, require, session
from baton.api.errors import ApiError
from baton.api.params import Id
from baton.govern import escalation, oncall
from baton.govern import overrides as overrides_
from baton.govern.config import render
from baton.govern.overrides import CATEGORIES
from baton.govern.overrides import to_dict as override_dict
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["oversight"])
READ = Depends(require(Permission.READ))
OPERATE = Depends(require(Permission.OPERATE))
GOVERN = Depends(require(Permission.GOVERN))


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    reason: str = Field(min_length=1, max_length=2000)


def _override(
    p: Platform, execution_id: int, kind: str, body: OverrideIn, who: Principal
) -> dict[str, Any]:
    execution = p.commands.override(execution_id, kind, body.category, body.reason, actor_of(who))
    return execution_dict(execution)


def _override_route(kind: str, summary: str) -> None:
    def route(
        execution_id: Id,
        who: Principal = OPERATE,
        body: OverrideIn = Depends(parsed(OverrideIn)),
        p: Platform = Depends(platform),
    ) -> dict[str, Any]:
        return _override(p, execution_id, kind, body, who)

    router.post(f"/executions/{{execution_id}}/{kind}", summary=summary, name=f"{kind}_execution")(
        route
    )


_override_route("veto", "Stop an auto execution in its veto window")
_override_route("cancel", "Stop a running execution at its next step")
_override_route("rollback", "Undo a finished execution (reversible runbooks)")


@router.get("/overrides")
def overrides(_: Principal = READ, s: Session = Depends(session)) -> list[dict[str, Any]]:
    return [override_dict(o) for o in overrides_.recent(s)]


@router.get("/oncall/{service}", summary="Who is on call for a service right now")
def who(
    service: str,
    _: Principal = READ,
    p: Platform = Depends(platform),
    s: Session = Depends(session),
) -> dict[str, Any]:
    return oncall.to_dict(oncall.who_is_on_call(s, service, p.clock.now()))


@router.put("/oncall/rotations")
def put_rotation(
    who: Principal = GOVERN,
    body: oncall.RotationIn = Depends(parsed(oncall.RotationIn)),
    p: Platform = Depends(platform),
    s: Session = Depends(session),
) -> dict[str, Any]:
    row = oncall.put_rotation(s, body, actor_of(who), p.clock.now())
    return {"id": row.id, "name": row.name}


@router.put("/oncall/escalation-policies")
def put_escalation_policy(
    who: Principal = GOVERN,
    body: oncall.EscalationPolicyIn = Depends(parsed(oncall.EscalationPolicyIn)),
    p: Platform = Depends(platform),
    s: Session = Depends(session),
) -> dict[str, Any]:
    row = oncall.put_escalation_policy(s, body, actor_of(who), p.clock.now())
    return {"id": row.id, "service": row.service}


@router.post("/oncall/swaps", status_code=201, summary="Take a shift (leads: for anyone)")
def add_shift_swap(
    who: Principal = OPERATE,
    body: oncall.ShiftSwapIn = Depends(parsed(oncall.ShiftSwapIn)),
    p: Platform = Depends(platform),
    s: Session = Depends(session),
) -> dict[str, Any]:
    if body.user != who.name and not who.can(Permission.GOVERN):
        raise ApiError(
            403,
            "forbidden",
            "technicians can only take a shift themselves; "
            "a lead or admin can assign it to someone else",
        )
    row = oncall.add_swap(s, body, actor_of(who), p.clock.now())
    return {"id": row.id}


@router.get("/escalations")
def escalations(
    status: str | None = "open", _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    return [escalation.to_dict(e) for e in escalation.recent(s, status)]


@router.post("/escalations/{escalation_id}/acknowledge")
def acknowledge(
    escalation_id: Id,
    who: Principal = OPERATE,
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return escalation.to_dict(p.commands.acknowledge_escalation(escalation_id, actor_of(who)))


@router.get("/policy", summary="The autonomy policy in force")
def get_policy(_: Principal = READ, p: Platform = Depends(platform)) -> dict[str, Any]:
    return {"policy": p.config.policy.model_dump(mode="json"), "yaml": render(p.config.policy)}


@router.put("/policy", summary="Replace the policy (leads and admins; audited with a diff)")
def put_policy(
    who: Principal = GOVERN,
    body: Any = Depends(parsed(dict[str, Any])),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    policy, diff, warnings = p.commands.apply_policy(body, actor_of(who))
    return {"policy": policy.model_dump(mode="json"), "diff": diff, "warnings": warnings}
