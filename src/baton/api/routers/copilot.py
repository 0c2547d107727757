"""The copilot over HTTP: an incident's investigation, follow-up questions, and turning
its drafted fix into a proposal (decided by the policy like any other)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from baton.api.deps import actor_of, parsed, platform, require
from baton.api.params import Id
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["copilot"])
READ = Depends(require(Permission.READ))
OPERATE = Depends(require(Permission.OPERATE))


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=2000)


class FixIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


@router.get(
    "/incidents/{incident_id}/investigation",
    summary="The copilot's report: causes ranked with evidence, checks, a drafted fix",
)
def investigation(
    incident_id: Id, who: Principal = READ, p: Platform = Depends(platform)
) -> dict[str, Any]:
    return p.commands.investigate(incident_id, actor_of(who))


@router.get(
    "/tickets/{ticket_id}/investigation",
    summary="The copilot's report on the incident a ticket is linked to",
)
def ticket_investigation(
    ticket_id: Id, who: Principal = READ, p: Platform = Depends(platform)
) -> dict[str, Any]:
    return p.commands.investigate(ticket_id, actor_of(who), ticket=True)


@router.post("/incidents/{incident_id}/ask", summary="Ask the copilot a follow-up question")
def ask(
    incident_id: Id,
    who: Principal = READ,
    body: QuestionIn = Depends(parsed(QuestionIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.commands.ask(incident_id, body.question, actor_of(who))


@router.post(
    "/incidents/{incident_id}/copilot-fix",
    summary="Propose the copilot's drafted fix; the policy decides it like any proposal",
)
def propose_fix(
    incident_id: Id,
    who: Principal = OPERATE,
    body: FixIn = Depends(parsed(FixIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.commands.propose_fix(incident_id, actor_of(who), body.reason)
