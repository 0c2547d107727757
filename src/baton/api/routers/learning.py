"""KPIs, the trust ledger, shadow comparisons, reviews and policy replay."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from baton.api.deps import actor_of, parsed, platform, require, session
from baton.api.params import Id
from baton.govern.config import PolicyConfig, validate_model
from baton.govern.rbac import Permission, Principal
from baton.kernel.clock import UtcDatetime
from baton.learn import review, shadow, trust
from baton.learn.figures import Scope, kpis, parse_since
from baton.learn.replay import replay
from baton.runtime.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["learning"])
READ = Depends(require(Permission.READ))
OPERATE = Depends(require(Permission.OPERATE))
GOVERN = Depends(require(Permission.GOVERN))
LessonNo = Annotated[int, Path(ge=0, le=1000, description="the lesson's index in the review")]


def scope_of(
    since: str = Query("7d", max_length=40, description="7d, 24h, 4w or an ISO time"),
    until: UtcDatetime | None = None,
    bucket: Literal["day", "week"] = "day",
    service: str | None = Query(None, max_length=128),
    runbook: str | None = Query(None, max_length=128),
    category: str | None = Query(None, max_length=64),
    team: str | None = Query(None, max_length=128),
    p: Platform = Depends(platform),
) -> Scope:
    now = p.clock.now()
    return Scope(parse_since(since, now), until or now, bucket, service, runbook, category, team)


@router.get("/kpis", summary="Outcome and behaviour KPIs for a period, per day or week")
def kpi(
    _: Principal = READ, scope: Scope = Depends(scope_of), s: Session = Depends(session)
) -> dict[str, Any]:
    return kpis(s, scope)


@router.get("/trust", summary="The trust ledger: each runbook x scope's record")
def ledger(
    _: Principal = READ,
    since: UtcDatetime | None = None,
    p: Platform = Depends(platform),
    s: Session = Depends(session),
) -> list[dict[str, Any]]:
    return trust.ledger(s, p.config.policy, since)


@router.get("/trust/moves", summary="Promotion recommendations and demotions")
def moves(
    _: Principal = READ,
    status: str | None = Query(None, pattern="^(recommended|accepted|declined|applied)$"),
    s: Session = Depends(session),
) -> list[dict[str, Any]]:
    return trust.moves(s, status)


@router.post("/trust/review", summary="Review the ledger now (demote; recommend promotions)")
def review_now(who: Principal = GOVERN, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    return p.commands.review_trust()


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/trust/moves/{move_id}/accept", summary="A lead accepts a promotion")
def accept(
    move_id: Id,
    who: Principal = GOVERN,
    body: DecisionIn = Depends(parsed(DecisionIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.commands.decide_promotion(move_id, True, actor_of(who), body.reason)


@router.post("/trust/moves/{move_id}/decline", summary="A lead declines a promotion")
def decline(
    move_id: Id,
    who: Principal = GOVERN,
    body: DecisionIn = Depends(parsed(DecisionIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.commands.decide_promotion(move_id, False, actor_of(who), body.reason)


@router.get("/shadow", summary="Shadow mode: what Baton would have done beside what people did")
def shadow_comparisons(
    _: Principal = READ, since: UtcDatetime | None = None, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    return shadow.comparisons(s, since)


@router.get("/reviews/weekly", summary="The weekly review as HTML, PDF or JSON")
def weekly(
    _: Principal = READ,
    format: Literal["html", "pdf", "json"] = "html",
    scope: Scope = Depends(scope_of),
    p: Platform = Depends(platform),
    s: Session = Depends(session),
) -> Any:
    data = review.weekly(s, p.config.policy, scope)
    if format == "json":
        return data
    html = review.weekly_html(data)
    if format == "html":
        return HTMLResponse(html)
    pdf, engine = review.to_pdf(html)
    return Response(pdf, media_type="application/pdf", headers={"X-Baton-Pdf-Engine": engine})


@router.get("/incidents/{incident_id}/timeline", summary="An incident's audit-ledger timeline")
def timeline(incident_id: Id, _: Principal = READ, s: Session = Depends(session)) -> list[Any]:
    return review.timeline(s, incident_id)


@router.get("/incidents/{incident_id}/review", summary="An incident's post-incident review")
def get_review(incident_id: Id, _: Principal = READ, s: Session = Depends(session)) -> Any:
    return review.review_dict(s, review.get_review(s, incident_id))


@router.put("/incidents/{incident_id}/review", summary="Write an incident's review")
def put_review(
    incident_id: Id,
    who: Principal = OPERATE,
    body: review.ReviewIn = Depends(parsed(review.ReviewIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.commands.save_review(incident_id, body, actor_of(who))


@router.get(
    "/incidents/{incident_id}/review/lessons/{lesson}/diff",
    summary="The runbook or policy change a lesson proposes, as a diff, and whether it applies",
)
def lesson_diff(
    incident_id: Id,
    lesson: LessonNo,
    _: Principal = READ,
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.commands.lesson_change(incident_id, lesson)


@router.post(
    "/incidents/{incident_id}/review/lessons/{lesson}/apply",
    summary="A lead applies the runbook or policy change a lesson proposes",
)
def apply_lesson(
    incident_id: Id,
    lesson: LessonNo,
    who: Principal = GOVERN,
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.commands.apply_lesson(incident_id, lesson, actor_of(who))


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: str = Field(default="30d", max_length=40)
    policy: dict[str, Any]


@router.post("/replay/policy", summary="Re-decide past proposals under a candidate policy")
def replay_policy(
    _: Principal = GOVERN,
    body: ReplayIn = Depends(parsed(ReplayIn)),
    p: Platform = Depends(platform),
    s: Session = Depends(session),
) -> dict[str, Any]:
    candidate = validate_model(PolicyConfig, body.policy, "candidate policy")
    since = parse_since(body.since, p.clock.now())
    catalogue = {rb.id: rb for rb in p.config.catalogue}
    return replay(s, candidate, catalogue, since)
