"""Runbooks, proposals, decisions, approvals, executions and the kill switch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from baton.act import executions as executions_
from baton.act import logs
from baton.act.executions import to_dict as execution_dict
from baton.act.runbook import dry_run, resolve_params, schema
from baton.api.deps import actor_of, parsed, platform, require, session
from baton.api.params import Id, RowId
from baton.govern import killswitch
from baton.govern.flows import approvals as list_approvals
from baton.govern.flows import decision_dict, recent_decisions
from baton.govern.rbac import Permission, Principal
from baton.learn.kpis import track_record
from baton.runtime.platform import Platform
from baton.runtime.views import approval_view, runbook_rows
from baton.triage import propose as proposals_
from baton.triage.propose import to_dict as proposal_dict

router = APIRouter(prefix="/api/v1", tags=["automation"])
READ = Depends(require(Permission.READ))
OPERATE = Depends(require(Permission.OPERATE))
GOVERN = Depends(require(Permission.GOVERN))


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/runbooks")
def runbooks(
    _: Principal = READ, p: Platform = Depends(platform), s: Session = Depends(session)
) -> dict[str, Any]:
    items = runbook_rows(s, p.config.catalogue)
    errors = [str(e) for e in p.config.catalogue.errors]
    return {"runbooks": items, "errors": errors}


@router.get("/runbooks/schema", summary="The runbook JSON Schema, for editors")
def runbook_schema(_: Principal = READ) -> dict[str, Any]:
    return schema()


@router.get("/runbooks/{runbook_id}")
def runbook(
    runbook_id: str,
    _: Principal = READ,
    p: Platform = Depends(platform),
    s: Session = Depends(session),
) -> dict[str, Any]:
    rb = p.config.runbook(runbook_id)
    return {
        "id": rb.id,
        "version": rb.version,
        "document": rb.doc,
        "track_record": track_record(s, rb.id),
    }


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)


@router.post("/runbooks/{runbook_id}/dry-run", summary="Render exactly what would run")
def dry_run_route(
    runbook_id: str,
    _: Principal = OPERATE,
    body: DryRunIn = Depends(parsed(DryRunIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    rb = p.config.runbook(runbook_id)
    with p.db.session() as s:  # confined params: the policy's roots, the catalogue's hosts
        scope = p.config.scope(rb, p.config.graph(s))
    params = resolve_params(rb, origin_service=None, labels={}, overrides=body.params, scope=scope)
    return {
        "runbook": rb.id,
        "version": rb.version,
        "params": params,
        "dry_run": dry_run(rb, params),
    }


class ExecutionRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field(min_length=1, max_length=2000)
    incident_id: RowId | None = None


@router.post(
    "/runbooks/{runbook_id}/executions",
    status_code=202,
    summary="Ask for a run: decided by the policy like any proposal",
)
def request_execution(
    runbook_id: str,
    who: Principal = OPERATE,
    body: ExecutionRequestIn = Depends(parsed(ExecutionRequestIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.commands.request_execution(
        runbook_id, body.params, actor_of(who), body.reason, body.incident_id
    )


@router.post("/runbooks/{runbook_id}/breaker/close", summary="Trust a runbook again (leads)")
def close_breaker(
    runbook_id: str,
    who: Principal = GOVERN,
    body: ReasonIn = Depends(parsed(ReasonIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    p.commands.close_breaker(runbook_id, actor_of(who), body.reason)
    return {"runbook": runbook_id, "breaker": None}


@router.post("/runbooks/reload", summary="Reload runbooks and policy from disk")
def reload(who: Principal = GOVERN, p: Platform = Depends(platform)) -> dict[str, Any]:
    catalogue = p.commands.reload_runbooks(actor_of(who))
    return {"loaded": len(catalogue.runbooks), "errors": [str(e) for e in catalogue.errors]}


@router.get("/proposals")
def proposals(
    limit: int = Query(100, ge=1, le=1000), _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    return [proposal_dict(x) for x in proposals_.recent(s, limit)]


@router.get("/decisions")
def decisions(
    limit: int = Query(100, ge=1, le=1000), _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    return [decision_dict(d) for d in recent_decisions(s, limit)]


@router.get("/executions")
def executions(
    status: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = READ,
    s: Session = Depends(session),
) -> list[dict[str, Any]]:
    return [execution_dict(e) for e in executions_.recent(s, status, limit)]


@router.get("/executions/{execution_id}")
def execution(
    execution_id: Id, _: Principal = READ, s: Session = Depends(session)
) -> dict[str, Any]:
    return execution_dict(executions_.get(s, execution_id), with_steps=True)


@router.get(
    "/executions/{execution_id}/logs",
    summary="Follow an execution live (Server-Sent Events: step changes, then end)",
    response_class=StreamingResponse,
)
def execution_logs(
    execution_id: Id,
    max_s: float = Query(3600.0, gt=0, le=86400),
    _: Principal = READ,
    p: Platform = Depends(platform),
) -> StreamingResponse:
    follower = logs.Follower(p.db, execution_id, max_s=max_s)
    first = follower.poll()  # a missing execution is a 404, not an empty stream

    return StreamingResponse(
        logs.stream(follower, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/approvals")
def approvals(
    status: str | None = "pending", _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    return [approval_view(s, a) for a in list_approvals(s, status)]


class ApproveIn(ReasonIn):
    params: dict[str, Any] | None = Field(
        default=None, description="changed params; validated like the proposal's"
    )


@router.post("/approvals/{approval_id}/approve")
def approve(
    approval_id: Id,
    who: Principal = OPERATE,
    body: ApproveIn = Depends(parsed(ApproveIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    execution = p.commands.approve(approval_id, actor_of(who), body.reason, body.params)
    return {"approval": approval_id, "execution": execution.id if execution else None}


@router.post("/approvals/{approval_id}/reject")
def reject(
    approval_id: Id,
    who: Principal = OPERATE,
    body: ReasonIn = Depends(parsed(ReasonIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    p.commands.reject(approval_id, actor_of(who), body.reason)
    return {"approval": approval_id, "status": "rejected"}


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str = Field(pattern="^(all|runbook|service)$")
    target: str | None = Field(default=None, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


def _switch(fn: Any, body: PauseIn, who: Principal) -> dict[str, Any]:
    return {"paused": fn(body.scope, body.target, actor_of(who), body.reason)}


@router.get("/automation")
def automation(_: Principal = READ, s: Session = Depends(session)) -> dict[str, Any]:
    return {"paused": killswitch.active(s), "details": killswitch.details(s)}


@router.post("/automation/pause", summary="Kill switch: technicians and up may pause")
def pause(
    who: Principal = OPERATE,
    body: PauseIn = Depends(parsed(PauseIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return _switch(p.commands.pause, body, who)


@router.post("/automation/resume", summary="Only leads and admins may resume")
def resume(
    who: Principal = GOVERN,
    body: PauseIn = Depends(parsed(PauseIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return _switch(p.commands.resume, body, who)
