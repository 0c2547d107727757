"""Runbooks, proposals, decisions, approvals, executions and the kill switch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.act import logs
from baton.act.executor import to_dict as execution_dict
from baton.act.runbook import dry_run, resolve_params, schema
from baton.act.service import get_version
from baton.api.deps import actor_of, parsed, platform, require, session
from baton.api.errors import ApiError
from baton.correlate.incidents import to_dict as incident_dict
from baton.govern import breaker, killswitch
from baton.govern.flows import params_of, proposal_of
from baton.govern.flows import to_dict as approval_dict
from baton.govern.rbac import Permission, Principal
from baton.learn.kpis import trust
from baton.runtime.platform import Platform
from baton.store.models import Approval, Decision, Execution, Incident, Proposal
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
    items = [
        {
            "id": rb.id,
            "version": rb.version,
            "title": rb.title,
            "owner": rb.owner,
            "risk": rb.risk,
            "reversible": rb.reversible,
            "autonomy": rb.doc["autonomy"],
            "trust": trust(s, rb.id),
            "breaker": breaker.state(s, rb.id),
        }
        for rb in p.catalogue
    ]
    errors = [str(e) for e in p.catalogue.errors]
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
    rb = p.catalogue.get(runbook_id)
    if rb is None:
        raise ApiError(404, "not_found", f"no runbook {runbook_id!r}")
    return {"id": rb.id, "version": rb.version, "document": rb.doc, "trust": trust(s, rb.id)}


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
    rb = p.catalogue.get(runbook_id)
    if rb is None:
        raise ApiError(404, "not_found", f"no runbook {runbook_id!r}")
    with p.db.session() as s:  # confined params: the policy's roots, the catalogue's hosts
        scope = p.scope(rb, p.graph(s))
    params = resolve_params(rb, origin_service=None, labels={}, overrides=body.params, scope=scope)
    return {
        "runbook": rb.id,
        "version": rb.version,
        "params": params,
        "dry_run": dry_run(rb, params),
    }


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field(min_length=1, max_length=2000)
    incident_id: int | None = None


@router.post(
    "/runbooks/{runbook_id}/run",
    status_code=202,
    summary="Ask for a run: decided by the policy like any proposal",
)
def request_run(
    runbook_id: str,
    who: Principal = OPERATE,
    body: RunIn = Depends(parsed(RunIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.request_run(runbook_id, body.params, actor_of(who), body.reason, body.incident_id)


@router.post("/runbooks/{runbook_id}/breaker/close", summary="Trust a runbook again (leads)")
def close_breaker(
    runbook_id: str,
    who: Principal = GOVERN,
    body: ReasonIn = Depends(parsed(ReasonIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    p.close_breaker(runbook_id, actor_of(who), body.reason)
    return {"runbook": runbook_id, "breaker": None}


@router.post("/runbooks/reload", summary="Reload runbooks and policy from disk")
def reload(who: Principal = GOVERN, p: Platform = Depends(platform)) -> dict[str, Any]:
    catalogue = p.reload_runbooks(actor_of(who))
    return {"loaded": len(catalogue.runbooks), "errors": [str(e) for e in catalogue.errors]}


@router.get("/proposals")
def proposals(
    limit: int = Query(100, ge=1, le=1000), _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    return [
        proposal_dict(x)
        for x in s.scalars(select(Proposal).order_by(Proposal.id.desc()).limit(limit))
    ]


@router.get("/decisions")
def decisions(
    limit: int = Query(100, ge=1, le=1000), _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    rows = s.scalars(select(Decision).order_by(Decision.id.desc()).limit(limit))
    return [
        {
            "id": d.id,
            "proposal_id": d.proposal_id,
            "tier": d.tier,
            "reasons": d.reasons,
            "decided_by": d.decided_by,
            "decided_at": d.decided_at,
        }
        for d in rows
    ]


@router.get("/executions")
def executions(
    status: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = READ,
    s: Session = Depends(session),
) -> list[dict[str, Any]]:
    query = select(Execution).order_by(Execution.id.desc()).limit(limit)
    if status:
        query = query.where(Execution.status == status)
    return [execution_dict(e) for e in s.scalars(query)]


@router.get("/executions/{execution_id}")
def execution(
    execution_id: int, _: Principal = READ, s: Session = Depends(session)
) -> dict[str, Any]:
    row = s.get(Execution, execution_id)
    if row is None:
        raise ApiError(404, "not_found", f"no execution {execution_id}")
    return execution_dict(row, with_steps=True)


@router.get(
    "/executions/{execution_id}/logs",
    summary="Follow an execution live (Server-Sent Events: step changes, then end)",
    response_class=StreamingResponse,
)
def execution_logs(
    execution_id: int,
    max_s: float = Query(3600.0, gt=0, le=86400),
    _: Principal = READ,
    p: Platform = Depends(platform),
) -> StreamingResponse:
    follower = logs.Follower(p.db, execution_id, max_s=max_s)
    try:
        first = follower.poll()  # a missing execution is a 404, not an empty stream
    except LookupError as exc:
        raise ApiError(404, "not_found", str(exc)) from None

    async def events() -> AsyncIterator[bytes]:
        batch = first
        while True:
            for item in batch:
                kind = item.pop("event")
                yield f"event: {kind}\ndata: ".encode() + orjson.dumps(item) + b"\n\n"
            if follower.done:
                return
            if not batch:
                yield b": still running\n\n"
            await asyncio.sleep(logs.POLL_S)
            batch = await run_in_threadpool(follower.poll)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/approvals")
def approvals(
    status: str | None = "pending", _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    query = select(Approval).order_by(Approval.id)
    if status:
        query = query.where(Approval.status == status)
    return [_approval_view(s, a) for a in s.scalars(query)]


def _approval_view(s: Session, a: Approval) -> dict[str, Any]:
    """Everything a person needs to decide: incident and evidence, the exact runbook
    version and what it would run, its risk, reversibility and track record."""
    item = approval_dict(a)
    decision = s.get(Decision, a.decision_id)
    proposal = proposal_of(s, a)
    runbook = get_version(s, proposal.runbook_id, proposal.runbook_version)
    incident = s.get(Incident, proposal.incident_id) if proposal.incident_id else None
    item["decision"] = {"tier": decision.tier, "reasons": decision.reasons}
    item["proposal"] = proposal_dict(proposal)
    item["incident"] = incident_dict(incident) if incident else None
    item["runbook"] = {
        "id": runbook.id,
        "version": runbook.version,
        "title": runbook.title,
        "owner": runbook.owner,
        "risk": runbook.risk,
        "reversible": runbook.reversible,
        "track_record": trust(s, runbook.id),
    }
    item["params"] = params_of(s, a)
    item["dry_run"] = dry_run(runbook, item["params"])
    return item


class ApproveIn(ReasonIn):
    params: dict[str, Any] | None = Field(
        default=None, description="changed params; validated like the proposal's"
    )


@router.post("/approvals/{approval_id}/approve")
def approve(
    approval_id: int,
    who: Principal = OPERATE,
    body: ApproveIn = Depends(parsed(ApproveIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    execution = p.approve(approval_id, actor_of(who), body.reason, body.params)
    return {"approval": approval_id, "execution": execution.id if execution else None}


@router.post("/approvals/{approval_id}/reject")
def reject(
    approval_id: int,
    who: Principal = OPERATE,
    body: ReasonIn = Depends(parsed(ReasonIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    p.reject(approval_id, actor_of(who), body.reason)
    return {"approval": approval_id, "status": "rejected"}


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str = Field(pattern="^(all|runbook|service)$")
    target: str | None = Field(default=None, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


def _switch(fn: Any, body: PauseIn, who: Principal) -> dict[str, Any]:
    try:
        return {"paused": fn(body.scope, body.target, actor_of(who), body.reason)}
    except ValueError as exc:
        raise ApiError(422, "invalid", str(exc)) from None


@router.get("/automation")
def automation(_: Principal = READ, s: Session = Depends(session)) -> dict[str, Any]:
    return {"paused": killswitch.active(s), "details": killswitch.details(s)}


@router.post("/automation/pause", summary="Kill switch: technicians and up may pause")
def pause(
    who: Principal = OPERATE,
    body: PauseIn = Depends(parsed(PauseIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return _switch(p.pause, body, who)


@router.post("/automation/resume", summary="Only leads and admins may resume")
def resume(
    who: Principal = GOVERN,
    body: PauseIn = Depends(parsed(PauseIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return _switch(p.resume, body, who)
