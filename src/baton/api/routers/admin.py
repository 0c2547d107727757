"""Services, tokens and the audit ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from baton.api.deps import actor_of, forget_tokens, parsed, platform, require, session
from baton.api.params import Id, Seq
from baton.correlate.topology import load_topology, service_def
from baton.correlate.topology import to_dict as service_dict
from baton.govern.rbac import Permission, Principal, list_tokens
from baton.kernel import audit
from baton.runtime.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["admin"])
READ = Depends(require(Permission.READ))
GOVERN = Depends(require(Permission.GOVERN))
ADMIN = Depends(require(Permission.ADMIN))


@router.get("/services")
def services(_: Principal = READ, s: Session = Depends(session)) -> list[dict[str, Any]]:
    return [service_dict(d) for d in load_topology(s).services.values()]


class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")
    kind: str = "service"
    host: str | None = None
    owner: str | None = None
    env: str = "prod"
    criticality: int = Field(default=2, ge=1, le=4)
    user_facing: bool = False
    depends_on: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    zone: str | None = None
    shared: bool = False
    endpoints: list[str] = Field(default_factory=list)


@router.put("/services", summary="Declare services and dependencies (upsert)")
def put_services(
    who: Principal = ADMIN,
    items: list[ServiceIn] = Depends(parsed(list[ServiceIn])),
    p: Platform = Depends(platform),
) -> dict[str, int]:
    defs = [service_def(i.model_dump()) for i in items]
    return {"services": p.commands.declare_services(defs, actor_of(who))}


@router.get("/audit")
def audit_records(
    since: datetime | None = None,
    subject: str | None = None,
    action: str | None = None,
    after_seq: Seq = 0,
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = GOVERN,
    s: Session = Depends(session),
) -> list[dict[str, Any]]:
    rows = audit.records(
        s, since=since, subject=subject, action=action, limit=limit, after_seq=after_seq
    )
    return [audit.to_dict(r) for r in rows]


@router.get("/audit/verify")
def audit_verify(_: Principal = GOVERN, s: Session = Depends(session)) -> dict[str, Any]:
    result = audit.verify(s)
    return {
        "ok": result.ok,
        "records": result.records,
        "problem": result.problem,
        "broken_seq": result.broken_seq,
    }


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    role: str


@router.get("/tokens")
def tokens(_: Principal = ADMIN, s: Session = Depends(session)) -> list[dict[str, Any]]:
    return [
        {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "prefix": t.prefix,
            "issued_by": t.issued_by,
            "created_at": t.created_at,
            "last_used_at": t.last_used_at,
            "revoked_at": t.revoked_at,
        }
        for t in list_tokens(s)
    ]


@router.post("/tokens", status_code=201, summary="Create a token; the secret is shown only here")
def new_token(
    who: Principal = ADMIN,
    body: TokenIn = Depends(parsed(TokenIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    token, secret = p.commands.create_token(body.name, body.role, actor_of(who), issued_by=who.name)
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "issued_by": token.issued_by,
        "token": secret,
    }


@router.delete("/tokens/{token_id}")
def delete_token(
    token_id: Id,
    request: Request,
    who: Principal = ADMIN,
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    token = p.commands.revoke_token(token_id, actor_of(who))
    forget_tokens(request)
    return {"id": token.id, "revoked_at": token.revoked_at}
