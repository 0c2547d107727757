"""Who holds the pager and what happened: on call with open escalations, and the audit
ledger searchable, with the chain verified on demand naming the first broken record."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from baton.govern import oncall
from baton.govern.rbac import Permission
from baton.kernel.audit import verify
from baton.kernel.errors import BatonError, Refused
from baton.runtime.drills import on_record
from baton.sandbox.faults import SCENARIOS
from baton.store.models import AuditRecord, Escalation, Rotation, Service
from baton.web.console import PREFIX, Posted, Viewer, acting, attempt, platform_of, render, viewer

router = APIRouter(prefix=PREFIX, include_in_schema=False)
AUDIT_PAGE = 100


@router.get("/oncall")
def oncall_page(request: Request, v: Viewer = Depends(viewer)) -> Response:
    p = platform_of(request)
    now = p.clock.now()
    with p.db.session() as s:
        services = list(s.scalars(select(Service.name).order_by(Service.name).limit(300)))
        now_on = [oncall.who_is_on_call(s, name, now) for name in services]
        rotations = list(s.scalars(select(Rotation).order_by(Rotation.name)))
        open_ = list(
            s.scalars(
                select(Escalation)
                .where(Escalation.status == "open")
                .order_by(Escalation.id.desc())
                .limit(100)
            )
        )
        return render(
            request, "oncall.html", v, now_on=now_on, rotations=rotations, escalations=open_
        )


@router.post("/escalations/{escalation_id}/acknowledge")
def acknowledge_escalation(
    request: Request, escalation_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    commands = platform_of(request).commands
    return attempt(
        request,
        post.v,
        lambda: commands.acknowledge_escalation(escalation_id, post.v.actor),
        "/oncall",
    )


@router.get("/audit")
def audit_page(
    request: Request,
    actor: str = Query("", max_length=128),
    action: str = Query("", max_length=64),
    subject: str = Query("", max_length=128),
    q: str = Query("", max_length=200),
    before: int | None = None,
    check: bool = False,
    v: Viewer = Depends(viewer),
) -> Response:
    p = platform_of(request)
    f = {"actor": actor, "action": action, "subject": subject, "q": q}
    query = select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(AUDIT_PAGE)
    if actor:
        query = query.where(AuditRecord.actor == actor)
    if action:
        query = query.where(AuditRecord.action == action)
    if subject:
        query = query.where(AuditRecord.subject == subject)
    if q:
        query = query.where(AuditRecord.rationale.ilike(f"%{q}%"))
    if before:
        query = query.where(AuditRecord.seq < before)
    with p.db.session() as s:
        rows = list(s.scalars(query))
        result = None
        if check:
            witness = [p.settings.audit_witness_path] if p.settings.audit_witness_path else []
            result = verify(s, witness_files=witness)
    more = rows[-1].seq if len(rows) == AUDIT_PAGE else None
    return render(request, "audit.html", v, rows=rows, f=f, result=result, more=more)


@router.get("/drills")
def drills_page(request: Request, v: Viewer = Depends(viewer)) -> Response:
    """Drills on record (who practised what) and how to start one."""
    p = platform_of(request)
    cards = on_record(p.settings)
    can_start = getattr(request.app.state, "start_drill", None) is not None
    return render(
        request, "drills.html", v, cards=cards, scenarios=sorted(SCENARIOS), can_start=can_start
    )


@router.post("/drills")
def start_drill(request: Request, post: Posted = Depends(acting(Permission.OPERATE))) -> Response:
    """Start a drill for the signed-in person: a private estate with its own database
    and console, whose one-time password is shown here, once."""
    start = getattr(request.app.state, "start_drill", None)
    scenario = post.text("scenario") or None
    seed = int(post.text("seed")) if post.text("seed").isdigit() else 1
    try:
        if start is None:
            raise Refused("drills start from `baton serve` or `baton drill start`")
        live = start(post.v.principal.name, scenario, seed, post.v.actor)
    except (BatonError, ValueError) as exc:
        return render(request, "error.html", post.v, code=409, message=str(exc), back="/drills")
    return render(request, "drill_started.html", post.v, live=live)
