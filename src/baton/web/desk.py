"""The service desk in the console: the tickets queue with filters, and a ticket's page
with its history (who or what set each value), the models' suggestions to apply or
revert, comments and drafted answers to approve. Every button calls the same `Desk`
method the API calls."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from baton.govern.rbac import Permission
from baton.kernel.enums import TicketStatus
from baton.kernel.errors import Invalid
from baton.servicedesk.lifecycle import EDITABLE, MOVES
from baton.store.models import Ticket
from baton.web.console import PREFIX, Posted, Viewer, acting, attempt, platform_of, render, viewer

router = APIRouter(prefix=PREFIX, include_in_schema=False)
QUEUE_PAGE = 50
FILTERS = ("status", "category", "priority", "group", "assignee", "service")
OPEN = "open"  # the queue's default: every status a person still has to work


@router.get("/tickets")
def queue_page(
    request: Request,
    status: str = Query(OPEN, max_length=32),
    category: str = Query("", max_length=64),
    priority: str = Query("", max_length=16),
    group: str = Query("", max_length=64),
    assignee: str = Query("", max_length=128),
    service: str = Query("", max_length=128),
    q: str = Query("", max_length=200),
    before: int | None = None,
    v: Viewer = Depends(viewer),
) -> Response:
    f = {"status": status, "category": category, "priority": priority, "group": group}
    f |= {"assignee": assignee, "service": service, "q": q}
    query = select(Ticket).order_by(Ticket.id.desc()).limit(QUEUE_PAGE)
    if status == OPEN:
        query = query.where(Ticket.status.in_([s for s in MOVES if s not in _DONE]))
    elif status:
        query = query.where(Ticket.status == status)
    for name in FILTERS[1:]:
        if f[name]:
            query = query.where(getattr(Ticket, name) == f[name])
    if q:
        query = query.where(Ticket.subject.ilike(f"%{q}%"))
    if before:
        query = query.where(Ticket.id < before)
    p = platform_of(request)
    with p.db.session() as s:
        rows = list(s.scalars(query))
    more = rows[-1].id if len(rows) == QUEUE_PAGE else None
    statuses = [OPEN, *[str(x) for x in TicketStatus], ""]
    return render(request, "tickets.html", v, rows=rows, f=f, more=more, statuses=statuses)


_DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


@router.get("/tickets/{ticket_id}")
def ticket_page(request: Request, ticket_id: int, v: Viewer = Depends(viewer)) -> Response:
    p = platform_of(request)
    t = p.desk.show(ticket_id)
    options: dict[str, list[str]] = {}
    for o in p.desk.options():
        if o["enabled"]:
            options.setdefault(o["field"], []).append(o["value"])
    moves = MOVES.get(t["status"], ())
    return render(request, "ticket.html", v, t=t, options=options, moves=moves, editable=EDITABLE)


@router.post("/tickets/{ticket_id}/changes")
def change(
    request: Request, ticket_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    """Set a field (a person's own value, or a model's suggestion applied) or move it."""
    desk = platform_of(request).desk
    value = post.text("value") or None
    return attempt(
        request,
        post.v,
        lambda: desk.update(ticket_id, post.text("field"), value, post.v.actor),
        f"/tickets/{ticket_id}",
    )


@router.post("/tickets/{ticket_id}/changes/{change_id}/revert")
def revert(
    request: Request,
    ticket_id: int,
    change_id: int,
    post: Posted = Depends(acting(Permission.OPERATE)),
) -> Response:
    desk = platform_of(request).desk
    return attempt(
        request, post.v, lambda: desk.revert(change_id, post.v.actor), f"/tickets/{ticket_id}"
    )


@router.post("/tickets/{ticket_id}/comments")
def comment(
    request: Request, ticket_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    desk = platform_of(request).desk
    public = post.text("public") == "1"
    return attempt(
        request,
        post.v,
        lambda: desk.comment(ticket_id, post.v.actor, post.text("body"), public),
        f"/tickets/{ticket_id}",
    )


@router.post("/tickets/{ticket_id}/answers/{draft_id}/{verdict}")
def answer(
    request: Request,
    ticket_id: int,
    draft_id: int,
    verdict: str,
    post: Posted = Depends(acting(Permission.OPERATE)),
) -> Response:
    """Send (approve) or drop (reject) the answer drafted from the knowledge base."""
    desk = platform_of(request).desk

    def run() -> None:
        if verdict not in ("approve", "reject"):
            raise Invalid("must be approve or reject", "verdict")
        desk.answer(draft_id, verdict == "approve", post.v.actor)

    return attempt(request, post.v, run, f"/tickets/{ticket_id}")
