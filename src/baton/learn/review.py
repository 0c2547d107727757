"""Reviews: the weekly review for the AI operations lead, and post-incident reviews.

The weekly review's numbers come from `figures.kpis` for the same period, so they are
the API's numbers; it renders to HTML (Jinja2, charts as inline SVG) and to PDF with
WeasyPrint, or a headless Chromium when WeasyPrint cannot load. A post-incident review
keeps contributing factors, lessons and follow-up tasks beside a timeline read from the
audit ledger; a lesson may propose a runbook or policy change, kept as a diff that only
a lead applies (`learn.lessons`, `Commands.apply_lesson`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from baton.govern.config import PolicyConfig
from baton.kernel.audit import Actor, append
from baton.kernel.audit import to_dict as audit_dict
from baton.kernel.enums import BAD_ENDING
from baton.kernel.errors import NotFound, Refused
from baton.learn import charts, trust
from baton.learn.figures import Scope, kpis
from baton.store.models import (
    Approval,
    AuditRecord,
    Decision,
    Event,
    Execution,
    Incident,
    IncidentReview,
    Override,
    Proposal,
)

_TEMPLATES = Environment(
    loader=PackageLoader("baton.learn", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- the weekly review ---------------------------------------------------------------
def weekly(session: Session, policy: PolicyConfig, scope: Scope) -> dict[str, Any]:
    """What the AI operations lead reads each week, as data (the HTML shows exactly it)."""
    figures = kpis(session, scope)
    period = (Execution.created_at >= scope.since, Execution.created_at < scope.until)
    failures = session.execute(
        select(Execution.id, Execution.runbook_id, Execution.status, Execution.summary)
        .where(*period, Execution.status.in_(BAD_ENDING))
        .order_by(Execution.id)
    ).all()
    overrides = session.execute(
        select(
            Override.kind, Override.category, Override.reason, Override.actor, Execution.runbook_id
        )
        .join(Execution, Execution.id == Override.execution_id)
        .where(Override.created_at >= scope.since, Override.created_at < scope.until)
        .order_by(Override.id)
    ).all()
    noisy = session.execute(
        select(Event.source, Event.name, func.count())
        .where(Event.first_seen >= scope.since, Event.first_seen < scope.until)
        .group_by(Event.source, Event.name)
        .order_by(func.count().desc(), Event.name)
        .limit(8)
    ).all()
    moves = [
        m
        for m in trust.moves(session)
        if m["status"] == trust.OPEN or scope.since <= m["created_at"] < scope.until
    ]
    moved = {(m["runbook"], m["scope"]) for m in moves}
    return {
        "kpis": figures,
        "failures": [dict(r._mapping) for r in failures],
        "overrides": [dict(r._mapping) for r in overrides],
        "noisiest": [{"source": s, "alert": n, "count": c} for s, n, c in noisy],
        "moves": moves,
        # environments, and the services a move is about (every service would drown them)
        "ledger": [
            r
            for r in trust.ledger(session, policy, scope.since)
            if r["scope"].startswith("env:") or (r["runbook"], r["scope"]) in moved
        ],
    }


def weekly_html(data: dict[str, Any]) -> str:
    """The weekly review as one self-contained HTML page."""
    k = data["kpis"]
    buckets = [row["bucket"] for row in k["series"]]
    pick = lambda name: [row.get(name, 0) for row in k["series"]]  # noqa: E731
    graphs = {
        "volumes": charts.columns(
            buckets,
            {"alerts": pick("alerts"), "incidents": pick("incidents"), "tickets": pick("tickets")},
        ),
        "runs": charts.columns(
            buckets,
            {"runs": pick("executions"), "succeeded": pick("succeeded"), "failed": pick("failed")},
        ),
        "reasons": charts.bars(
            sorted(k["behaviour"]["override_reasons"].items(), key=lambda i: -i[1])
        ),
        "saved": charts.bars(
            [(r["runbook"], r["minutes"]) for r in k["automation"]["time_saved_by_runbook"][:8]]
        ),
        "noisiest": charts.bars(
            [(f"{n['alert']} ({n['source']})", n["count"]) for n in data["noisiest"]]
        ),
    }
    return _TEMPLATES.get_template("weekly.html.j2").render(d=data, k=k, charts=graphs)


def to_pdf(html: str) -> tuple[bytes, str]:
    """(PDF bytes, the engine that made them): WeasyPrint, else headless Chromium."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError):  # not installed, or its system libraries are missing
        return _chromium_pdf(html), "chromium"
    return HTML(string=html).write_pdf(), "weasyprint"


def _chromium_pdf(html: str) -> bytes:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise RuntimeError("PDF needs WeasyPrint (pip install 'baton[pdf]') or Chromium")
    with tempfile.TemporaryDirectory() as tmp:
        page, out = Path(tmp, "review.html"), Path(tmp, "review.pdf")
        page.write_text(html)
        subprocess.run(  # noqa: S603 - the browser found on PATH, fixed arguments
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--print-to-pdf={out}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return out.read_bytes()


# --- post-incident reviews -----------------------------------------------------------
class Lesson(BaseModel):
    """What was learned; it may propose a change to the policy or to one runbook, given as
    the whole document the lesson would have or as a unified diff against the current
    file. Either way the diff is what is kept, reviewed and, by a lead, applied."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)
    policy: dict[str, Any] | None = Field(
        default=None, description="the whole policy as this lesson would have it (a lead applies)"
    )
    runbook: str | None = Field(
        default=None,
        max_length=128,
        description="the runbook id `proposed` or `diff` changes (none: they change the policy)",
    )
    proposed: str | None = Field(
        default=None, max_length=200_000, description="the whole YAML file as it would be"
    )
    diff: str | None = Field(
        default=None, max_length=200_000, description="a unified diff against the current file"
    )

    @model_validator(mode="after")
    def _one_change(self) -> Lesson:
        given = [k for k in ("policy", "proposed", "diff") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"a lesson proposes one change: give one of {', '.join(given)}")
        if self.runbook and given in ([], ["policy"]):
            raise ValueError("a lesson naming a runbook gives its `proposed` file or a `diff`")
        return self


class FollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str = Field(min_length=1, max_length=2000)
    owner: str | None = None
    due: str | None = None
    done: bool = False


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: str = Field(default="", max_length=20000)
    factors: list[str] = Field(default_factory=list)
    lessons: list[Lesson] = Field(default_factory=list)
    follow_ups: list[FollowUp] = Field(default_factory=list)


def _subjects(session: Session, incident_id: int) -> list[str]:
    """Everything the ledger may say about an incident: it, its proposals, their
    decisions' approvals, its runs."""
    proposals = list(
        session.scalars(select(Proposal.id).where(Proposal.incident_id == incident_id))
    )
    runs = list(session.scalars(select(Execution.id).where(Execution.incident_id == incident_id)))
    approvals = list(
        session.scalars(
            select(Approval.id)
            .join(Decision, Decision.id == Approval.decision_id)
            .where(Decision.proposal_id.in_(proposals) if proposals else Decision.id < 0)
        )
    )
    return sorted(
        {f"incident:{incident_id}"}
        | {f"proposal:{p}" for p in proposals}
        | {f"execution:{e}" for e in runs}
        | {f"approval:{a}" for a in approvals}
    )


def timeline(session: Session, incident_id: int) -> list[dict[str, Any]]:
    """The incident's story from the audit ledger, in the order it happened."""
    if session.get(Incident, incident_id) is None:
        raise NotFound(f"no incident {incident_id}")
    rows = session.scalars(
        select(AuditRecord)
        .where(AuditRecord.subject.in_(_subjects(session, incident_id)))
        .order_by(AuditRecord.seq)
    )
    keep = ("seq", "ts", "actor", "actor_kind", "action", "subject", "decision", "rationale")
    return [{k: v for k, v in audit_dict(r).items() if k in keep} for r in rows]


def save_review(
    session: Session,
    incident_id: int,
    body: ReviewIn,
    actor: Actor,
    at: datetime,
    changes: dict[int, dict[str, Any]] | None = None,
) -> IncidentReview:
    """Create or update the incident's review (audited). `changes`: per lesson index, the
    reviewable change it proposes (`Commands.save_review` makes them from the files)."""
    if session.get(Incident, incident_id) is None:
        raise NotFound(f"no incident {incident_id}")
    row = session.scalar(select(IncidentReview).where(IncidentReview.incident_id == incident_id))
    data = body.model_dump(mode="json", exclude_none=True)
    for index, change in (changes or {}).items():
        lesson = data["lessons"][index]
        for given in ("policy", "proposed", "diff", "runbook"):
            lesson.pop(given, None)
        lesson["change"] = change
    if row is None:
        row = IncidentReview(incident_id=incident_id, author=actor.name, created_at=at)
        session.add(row)
    row.summary, row.factors = data["summary"], data["factors"]
    row.lessons, row.follow_ups, row.updated_at = data["lessons"], data["follow_ups"], at
    session.flush()
    append(
        session,
        actor=actor,
        action="review.saved",
        subject=f"incident:{incident_id}",
        at=at,
        inputs={
            "review": row.id,
            "lessons": len(row.lessons),
            "follow_ups": len(row.follow_ups),
            "changes": {str(i): c for i, c in (changes or {}).items()},
        },
        decision="saved",
        rationale=row.summary[:500] or None,
    )
    return row


def get_review(session: Session, incident_id: int) -> IncidentReview:
    row = session.scalar(select(IncidentReview).where(IncidentReview.incident_id == incident_id))
    if row is None:
        raise NotFound(f"incident {incident_id} has no review yet")
    return row


def lesson_change(row: IncidentReview, index: int) -> dict[str, Any]:
    """The change a review's lesson proposes: {target: policy | runbook, runbook, file,
    diff, status...}; Refused when it proposes none."""
    if not 0 <= index < len(row.lessons):
        raise NotFound(f"the review of incident {row.incident_id} has no lesson {index}")
    change = row.lessons[index].get("change")
    if change is None:
        raise Refused(f"lesson {index} proposes no runbook or policy change")
    return dict(change)


def mark_applied(
    session: Session, row: IncidentReview, index: int, actor: Actor, at: datetime
) -> dict[str, Any]:
    """Record on the lesson that a lead applied its change (audited with the diff); a
    change is applied once."""
    lessons = [dict(lesson) for lesson in row.lessons]
    change = dict(lessons[index]["change"])
    change |= {"applied_by": actor.name, "applied_at": at.isoformat()}
    lessons[index]["change"] = change
    row.lessons, row.updated_at = lessons, at
    append(
        session,
        actor=actor,
        action="review.lesson_applied",
        subject=f"incident:{row.incident_id}",
        at=at,
        inputs={"review": row.id, "lesson": index, **change},
        decision=f"applied to {change['file']}",
        rationale=row.lessons[index].get("text", "")[:500] or None,
    )
    return change


def review_dict(session: Session, row: IncidentReview) -> dict[str, Any]:
    return {
        "id": row.id,
        "incident_id": row.incident_id,
        "summary": row.summary,
        "factors": row.factors,
        "lessons": row.lessons,
        "follow_ups": row.follow_ups,
        "author": row.author,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "timeline": timeline(session, row.incident_id),
    }
