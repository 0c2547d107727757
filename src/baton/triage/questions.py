"""Follow-up questions about an incident, answered offline over the same read-only tools.

A fixed set of kinds (what changed, why not this fix, who owns it, what caused it, what
next, has it happened before, what is the fix, what is around it) and a general matcher:
each kind has cue words; the question's words score every kind; a service named in the
question, and a time span ("last 30 minutes", "the last hour"), narrow the tools. Every
answer cites evidence ids like the report's claims.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from baton.triage import evidence as tools
from baton.triage.evidence import Evidence, Scope
from baton.triage.investigate import Report

CUES: dict[str, tuple[str, ...]] = {
    "changes": ("changed", "change", "changes", "deploy", "deployed", "deploys", "recent", "new"),
    "why_not": ("why not", "instead", "rather", "not roll", "why don't", "why dont"),
    "owner": ("owns", "owner", "who", "on call", "oncall", "on-call", "team", "contact", "page"),
    "cause": ("why", "cause", "caused", "root", "reason", "going on", "happening", "wrong"),
    "next": ("next", "check", "look at", "investigate", "should i", "steps", "verify"),
    "similar": ("before", "similar", "last time", "again", "history", "previous", "past"),
    "fix": ("fix", "remedy", "resolve", "do about", "runbook", "propose", "action"),
    "neighbours": ("upstream", "downstream", "depends", "dependencies", "neighbour", "neighbor"),
}
_SPAN = re.compile(r"(\d+)\s*(s|sec|seconds?|m|min|mins|minutes?|h|hrs?|hours?|d|days?)\b", re.I)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WORDS = re.compile(r"[a-z0-9-]+")
MAX_SPAN_S = 30 * 86400  # the ledger is not searched further back than this


@dataclass
class Answer:
    kind: str
    text: str
    evidence: list[str]
    items: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "answer": self.text,
            "evidence": self.evidence,
            "items": self.items,
        }


def classify(question: str) -> str:
    """The question kind whose cues the question matches best (ties: the order above)."""
    q = f" {question.lower()} "
    best, best_score = "cause", 0.0
    for kind, cues in CUES.items():
        hits = sum(len(c.split()) for c in cues if re.search(rf"\b{re.escape(c)}\b", q))
        if hits > best_score:
            best, best_score = kind, hits
    return best


def span(question: str, default: timedelta = timedelta(hours=1)) -> timedelta:
    """'in the last 30 minutes' -> 30 min; 'last hour' -> 1 h; else the default."""
    m = _SPAN.search(question)
    if m:
        seconds = int(m.group(1)[:9]) * _UNIT[m.group(2)[0].lower()]
        return timedelta(seconds=min(seconds, MAX_SPAN_S))
    for word, unit in (("hour", "h"), ("day", "d"), ("minute", "m")):
        if re.search(rf"\blast {word}\b", question.lower()):
            return timedelta(seconds=_UNIT[unit])
    return default


def named_service(question: str, scope: Scope) -> str | None:
    """The longest catalogue service named in the question."""
    words = set(_WORDS.findall(question.lower()))
    text = question.lower()
    known = sorted(scope.graph.services, key=len, reverse=True)
    for name in known:
        if name.lower() in words or (("-" in name) and name.lower() in text):
            return name
    return None


def _named_runbook(question: str, report: Report, scope: Scope) -> str | None:
    """The runbook a 'why not X' question is about: the one sharing most words with it."""
    words = set(_WORDS.findall(question.lower())) - {"why", "not", "the", "a", "we", "do"}
    best, best_n = None, 0
    for rb in scope.catalogue:
        title = f"{rb.id} {rb.doc.get('title', '')}".lower()
        vocab = set(_WORDS.findall(title)) | set(rb.id.split("-"))
        stems = {w.rstrip("s") for w in vocab}
        n = sum(1 for w in words if w in vocab or w.rstrip("s") in stems)
        if n > best_n:
            best, best_n = rb.id, n
    return best


def _items(found: list[Evidence]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in found]


def answer(question: str, scope: Scope, report: Report) -> Answer:
    """The offline answer to `question` about the incident of `report`."""
    kind = classify(question)
    service = named_service(question, scope)
    if kind == "changes":
        since = scope.at - span(question)
        found = tools.changes(scope, service, since)
        fired = [
            e
            for e in report.evidence
            if e.kind in ("alert", "finding")
            and (service is None or e.service == service)
            and e.at is not None
            and e.at >= since
        ]
        where = f" on {service}" if service else ""
        if not found:
            text = f"no run, policy or catalogue change{where} since {since:%H:%M} UTC"
        else:
            text = f"{len(found)} change(s){where} since {since:%H:%M} UTC: " + "; ".join(
                f"{e.facts['action']} {e.facts['subject']} by {e.facts['actor']}" for e in found[:5]
            )
        if fired:
            text += f"; {len(fired)} alert(s) started there in that time"
        every = [*found, *fired]
        return Answer(kind, text, [e.id for e in every] or _cause_ids(report), _items(every))
    if kind == "owner":
        found = tools.owner(scope, service)
        if not found:
            return Answer(kind, "no service to name an owner for", [], [])
        facts = found[0].facts
        oncall = facts["on_call"].get("user") or "nobody on call"
        team = facts["owner"] or "no team in the catalogue"
        text = f"{found[0].service} is owned by {team}; on call: {oncall}"
        return Answer(kind, text, [found[0].id], _items(found))
    if kind == "why_not":
        return _why_not(question, scope, report)
    if kind == "similar":
        found = [e for e in report.evidence if e.kind == "past"]
        if not found:
            return Answer(kind, "no earlier incident at this origin", _cause_ids(report), [])
        parts = []
        for e in found:
            runs = (
                ", ".join(f"{r['runbook']} ({r['status']})" for r in e.facts["resolved_by"])
                or "no run"
            )
            parts.append(f"#{e.id.split(':')[1]} {e.facts['title']}: {runs}")
        return Answer(kind, "; ".join(parts), [e.id for e in found], _items(found))
    if kind == "next":
        text = "; ".join(c.text for c in report.checks) or "nothing further to check"
        ids = [i for c in report.checks for i in c.evidence]
        return Answer(kind, text, ids, [])
    if kind == "fix":
        if report.fix is None:
            return Answer(
                kind, "no runbook fits a supported cause; left to people", _cause_ids(report), []
            )
        f = report.fix
        text = (
            f"{f['runbook']} with {f['params']} (confidence {f['confidence']}); it becomes a "
            "proposal only when a person asks, and the policy decides it like any other"
        )
        return Answer(kind, text, f["evidence"], [])
    if kind == "neighbours":
        found = [e for e in report.evidence if e.kind == "neighbour"]
        text = (
            "; ".join(
                f"{e.service}: {'healthy' if e.facts['healthy'] else ', '.join(e.facts['firing'])}"
                for e in found
            )
            or "no neighbour in the graph"
        )
        return Answer(kind, text, [e.id for e in found], _items(found))
    # cause (and anything unmatched)
    causes = [c for c in report.causes if service is None or c.service == service] or report.causes
    if not causes:
        return Answer("cause", "no alert is firing in this incident now", [], [])
    text = "; ".join(f"{c.statement} (confidence {c.confidence})" for c in causes[:3])
    return Answer("cause", text, [i for c in causes[:3] for i in c.evidence], [])


def _cause_ids(report: Report) -> list[str]:
    return report.causes[0].evidence if report.causes else []


def _why_not(question: str, scope: Scope, report: Report) -> Answer:
    runbook = _named_runbook(question, report, scope)
    top = report.causes[0] if report.causes else None
    if runbook is None or top is None:
        return Answer(
            "why_not", "no runbook named in the question, or no cause", _cause_ids(report), []
        )
    ranked = [c for c in report.causes if c.runbook == runbook]
    if top.runbook == runbook:
        text = f"{runbook} is the best-supported fix: {top.statement}"
        return Answer("why_not", text, top.evidence, [])
    if not ranked:
        fits = next((e for e in report.evidence if e.id == f"runbook:{runbook}"), None)
        text = (
            f"{runbook}'s declared causes match no alert firing in this incident; "
            f"the evidence points at {top.service} ({top.runbook or 'no runbook'}): {top.statement}"
        )
        ids = [*top.evidence, *([fits.id] if fits else [])]
        return Answer("why_not", text, ids, [])
    best = ranked[0]
    text = (
        f"{runbook} on {best.service} has confidence {best.confidence} against "
        f"{top.confidence} for {top.runbook or 'no runbook'} on {top.service}; "
        f"{best.statement}; the stronger case: {top.statement}"
    )
    return Answer("why_not", text, [*top.evidence, *best.evidence], [])
