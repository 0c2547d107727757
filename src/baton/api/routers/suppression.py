"""Silences and maintenance windows: technicians (on call) may create and end them; every
change is audited with its author and comment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from baton.api.deps import actor_of, parsed, platform, require, session
from baton.api.params import Id
from baton.correlate import silences
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["suppression"])
READ = Depends(require(Permission.READ))
OPERATE = Depends(require(Permission.OPERATE))


@router.get("/silences")
def list_silences(
    active: bool = Query(False, description="only silences in force now"),
    _: Principal = READ,
    s: Session = Depends(session),
    p: Platform = Depends(platform),
) -> list[dict[str, Any]]:
    return [silences.silence_dict(x) for x in silences.list_silences(s, p.clock.now(), active)]


@router.post("/silences", status_code=201)
def create_silence(
    who: Principal = OPERATE,
    body: silences.SilenceIn = Depends(parsed(silences.SilenceIn)),
    s: Session = Depends(session),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return silences.silence_dict(silences.create_silence(s, body, actor_of(who), p.clock.now()))


@router.delete("/silences/{silence_id}")
def expire_silence(
    silence_id: Id,
    who: Principal = OPERATE,
    s: Session = Depends(session),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return silences.silence_dict(
        silences.expire_silence(s, silence_id, actor_of(who), p.clock.now())
    )


@router.get("/maintenance")
def list_windows(_: Principal = READ, s: Session = Depends(session)) -> list[dict[str, Any]]:
    return [silences.window_dict(w) for w in silences.list_windows(s)]


@router.post("/maintenance", status_code=201)
def create_window(
    who: Principal = OPERATE,
    body: silences.MaintenanceIn = Depends(parsed(silences.MaintenanceIn)),
    s: Session = Depends(session),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return silences.window_dict(silences.create_window(s, body, actor_of(who), p.clock.now()))


@router.delete("/maintenance/{window_id}")
def end_window(
    window_id: Id,
    who: Principal = OPERATE,
    s: Session = Depends(session),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return silences.window_dict(silences.end_window(s, window_id, actor_of(who), p.clock.now()))
