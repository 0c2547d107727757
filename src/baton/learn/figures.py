"""Outcome and behaviour KPIs over a period, computed from the system of record.

Every figure is a SQL aggregate or reads only the rows of one small kind (incidents,
escalations, overrides), so the answer stays well under a second on a database with a
hundred thousand executions. A period is [since, until); figures are for the whole
period and per day or ISO week (`series`). Filters narrow every figure to one service,
runbook, ticket category or team (a team owns services and runbooks); a figure that
cannot be narrowed by a filter says so in `filters_ignored`.

Where the record lacks the data (tickets without SLA fields), the figure is `None`
with a note in `unavailable` rather than a guess.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from baton.kernel.enums import BAD_ENDING, TRACKED_ENDING, ExecutionStatus
from baton.kernel.errors import Invalid
from baton.learn.shadow import AI_PROPOSER
from baton.store.models import (
    Approval,
    AuditRecord,
    Decision,
    Escalation,
    Event,
    Execution,
    Incident,
    Override,
    Proposal,
    RunbookRecord,
    Service,
    Ticket,
)

BUCKETS = ("day", "week")
_SPAN = re.compile(r"^(\d{1,4})([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """'7d', '24h', '4w' before now, or an ISO-8601 time."""
    match = _SPAN.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"since {text!r}: give e.g. 7d, 24h, 4w or an ISO time", "since") from None
    if at.tzinfo is None:
        raise Invalid("since: give a time zone (e.g. Z)", "since")
    return at


@dataclass(frozen=True)
class Scope:
    """The period and the filters; empty filters mean everything."""

    since: datetime
    until: datetime
    bucket: str = "day"
    service: str | None = None
    runbook: str | None = None
    category: str | None = None
    team: str | None = None

    def __post_init__(self) -> None:
        if self.bucket not in BUCKETS:
            raise Invalid(f"bucket must be one of {', '.join(BUCKETS)}", "bucket")
        if self.until <= self.since:
            raise Invalid("the period must end after it starts", "since")

    def filters(self) -> dict[str, str]:
        named = {"service": self.service, "runbook": self.runbook}
        named |= {"category": self.category, "team": self.team}
        return {k: v for k, v in named.items() if v}


class _Where:
    """The filter conditions of each kind of record, built once per query."""

    def __init__(self, session: Session, scope: Scope) -> None:
        self.scope = scope
        self.services: set[str] | None = {scope.service} if scope.service else None
        self.runbooks: set[str] | None = {scope.runbook} if scope.runbook else None
        self.team_runbooks: set[str] = set()
        if scope.team:
            owned = set(session.scalars(select(Service.name).where(Service.owner == scope.team)))
            self.services = owned if self.services is None else self.services & owned
            self.team_runbooks = set(
                session.scalars(
                    select(RunbookRecord.runbook_id).where(RunbookRecord.owner == scope.team)
                )
            )

    def _ticket_incidents(self) -> Any:
        return select(Ticket.incident_id).where(
            Ticket.category == self.scope.category, Ticket.incident_id.is_not(None)
        )

    def executions(self) -> list[ColumnElement[bool]]:
        service = Execution.params["service"].as_string()
        out: list[ColumnElement[bool]] = []
        if self.scope.service:
            out.append(service == self.scope.service)
        if self.scope.team:  # the team's services, or the team's runbooks anywhere
            out.append(
                or_(
                    service.in_(self.services or ()),
                    Execution.runbook_id.in_(self.team_runbooks) if self.team_runbooks else false(),
                )
            )
        if self.runbooks is not None:
            out.append(Execution.runbook_id.in_(self.runbooks))
        if self.scope.category:
            out.append(Execution.incident_id.in_(self._ticket_incidents()))
        return out

    def incidents(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.services is not None:
            out.append(Incident.origin_service.in_(self.services))
        if self.runbooks is not None:
            ran = select(Execution.incident_id).where(Execution.runbook_id.in_(self.runbooks))
            out.append(Incident.id.in_(ran))
        if self.scope.category:
            out.append(Incident.id.in_(self._ticket_incidents()))
        return out

    def tickets(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.services is not None:
            out.append(Ticket.service.in_(self.services))
        if self.scope.category:
            out.append(Ticket.category == self.scope.category)
        if self.runbooks is not None:
            ran = select(Execution.incident_id).where(Execution.runbook_id.in_(self.runbooks))
            out.append(Ticket.incident_id.in_(ran))
        return out

    def events(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.services is not None:
            out.append(Event.service.in_(self.services))
        if self.runbooks is not None or self.scope.category:
            out.append(Event.incident_id.in_(select(Incident.id).where(*self.incidents())))
        return out

    def escalations(self) -> list[ColumnElement[bool]]:
        if self.services is None:
            return []
        return [Escalation.service.in_(self.services)]


def _in(col: Any, scope: Scope) -> list[ColumnElement[bool]]:
    return [col >= scope.since, col < scope.until]


def _day(session: Session, col: Any) -> Any:
    """The UTC calendar day of a time column, in this database's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", col))
    return func.date(col)


def _bucket_of(day: date | str, bucket: str) -> str:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    if bucket == "week":
        d -= timedelta(days=d.weekday())  # the ISO week, by its Monday
    return d.isoformat()


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _seconds(values: list[float]) -> float | None:
    return round(median(values), 1) if values else None


def kpis(session: Session, scope: Scope) -> dict[str, Any]:
    """Every KPI for the scope, with the series per day or week."""
    where = _Where(session, scope)
    series: dict[str, Counter[str]] = defaultdict(Counter)
    incidents = _incidents(session, scope, where, series)
    runs = _executions(session, scope, where, series)
    tickets = _tickets(session, scope, where, series, incidents["_ranked"])
    alerts = _count_by_day(
        session, Event, Event.first_seen, scope, where.events(), series, "alerts"
    )
    behaviour = _behaviour(session, scope, where, series, runs.pop("_ai_ran"))
    out = {
        "period": {"since": scope.since, "until": scope.until, "bucket": scope.bucket},
        "filters": scope.filters(),
        "incidents": {k: v for k, v in incidents.items() if not k.startswith("_")},
        "alerts": alerts,
        "noise_reduction": round(1 - incidents["opened"] / alerts, 3) if alerts else None,
        "automation": runs,
        "behaviour": behaviour,
        "escalations": _escalations(session, scope, where, incidents["opened"]),
        "tickets": tickets,
        "technicians": _technicians(session, scope, where),
        "unavailable": tickets.pop("_unavailable"),
        "filters_ignored": _ignored(scope),
        "series": [{"bucket": b, **dict(series[b])} for b in sorted(series)],
    }
    return out


def _ignored(scope: Scope) -> dict[str, list[str]]:
    ignored: dict[str, list[str]] = {}
    if scope.runbook or scope.category:
        ignored["escalations"] = [f for f in ("runbook", "category") if getattr(scope, f)]
    return ignored


def _count_by_day(
    session: Session,
    model: Any,
    col: Any,
    scope: Scope,
    where: list[ColumnElement[bool]],
    series: dict[str, Counter[str]],
    name: str,
) -> int:
    day = _day(session, col)
    rows = session.execute(
        select(day, func.count()).select_from(model).where(*_in(col, scope), *where).group_by(day)
    ).all()
    for d, n in rows:
        series[_bucket_of(d, scope.bucket)][name] += n
    return sum(n for _, n in rows)


def _elapsed(session: Session, start: Any, end: Any) -> Any:
    """Seconds from `start` to `end`, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _incidents(
    session: Session, scope: Scope, where: _Where, series: dict[str, Counter[str]]
) -> dict[str, Any]:
    """Volumes, MTTA, MTTR, reopen rate and how resolutions split between Baton and
    people (automatic: an `auto` run of Baton's fixed it; AI-assisted: Baton proposed
    and a person approved; human-only: a person's own run, or no run at all)."""
    chosen = [*_in(Incident.opened_at, scope), *where.incidents()]
    day = _day(session, Incident.opened_at)
    opened = resolved = 0
    for d, n, done in session.execute(
        select(day, func.count(), func.count(Incident.resolved_at)).where(*chosen).group_by(day)
    ).all():
        b = series[_bucket_of(d, scope.bucket)]
        b["incidents"] += n
        b["resolved"] += done
        opened, resolved = opened + n, resolved + done
    ack = [
        float(v)
        for v in session.scalars(
            select(_elapsed(session, Incident.opened_at, Incident.acknowledged_at)).where(
                *chosen, Incident.acknowledged_at.is_not(None)
            )
        )
    ]
    ttr = [
        float(v)
        for v in session.scalars(
            select(_elapsed(session, Incident.opened_at, Incident.resolved_at)).where(
                *chosen, Incident.resolved_at.is_not(None)
            )
        )
    ]
    reopens = int(
        session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(
                AuditRecord.action == "incident.reopened",
                *_in(AuditRecord.ts, scope),
                AuditRecord.subject.in_(
                    select(literal("incident:", String) + cast(Incident.id, String)).where(*chosen)
                ),
            )
        )
        or 0
    )
    ranked = dict(
        session.execute(
            _ranked(select(Incident.id).where(*chosen, Incident.resolved_at.is_not(None)))
        )
        .tuples()
        .all()
    )
    return {
        "opened": opened,
        "resolved": resolved,
        "mtta_s": _seconds(ack),
        "mttr_s": _seconds(ttr),
        "acknowledged": len(ack),
        "reopened": reopens,
        "reopen_rate": _rate(reopens, resolved),
        "resolution": _resolutions(ranked, resolved),
        "_ranked": ranked,
    }


RANKS = {0: "human_only", 1: "ai_assisted", 2: "automatic"}


def _ranked(resolved: Any) -> Any:
    """Per resolved incident with a successful run, the most autonomous fix it had:
    2 an `auto` run of Baton's proposal, 1 another run of Baton's, 0 a person's own."""
    ai = Proposal.proposer.startswith(AI_PROPOSER)
    rank = case((ai & (Decision.tier == "auto"), 2), (ai, 1), else_=0)
    return (
        select(Execution.incident_id.label("incident"), func.max(rank).label("rank"))
        .join(Decision, Decision.id == Execution.decision_id)
        .join(Proposal, Proposal.id == Decision.proposal_id)
        .where(Execution.status == ExecutionStatus.SUCCEEDED, Execution.incident_id.in_(resolved))
        .group_by(Execution.incident_id)
    )


def _resolutions(ranked: dict[int, int], total: int) -> dict[str, Any]:
    counts = dict.fromkeys(RANKS.values(), 0)
    with_run = len(ranked)
    for rank, n in Counter(ranked.values()).items():
        counts[RANKS[int(rank)]] += n
    counts["human_only"] += total - with_run  # resolved without any run: people did it
    return {
        **counts,
        "share": {k: _rate(v, total) for k, v in counts.items()},
        "resolved_without_a_run": total - with_run,
    }


def _executions(
    session: Session, scope: Scope, where: _Where, series: dict[str, Counter[str]]
) -> dict[str, Any]:
    """Runs by status, success rate, verified fixes, the time they saved, and how many of
    Baton's own proposals ran (for acceptance): one grouped pass over the period's runs."""
    day = _day(session, Execution.created_at)
    verified = func.sum(case((Execution.verified.is_(True), 1), else_=0))
    chosen = [*_in(Execution.created_at, scope), *where.executions()]
    by_status: Counter[str] = Counter()
    successes: list[tuple[Any, str, int]] = []
    checked = 0
    for d, status, rid, n, ok in session.execute(
        select(day, Execution.status, Execution.runbook_id, func.count(), verified)
        .where(*chosen)
        .group_by(day, Execution.status, Execution.runbook_id)
    ).all():
        by_status[status] += n
        checked += int(ok or 0)
        b = series[_bucket_of(d, scope.bucket)]
        b["executions"] += n
        if status == ExecutionStatus.SUCCEEDED:
            b["succeeded"] += n
            successes.append((d, rid, n))
        elif status in BAD_ENDING:
            b["failed"] += n
    ai = Proposal.proposer.startswith(AI_PROPOSER)
    ran = select(func.count()).select_from(Execution)
    if len(chosen) == 2:  # every run of the period: match them against one list of
        # Baton's decisions (a join per run costs several times more on a month of runs)
        by_ai = select(Decision.id).join(Proposal, Proposal.id == Decision.proposal_id)
        ran = ran.where(Execution.decision_id.in_(by_ai.where(ai)))
    else:  # a filter leaves few runs: joining those is cheaper than the whole list
        ran = ran.join(Decision, Decision.id == Execution.decision_id)
        ran = ran.join(Proposal, Proposal.id == Decision.proposal_id).where(ai)
    ai_ran = int(
        session.scalar(ran.where(*chosen, Execution.status != ExecutionStatus.QUEUED)) or 0
    )
    finished = sum(by_status[s] for s in TRACKED_ENDING)
    saved = _time_saved(session, successes, series, scope)
    return {
        "executions": sum(by_status.values()),
        "by_status": dict(by_status),
        "success_rate": _rate(by_status[ExecutionStatus.SUCCEEDED], finished),
        "verified_fixes": checked,
        "rollbacks": by_status[ExecutionStatus.ROLLED_BACK],
        "time_saved_min": saved["total"],
        "time_saved_by_runbook": saved["by_runbook"],
        "runbooks_without_estimate": saved["missing"],
        "_ai_ran": ai_ran,
    }


def _manual_minutes(session: Session) -> dict[str, float]:
    """Each runbook's declared hand-work time, from its newest loaded version."""
    out: dict[str, float] = {}
    for rid, doc in session.execute(
        select(RunbookRecord.runbook_id, RunbookRecord.document).order_by(RunbookRecord.id)
    ).tuples():
        value = (doc or {}).get("manual_minutes")
        if value is not None:
            out[rid] = float(value)
        else:
            out.pop(rid, None)
    return out


def _time_saved(
    session: Session,
    successes: list[tuple[Any, str, int]],
    series: dict[str, Counter[str]],
    scope: Scope,
) -> dict[str, Any]:
    """Successful runs (day, runbook, count) x each runbook's declared manual minutes."""
    estimates = _manual_minutes(session)
    by_runbook: Counter[str] = Counter()
    missing: set[str] = set()
    for d, rid, n in successes:
        if rid not in estimates:
            missing.add(rid)
            continue
        minutes = estimates[rid] * n
        by_runbook[rid] += minutes
        series[_bucket_of(d, scope.bucket)]["time_saved_min"] += minutes
    top = [{"runbook": r, "minutes": round(m, 1)} for r, m in by_runbook.most_common()]
    return {
        "total": round(sum(by_runbook.values()), 1),
        "by_runbook": top,
        "missing": sorted(missing),
    }


def _behaviour(
    session: Session, scope: Scope, where: _Where, series: dict[str, Counter[str]], acted: int
) -> dict[str, Any]:
    """How people met Baton's proposals: approvals, rejections and overrides (vetoes,
    cancels, rollbacks) with their reasons; acceptance is what was let stand of what
    people were asked about or could have stopped."""
    chosen = [*_in(Override.created_at, scope), *where.executions()]
    day = _day(session, Override.created_at)
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for d, kind, category, n in session.execute(
        select(day, Override.kind, Override.category, func.count())
        .join(Execution, Execution.id == Override.execution_id)
        .where(*chosen)
        .group_by(day, Override.kind, Override.category)
    ).all():
        kinds[kind] += n
        reasons[category] += n
        series[_bucket_of(d, scope.bucket)]["overrides"] += n
    overridden = int(
        session.scalar(
            select(func.count(func.distinct(Override.execution_id)))
            .join(Execution, Execution.id == Override.execution_id)
            .where(*chosen)
        )
        or 0
    )
    approvals = dict(
        session.execute(
            select(Approval.status, func.count())
            .join(Decision, Decision.id == Approval.decision_id)
            .join(Proposal, Proposal.id == Decision.proposal_id)
            .where(*_in(Approval.created_at, scope), *_proposal_filters(where))
            .group_by(Approval.status)
        )
        .tuples()
        .all()
    )
    rejected = approvals.get("rejected", 0)
    judged = acted + rejected
    tiers = dict(
        session.execute(
            select(Decision.tier, func.count())
            .join(Proposal, Proposal.id == Decision.proposal_id)
            .where(*_in(Decision.decided_at, scope), *_proposal_filters(where))
            .group_by(Decision.tier)
        )
        .tuples()
        .all()
    )
    return {
        "decisions_by_tier": tiers,
        "approvals": approvals,
        "accepted": judged - overridden - rejected,
        "overridden": overridden + rejected,
        "acceptance_rate": _rate(judged - overridden - rejected, judged),
        "override_rate": _rate(overridden + rejected, judged),
        "override_reasons": dict(reasons),
        "vetoes": kinds.get("veto", 0),
        "cancels": kinds.get("cancel", 0),
        "rollbacks_by_people": kinds.get("rollback", 0),
    }


def _proposal_filters(where: _Where) -> list[ColumnElement[bool]]:
    service = Proposal.params["service"].as_string()
    out: list[ColumnElement[bool]] = []
    if where.scope.service:
        out.append(service == where.scope.service)
    if where.scope.team:
        out.append(
            or_(
                service.in_(where.services or ()),
                Proposal.runbook_id.in_(where.team_runbooks) if where.team_runbooks else false(),
            )
        )
    if where.runbooks is not None:
        out.append(Proposal.runbook_id.in_(where.runbooks))
    if where.scope.category:
        out.append(Proposal.incident_id.in_(where._ticket_incidents()))
    return out or [true()]


def _escalations(session: Session, scope: Scope, where: _Where, incidents: int) -> dict[str, Any]:
    """How often people had to be called, and the paths that call them most: what
    escalated (an incident, a failed run, an expired approval...), for which service,
    and how far up it climbed."""
    rows = session.execute(
        select(Escalation.subject, Escalation.service, Escalation.level).where(
            *_in(Escalation.created_at, scope), *where.escalations()
        )
    ).all()
    paths = Counter(
        (r.subject.split(":", 1)[0], r.service or "-", r.level) for r in rows
    ).most_common(5)
    return {
        "raised": len(rows),
        "rate_per_incident": _rate(len(rows), incidents),
        "top_paths": [
            {"what": what, "service": svc, "level": level, "count": n}
            for (what, svc, level), n in paths
        ],
    }


def _tickets(
    session: Session,
    scope: Scope,
    where: _Where,
    series: dict[str, Counter[str]],
    ranked: dict[int, int],
) -> dict[str, Any]:
    """Volumes and deflection (a ticket whose incident Baton fixed on its own); SLA
    figures only when tickets carry SLA times."""
    rows = session.execute(
        select(Ticket.id, Ticket.category, Ticket.incident_id, Ticket.created_at).where(
            *_in(Ticket.created_at, scope), *where.tickets()
        )
    ).all()
    for r in rows:
        series[_bucket_of(r.created_at.date(), scope.bucket)]["tickets"] += 1
    deflected = sum(1 for r in rows if ranked.get(r.incident_id) == 2)
    unavailable: list[str] = []
    ids = [r.id for r in rows]
    breaches = int(  # the desk's SLA job marks a late ticket once (servicedesk/sla.py)
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.id.in_(ids) if ids else false(), Ticket.breached_at.is_not(None))
        )
        or 0
    )
    return {
        "filed": len(rows),
        "by_category": dict(Counter(r.category or "uncategorised" for r in rows)),
        "linked_to_incidents": sum(1 for r in rows if r.incident_id is not None),
        "deflected": deflected,
        "deflection_rate": _rate(deflected, len(rows)),
        "sla_breaches": breaches,
        "_unavailable": unavailable,
    }


def _technicians(session: Session, scope: Scope, where: _Where) -> list[dict[str, Any]]:
    """Per person: approvals given, how many of those runs failed or were rolled back,
    overrides made, and how many overrides the outcome proved right (the incident was
    resolved without that runbook succeeding on it later) or wrong (it later did)."""
    people: dict[str, Counter[str]] = defaultdict(Counter)
    for approvers, status in session.execute(
        select(Approval.approvers, Execution.status)
        .join(Execution, Execution.decision_id == Approval.decision_id)
        .where(*_in(Approval.created_at, scope), *where.executions())
    ).tuples():
        for name in approvers or ():
            people[name]["approvals"] += 1
            people[name]["approvals_rolled_back"] += status == ExecutionStatus.ROLLED_BACK
            people[name]["approvals_failed"] += status == ExecutionStatus.FAILED
    chosen = [*_in(Override.created_at, scope), *where.executions()]
    overridden = (
        select(Execution.incident_id)
        .join(Override, Override.execution_id == Execution.id)
        .where(*chosen)
    )
    # when each runbook last succeeded on each of those incidents
    fixed = (
        select(
            Execution.incident_id.label("incident"),
            Execution.runbook_id.label("runbook"),
            func.max(Execution.created_at).label("at"),
        )
        .where(Execution.status == ExecutionStatus.SUCCEEDED, Execution.incident_id.in_(overridden))
        .group_by(Execution.incident_id, Execution.runbook_id)
        .subquery()
    )
    fixed_later = fixed.c.at > Override.created_at
    wrong = case((fixed_later, 1), else_=0)
    right = case((fixed_later, 0), (Incident.resolved_at.is_not(None), 1), else_=0)
    for actor, n, proved_wrong, proved_right in session.execute(
        select(Override.actor, func.count(), func.sum(wrong), func.sum(right))
        .join(Execution, Execution.id == Override.execution_id)
        .outerjoin(Incident, Incident.id == Execution.incident_id)
        .outerjoin(
            fixed,
            (fixed.c.incident == Execution.incident_id) & (fixed.c.runbook == Execution.runbook_id),
        )
        .where(*chosen)
        .group_by(Override.actor)
    ).all():
        people[actor]["overrides"] += n
        people[actor]["overrides_proved_wrong"] += int(proved_wrong or 0)
        people[actor]["overrides_proved_right"] += int(proved_right or 0)
    keys = (
        "approvals",
        "approvals_rolled_back",
        "approvals_failed",
        "overrides",
        "overrides_proved_right",
        "overrides_proved_wrong",
    )
    return [{"person": p, **{k: people[p][k] for k in keys}} for p in sorted(people)]
