"""The copilot as people use it: investigate an incident (or a ticket's), answer a
follow-up, draft the fix. Offline by default; with an LLM when one is configured.

Every answer is an AI action and writes an audit record naming who asked, what, and
what was answered (claims and the evidence ids behind them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from baton.act.confine import Scope as Confinement
from baton.act.runbook import Catalogue, Runbook
from baton.correlate.topology import Topology
from baton.kernel.audit import Actor, append
from baton.kernel.errors import NotFound
from baton.store.models import Incident, Ticket
from baton.triage.evidence import Scope
from baton.triage.investigate import Report, investigate, supported
from baton.triage.llm import ChatClient, answer_with_llm, investigate_with_llm
from baton.triage.questions import Answer, answer

COPILOT = Actor("baton.copilot", "ai", "evidence-rank/1")


@dataclass
class Context:
    """What an investigation needs besides the session: catalogue, graph, time, the
    runbooks' confinement, and the optional model with the secrets it must never see."""

    catalogue: Catalogue
    graph: Topology
    at: datetime
    scopes: Callable[[Runbook], Confinement] | None = None
    llm: ChatClient | None = None
    secrets: tuple[str, ...] = ()


def incident_of_ticket(session: Session, ticket_id: int) -> int:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    if ticket.incident_id is None:
        raise NotFound(f"ticket {ticket_id} is linked to no incident; nothing to investigate yet")
    return ticket.incident_id


def report_for(
    session: Session, incident_id: int, ctx: Context, offline_only: bool = False
) -> tuple[Scope, Report]:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    scope = Scope(session, incident, ctx.catalogue, ctx.graph, ctx.at)
    report = investigate(scope, ctx.scopes)
    if ctx.llm is not None and not offline_only:
        report = investigate_with_llm(scope, report, ctx.llm, list(ctx.secrets), ctx.scopes)
    return scope, report


def run_investigation(
    session: Session, incident_id: int, ctx: Context, asker: Actor
) -> dict[str, Any]:
    """The report on an incident, audited."""
    _, report = report_for(session, incident_id, ctx)
    data = report.to_dict()
    append(
        session,
        actor=_actor(report),
        action="copilot.investigated",
        subject=f"incident:{incident_id}",
        at=ctx.at,
        inputs={"asked_by": asker.name, "backend": report.backend, "flags": report.flags},
        decision=report.causes[0].statement if report.causes else "no supported cause",
        rationale=f"{report.summary.text} [{', '.join(report.summary.evidence)}]",
    )
    return data


def ask(
    session: Session, incident_id: int, question: str, ctx: Context, asker: Actor
) -> dict[str, Any]:
    """The answer to a follow-up question, its evidence checked, audited."""
    question = "".join(ch for ch in question if ch.isprintable() or ch in "\n\t")
    scope, report = report_for(session, incident_id, ctx)
    reply = answer(question, scope, report)
    known = report.ids() | {i["id"] for i in reply.items}
    reply.evidence = supported(reply.evidence, known)
    flags = list(report.flags)
    free = answer_with_llm(scope, report, question, ctx.llm, list(ctx.secrets)) if ctx.llm else None
    if free is not None:  # the model's free-form answer, kept only with gathered evidence
        reply = Answer("free_form", free[0], free[1], [])
        flags += free[2]
    data = {**reply.to_dict(), "supported": bool(reply.evidence), "flags": flags}
    append(
        session,
        actor=_actor(report),
        action="copilot.answered",
        subject=f"incident:{incident_id}",
        at=ctx.at,
        inputs={"asked_by": asker.name, "question": question[:500], "kind": reply.kind},
        decision=reply.text[:1000],
        rationale=f"evidence: {', '.join(reply.evidence) or 'none (unsupported)'}",
    )
    return data


def _actor(report: Report) -> Actor:
    return COPILOT if report.backend == "offline" else Actor("baton.copilot", "ai", "llm")
