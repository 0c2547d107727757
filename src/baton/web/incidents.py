"""Incident pages: the live list with facets and search, and one incident with its
alerts, why each joined, its timeline from the audit ledger, the affected graph and the
proposals; merge, split and re-origin post to the same commands as the API.

The list pages by id (keyset, newest first) and counts facets with GROUP BY on indexed
columns, so it stays fast with tens of thousands of incidents.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from baton.correlate import incidents as incidents_
from baton.govern.rbac import Permission
from baton.store.models import AuditRecord, Event, Incident, Proposal, Service
from baton.web.console import PREFIX, Posted, Viewer, acting, attempt, platform_of, render, viewer
from baton.web.graph import affected

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 50
FACETS = ("status", "severity", "origin")
COLUMN = {
    "status": Incident.status,
    "severity": Incident.severity,
    "origin": Incident.origin_service,
}


def _filters(f: dict[str, str]) -> list[Any]:
    where: list[Any] = []
    for facet, column in COLUMN.items():
        if f.get(facet):
            where.append(column == f[facet])
    if f.get("service"):  # services is a JSON list: match the quoted name in its text
        name = f["service"].replace('"', "")
        where.append(
            or_(
                Incident.origin_service == name, cast(Incident.services, String).like(f'%"{name}"%')
            )
        )
    if f.get("q"):
        where.append(Incident.title.ilike(f"%{f['q']}%"))
    return where


def facet_counts(s: Session, f: dict[str, str]) -> dict[str, list[tuple[str, int]]]:
    """Each facet's values with counts, under the other facets' filters."""
    out = {}
    for facet, column in COLUMN.items():
        others = {k: v for k, v in f.items() if k != facet}
        query = (
            select(column, func.count())
            .where(*_filters(others))
            .group_by(column)
            .order_by(func.count().desc())
            .limit(30)
        )
        out[facet] = [(str(value or "-"), n) for value, n in s.execute(query).tuples()]
    return out


def page_of(
    s: Session, f: dict[str, str], before: int | None
) -> tuple[list[Incident], dict[int, int]]:
    query = select(Incident).where(*_filters(f)).order_by(Incident.id.desc()).limit(PAGE)
    if before:
        query = query.where(Incident.id < before)
    rows = list(s.scalars(query))
    counts = dict(
        s.execute(
            select(Event.incident_id, func.count())
            .where(Event.incident_id.in_([i.id for i in rows]))
            .group_by(Event.incident_id)
        )
        .tuples()
        .all()
    )
    return rows, counts


@router.get("/incidents")
def incident_list(
    request: Request,
    status: str = "",
    severity: str = "",
    origin: str = "",
    service: str = "",
    q: str = Query("", max_length=200),
    before: int | None = None,
    partial: bool = False,
    v: Viewer = Depends(viewer),
) -> Response:
    f = {"status": status, "severity": severity, "origin": origin, "service": service, "q": q}
    p = platform_of(request)
    with p.db.session() as s:
        rows, counts = page_of(s, f, before)
        if partial:  # the live list's refresh: just the rows
            return render(request, "incident_rows.html", v, rows=rows, counts=counts)
        facets = facet_counts(s, f)
        services = list(s.scalars(select(Service.name).order_by(Service.name).limit(500)))
        return render(
            request,
            "incidents.html",
            v,
            rows=rows,
            counts=counts,
            facets=facets,
            f=f,
            services=services,
            more=rows[-1].id if len(rows) == PAGE else None,
        )


def _timeline(s: Session, inc: Incident, proposals: list[Proposal]) -> list[AuditRecord]:
    subjects = [f"incident:{inc.id}", *(f"proposal:{x.id}" for x in proposals)]
    query = (
        select(AuditRecord)
        .where(AuditRecord.subject.in_(subjects))
        .order_by(AuditRecord.seq.desc())
        .limit(200)
    )
    return list(reversed(list(s.scalars(query))))


def _why(inc: Incident, timeline: list[AuditRecord]) -> dict[int, str]:
    """Why each alert joined: its own grouping reason, else the audited batch it came in."""
    why: dict[int, str] = {}
    for record in timeline:
        if record.action == "incident.grouped":
            for e in record.inputs.get("events", []):
                why.setdefault(e.get("id"), record.rationale or "")
    for reason in inc.grouping:
        if reason.get("event_id"):
            why[reason["event_id"]] = f"{reason.get('rule')}: {reason.get('detail')}"
    return why


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, incident_id: int, v: Viewer = Depends(viewer)) -> Response:
    p = platform_of(request)
    with p.db.session() as s:
        inc = incidents_.get(s, incident_id)
        events = list(
            s.scalars(
                select(Event).where(Event.incident_id == inc.id).order_by(Event.id).limit(300)
            )
        )
        proposals = list(
            s.scalars(select(Proposal).where(Proposal.incident_id == inc.id).order_by(Proposal.id))
        )
        timeline = _timeline(s, inc, proposals)
        drawing = affected(p.config.graph(s), list(inc.services), inc.origin_service)
        return render(
            request,
            "incident.html",
            v,
            inc=inc,
            events=events,
            proposals=proposals,
            timeline=timeline,
            why=_why(inc, timeline),
            drawing=drawing,
        )


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(
    request: Request, incident_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    commands = platform_of(request).commands
    return attempt(
        request,
        post.v,
        lambda: commands.acknowledge(incident_id, post.v.actor),
        f"/incidents/{incident_id}",
    )


@router.post("/incidents/{incident_id}/merge")
def merge(
    request: Request, incident_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    commands, others = platform_of(request).commands, post.ids("others")
    return attempt(
        request,
        post.v,
        lambda: commands.merge(incident_id, others, post.v.actor, post.reason()),
        f"/incidents/{incident_id}",
    )


@router.post("/incidents/{incident_id}/split")
def split(
    request: Request, incident_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    commands, events = platform_of(request).commands, post.ids("events")
    made: list[int] = []

    def run() -> None:
        made.append(commands.split(incident_id, events, post.v.actor, post.reason()).id)

    response = attempt(request, post.v, run, f"/incidents/{incident_id}")
    if made:
        response.headers["location"] = f"{PREFIX}/incidents/{made[0]}"
    return response


@router.post("/incidents/{incident_id}/origin")
def set_origin(
    request: Request, incident_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    commands, service = platform_of(request).commands, post.text("service")
    return attempt(
        request,
        post.v,
        lambda: commands.set_origin(incident_id, service, post.v.actor, post.reason()),
        f"/incidents/{incident_id}",
    )
