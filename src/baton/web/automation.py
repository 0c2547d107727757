"""What the AI wants to do and is doing: the approvals inbox, runs with live logs, the
kill switch. Every button posts to a command."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from baton.act import executions as executions_
from baton.act import logs
from baton.govern.flows import approvals as list_approvals
from baton.govern.flows import params_of
from baton.govern.overrides import CATEGORIES
from baton.govern.rbac import Permission
from baton.kernel.errors import Invalid
from baton.runtime.platform import Platform
from baton.runtime.views import approval_view
from baton.store.models import Approval, Execution, Override
from baton.web.console import (
    PREFIX,
    SECURITY_HEADERS,
    Forbidden,
    Posted,
    Viewer,
    acting,
    attempt,
    platform_of,
    render,
    viewer,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
RUNS_PAGE = 50


@router.get("/approvals")
def approvals_page(
    request: Request, status: str = "pending", v: Viewer = Depends(viewer)
) -> Response:
    p = platform_of(request)
    with p.db.session() as s:
        items = [approval_view(s, a) for a in list_approvals(s, status or None)[:100]]
    return render(request, "approvals.html", v, items=items, status=status)


@router.post("/approvals/{approval_id}/approve")
def approve(
    request: Request, approval_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    commands = platform_of(request).commands
    params = {
        k.removeprefix("param."): post.text(k)
        for k in post.form
        if k.startswith("param.") and post.text(k)
    }
    made: list[int] = []

    def run() -> None:
        changed = _changed(platform_of(request), approval_id, params)
        execution = commands.approve(approval_id, post.v.actor, post.reason(), changed or None)
        if execution is not None:
            made.append(execution.id)

    response = attempt(request, post.v, run, "/approvals")
    if made:
        response.headers["location"] = f"{PREFIX}/runs/{made[0]}"
    return response


def _changed(p: Platform, approval_id: int, posted: dict[str, str]) -> dict[str, object]:
    """Only the params a person actually changed, typed like the proposal's values (a
    form sends text; an unchanged field must not count as a change of params)."""
    with p.db.session() as s:
        a = s.get(Approval, approval_id)
        current = params_of(s, a) if a is not None else {}
    out: dict[str, object] = {}
    for key, text in posted.items():
        old = current.get(key)
        if str(old) == text:
            continue
        out[key] = (
            type(old)(text) if isinstance(old, int | float) and not isinstance(old, bool) else text
        )
    return out


@router.post("/approvals/{approval_id}/reject")
def reject(
    request: Request, approval_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    commands = platform_of(request).commands
    return attempt(
        request,
        post.v,
        lambda: commands.reject(approval_id, post.v.actor, post.reason()),
        "/approvals",
    )


@router.get("/runs")
def runs_page(
    request: Request, status: str = "", before: int | None = None, v: Viewer = Depends(viewer)
) -> Response:
    p = platform_of(request)
    with p.db.session() as s:
        query = select(Execution).order_by(Execution.id.desc()).limit(RUNS_PAGE)
        if status:
            query = query.where(Execution.status == status)
        if before:
            query = query.where(Execution.id < before)
        rows = list(s.scalars(query))
    more = rows[-1].id if len(rows) == RUNS_PAGE else None
    return render(request, "runs.html", v, rows=rows, status=status, more=more)


@router.get("/runs/{execution_id}")
def run_page(request: Request, execution_id: int, v: Viewer = Depends(viewer)) -> Response:
    p = platform_of(request)
    with p.db.session() as s:
        execution = executions_.get(s, execution_id)
        steps = list(execution.steps)
        overrides = list(
            s.scalars(
                select(Override).where(Override.execution_id == execution_id).order_by(Override.id)
            )
        )
        return render(
            request,
            "run.html",
            v,
            run=execution,
            steps=steps,
            overrides=overrides,
            categories=CATEGORIES,
        )


@router.get("/runs/{execution_id}/logs")
def run_logs(request: Request, execution_id: int, v: Viewer = Depends(viewer)) -> Response:
    """The run's step changes as Server-Sent Events, until it ends."""
    follower = logs.Follower(platform_of(request).db, execution_id, max_s=3600)
    first = follower.poll()
    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(
        logs.stream(follower, first), media_type="text/event-stream", headers=headers
    )


@router.post("/runs/{execution_id}/{kind}")
def override(
    request: Request,
    execution_id: int,
    kind: str,
    post: Posted = Depends(acting(Permission.OPERATE)),
) -> Response:
    commands = platform_of(request).commands

    def run() -> None:
        if kind not in ("veto", "cancel", "rollback"):
            raise Invalid("must be veto, cancel or rollback", "kind")
        commands.override(execution_id, kind, post.text("category"), post.reason(), post.v.actor)

    return attempt(request, post.v, run, f"/runs/{execution_id}")


@router.post("/automation/{action}")
def kill_switch(
    request: Request, action: str, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    """Pause (technicians and up) or resume (leads: the same permission as the API)."""
    commands = platform_of(request).commands
    back = post.text("back") or "/incidents"
    back = back if back.startswith("/") and not back.startswith("//") else "/incidents"

    def run() -> None:
        scope, target = post.text("scope") or "all", post.text("target") or None
        if action == "pause":
            commands.pause(scope, target, post.v.actor, post.reason())
        elif action == "resume":
            if not post.v.can(Permission.GOVERN):
                raise Forbidden(post.v.principal, Permission.GOVERN)
            commands.resume(scope, target, post.v.actor, post.reason())
        else:
            raise Invalid("must be pause or resume", "action")

    return attempt(request, post.v, run, back)
