"""What the record says: the KPIs page with charts drawn on the server (learn/charts.py,
the same as the weekly review), and the runbooks' trust ledger with the promotions a lead
accepts or declines. The figures come from learn/figures.py, as the API's /kpis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from baton.govern.rbac import Permission
from baton.kernel.errors import Invalid
from baton.learn import charts, trust
from baton.learn.figures import Scope, kpis, parse_since
from baton.runtime.views import runbook_rows
from baton.web.console import PREFIX, Posted, Viewer, acting, attempt, platform_of, render, viewer

router = APIRouter(prefix=PREFIX, include_in_schema=False)
LEDGER_WINDOW = timedelta(days=90)  # the page reads a bounded window, not every proposal


def _series(k: dict[str, Any], *names: str) -> Markup:
    buckets = [row["bucket"] for row in k["series"]]
    return charts.columns(buckets, {n: [row.get(n, 0) for row in k["series"]] for n in names})


def _minutes(seconds: float | None) -> float:
    return round(seconds / 60, 1) if seconds is not None else 0.0


def kpi_charts(k: dict[str, Any]) -> dict[str, Markup]:
    """The page's charts: outcomes (volumes, time to acknowledge and resolve, who fixed
    it) and behaviour (acceptance against override, why, escalations)."""
    incidents, behaviour = k["incidents"], k["behaviour"]
    split = incidents["resolution"]
    paths = k["escalations"]["top_paths"]
    return {
        "volumes": _series(k, "alerts", "incidents", "tickets"),
        "resolved": _series(k, "incidents", "resolved"),
        "times": charts.bars(
            [
                ("MTTA (min)", _minutes(incidents["mtta_s"])),
                ("MTTR (min)", _minutes(incidents["mttr_s"])),
            ]
        ),
        "split": charts.bars(
            [(name.replace("_", " "), split[name]) for name in ("automatic", "ai_assisted")]
            + [("human only", split["human_only"])]
        ),
        "judged": charts.bars(
            [("accepted", behaviour["accepted"]), ("overridden", behaviour["overridden"])]
        ),
        "overrides": _series(k, "overrides"),
        "reasons": charts.bars(sorted(behaviour["override_reasons"].items(), key=lambda i: -i[1])),
        "escalations": charts.bars(
            [(f"{p['what']} · {p['service']} · level {p['level']}", p["count"]) for p in paths]
        ),
    }


@router.get("/kpis")
def kpis_page(
    request: Request,
    since: str = Query("7d", max_length=40),
    bucket: str = Query("day", max_length=8),
    service: str = Query("", max_length=128),
    runbook: str = Query("", max_length=128),
    team: str = Query("", max_length=128),
    v: Viewer = Depends(viewer),
) -> Response:
    p = platform_of(request)
    f = {"since": since, "bucket": bucket, "service": service, "runbook": runbook, "team": team}
    now = p.clock.now()
    try:
        scope = Scope(
            parse_since(since, now),
            now,
            bucket,
            service or None,
            runbook or None,
            None,
            team or None,
        )
    except Invalid as exc:
        return render(request, "error.html", v, code=422, message=str(exc), back="/kpis")
    with p.db.session() as s:
        k = kpis(s, scope)
    return render(request, "kpis.html", v, k=k, f=f, charts=kpi_charts(k))


@router.get("/runbooks")
def runbooks_page(request: Request, v: Viewer = Depends(viewer)) -> Response:
    """Each runbook's tier and why, owner, track record; its trust ledger and the
    promotions waiting for a lead."""
    p = platform_of(request)
    with p.db.session() as s:
        rows = runbook_rows(s, p.config.catalogue)
        ledger = trust.ledger(s, p.config.policy, p.clock.now() - LEDGER_WINDOW)
        moves = trust.moves(s)[:50]
    by_runbook: dict[str, list[dict[str, Any]]] = {}
    for row in ledger:
        by_runbook.setdefault(row["runbook"], []).append(row)
    errors = [str(e) for e in p.config.catalogue.errors]
    return render(
        request, "runbooks.html", v, rows=rows, errors=errors, ledger=by_runbook, moves=moves
    )


@router.post("/trust/moves/{move_id}/{verdict}")
def decide(
    request: Request, move_id: int, verdict: str, post: Posted = Depends(acting(Permission.GOVERN))
) -> Response:
    """A lead accepts or declines a recommended promotion, with a reason."""
    commands = platform_of(request).commands

    def run() -> None:
        if verdict not in ("accept", "decline"):
            raise Invalid("must be accept or decline", "verdict")
        commands.decide_promotion(move_id, verdict == "accept", post.v.actor, post.reason())

    return attempt(request, post.v, run, "/runbooks")


@router.post("/trust/review")
def review_now(request: Request, post: Posted = Depends(acting(Permission.GOVERN))) -> Response:
    """Look at the ledger now instead of waiting for the scheduled review."""
    commands = platform_of(request).commands
    return attempt(request, post.v, commands.review_trust, "/runbooks")
