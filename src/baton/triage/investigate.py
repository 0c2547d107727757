"""An investigation: the evidence about an incident, and what it supports.

Offline and deterministic: candidate causes are (service, runbook) pairs — a service in
trouble and the declared cause of a runbook that fits its alerts — ranked by how well the
alerts fit, where the service sits among the others in trouble (a service whose own
dependencies are in trouble is more likely a victim), who went first, and what fixed
this origin before. Every claim names the evidence ids behind it; `supported` drops any
claim whose ids were not gathered, whoever (this code or a model) wrote it.

The proposed fix is only a draft: `Commands.propose_fix` turns it into a Proposal that
the decide stage judges like every other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from baton.act.confine import Scope as Confinement
from baton.act.runbook import ParamError, Runbook, resolve_params
from baton.correlate.topology import Topology
from baton.store.models import Event
from baton.triage import guard
from baton.triage.evidence import Evidence, Scope, gather
from baton.triage.propose import score, specificity

VICTIM = 0.35  # a service whose dependencies are in trouble: its own alerts explain less
# ... unless all that trouble began after its own: an effect does not come first, but
# alerts fire with jitter (evaluation steps, `for` durations), so a later upstream still
# counts for something
LATE_VICTIM = 0.7
ALONGSIDE = timedelta(seconds=60)  # two 30 s evaluation steps: "at about the same time"
FIRST_BONUS = 0.1
ORIGIN_BONUS = 0.15
FIXED_BEFORE = 0.1
SYMPTOM_FIT = 0.25  # a service in trouble that no runbook's declared cause explains
UNCOVERED = 0.8  # a runbook's declared cause seen on a kind that runbook does not cover
DISTINCT = 0.6  # a second origin this close to the first is a fault of its own
MAX_FAULTS = 3
CORROBORATED = 0.05  # per detector finding or linked ticket on the service, outside its alerts
MAX_CORROBORATION = 0.1
COMMON = 0.8  # a parent standing under services in trouble: a little less than their sum
COMMON_SHARE = 0.5  # ... when at least this share of what stands on it is in trouble


@dataclass
class Claim:
    text: str
    evidence: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "evidence": self.evidence}


@dataclass
class Cause:
    service: str
    runbook: str | None
    statement: str
    confidence: float
    evidence: list[str]
    weight: float = 0.0
    # the failure mode named by a runbook's declared cause, even when that runbook does
    # not cover this service's kind (then `runbook` is None: there is nothing to run)
    failure_mode: str | None = None
    victim: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "runbook": self.runbook,
            "failure_mode": self.failure_mode,
            "statement": self.statement,
            "confidence": self.confidence,
            "evidence": self.evidence,
        }


@dataclass
class Report:
    incident_id: int
    summary: Claim
    causes: list[Cause]
    checks: list[Claim]
    fix: dict[str, Any] | None
    evidence: list[Evidence]
    flags: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # claims without evidence, not shown
    backend: str = "offline"
    faults: list[Cause] = field(default_factory=list)  # the head of each distinct fault

    def ids(self) -> set[str]:
        return {e.id for e in self.evidence}

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "backend": self.backend,
            "summary": self.summary.to_dict(),
            "causes": [c.to_dict() for c in self.causes],
            "faults": [c.to_dict() for c in self.faults],
            "checks": [c.to_dict() for c in self.checks],
            "fix": self.fix,
            "flags": self.flags,
            "dropped_unsupported": self.dropped,
            "evidence": [e.to_dict() for e in self.evidence],
        }


def supported(cited: list[str], known: set[str]) -> list[str]:
    """The cited ids that were really gathered, in order, once each."""
    out: list[str] = []
    for item in cited:
        if item in known and item not in out:
            out.append(item)
    return out


def keep_supported(report: Report) -> Report:
    """Drop every claim (cause, check) that cites no gathered evidence; strip ids that
    were never gathered from the rest. The summary, if it loses all, says so."""
    known = report.ids()
    causes, checks = [], []
    for c in report.causes:
        c.evidence = supported(c.evidence, known)
        (causes.append(c) if c.evidence else report.dropped.append(c.statement))
    for k in report.checks:
        k.evidence = supported(k.evidence, known)
        (checks.append(k) if k.evidence else report.dropped.append(k.text))
    report.causes, report.checks = causes, checks
    report.summary.evidence = supported(report.summary.evidence, known)
    if not report.summary.evidence:
        report.dropped.append(report.summary.text)
        report.summary = Claim("no supported summary", [])
    return report


def flag_injections(evidence: list[Evidence]) -> list[dict[str, Any]]:
    """Each untrusted text that reads like instructions to a model, with why."""
    return [
        {"evidence": e.id, "reasons": reasons}
        for e in evidence
        if e.text and (reasons := guard.injections(e.text))
    ]


def _by_service(events: list[Event]) -> dict[str, list[Event]]:
    """The incident's alerts per service: those firing, or, where a service has none
    firing any more (a flapping leak, a resolved symptom), every alert it had."""
    out: dict[str, list[Event]] = {}
    for e in events:
        if e.service and e.suppressed_by is None:
            out.setdefault(e.service, []).append(e)
    for service, evs in out.items():
        firing = [e for e in evs if e.status == "firing"]
        out[service] = firing or evs
    return out


def _kind_prefix(e: Event) -> str:
    return "finding" if e.source == "baton.detect" else "alert"


def rank(scope: Scope, evidence: list[Evidence]) -> list[Cause]:
    """Candidate causes, best first, confidences summing to at most 1."""
    troubled = _by_service(scope.events)
    if not troubled:
        return []
    graph, spec = scope.graph, specificity(scope.catalogue)
    first = {s: min(e.starts_at for e in evs) for s, evs in troubled.items()}
    earliest = min(first.values())
    by_id = {e.id: e for e in evidence}
    groups = {e.facts.get("event_id"): e.id for e in evidence if e.kind == "grouping"}
    fixed = _fixed_before(evidence)
    backing = _corroboration(evidence, troubled)
    causes: list[Cause] = []
    for service, events in sorted(troubled.items()):
        names = [e.name for e in events]
        # a queue backs up when the workers reading it stop: between a queue and its
        # consumers, the consumers' trouble explains the queue's, not the other way
        ups = sorted(
            u for u in graph.upstream(service) & set(troubled) if service not in graph.consumers(u)
        )
        stalled = sorted(graph.consumers(service) & set(troubled))
        downs = sorted(s for s in troubled if service in graph.upstream(s) and s not in stalled)
        spread = min(0.3, 0.1 * len(downs))
        before = [u for u in ups if first[u] <= first[service] + ALONGSIDE]
        position = (VICTIM if before else LATE_VICTIM if ups else 1.0) + spread
        # a queue's own cause (its disk, say) stands; its mere symptoms (a backlog) do not
        symptom_position = (VICTIM if ups or stalled else 1.0) + spread
        seen = backing.get(service, [])
        bonus = (
            (FIRST_BONUS if first[service] == earliest else 0.0)
            + (ORIGIN_BONUS if service == scope.incident.origin_service else 0.0)
            + min(MAX_CORROBORATION, CORROBORATED * len(seen))
        )
        alert_ids = [f"{_kind_prefix(e)}:{e.id}" for e in events]
        group_ids = [groups[e.id] for e in events if e.id in groups]
        healthy = [
            f"neighbour:{n}"
            for n in graph.needs(service)
            if f"neighbour:{n}" in by_id and by_id[f"neighbour:{n}"].facts.get("healthy")
        ] + seen
        where = _where(service, [*ups, *stalled], downs)
        kind = graph.kind(service)
        fits = [c for rb in scope.catalogue if (c := score(rb, names, kind, spec))]
        for c in fits:
            matched = [i for i, e in zip(alert_ids, events, strict=True) if e.name in c.matched]
            past = fixed.get((service, c.runbook.id), [])
            # an alert only this runbook lists is stronger evidence than a generic one
            sharp = 0.5 + 0.5 * max(spec.get(n, 0.0) for n in c.matched)
            weight = c.confidence * sharp * position + bonus + (FIXED_BEFORE if past else 0.0)
            cause = c.runbook.doc.get("description") or c.runbook.doc.get("title", c.runbook.id)
            causes.append(
                Cause(
                    service,
                    c.runbook.id,
                    f"{service}: {', '.join(c.matched)} — the cause runbook {c.runbook.id} "
                    f"fixes ({_first_sentence(cause)}); {where}",
                    0.0,
                    [*matched, f"runbook:{c.runbook.id}", *group_ids, *healthy, *past],
                    weight,
                    c.runbook.id,
                    bool(ups),
                )
            )
        # a failure mode of its own: a runbook's declared cause fits the alerts, but that
        # runbook does not cover this kind; the cause stands on its own evidence, unfixable
        # by any runbook here. Also beside covered fits, for alerts none of them explains:
        # HighCPU on an auth service says "saturated" though its errors fit a rollback
        explained = {n for c in fits for n in c.matched}
        uncovered = [
            c
            for c in _uncovered(scope, names, spec)
            if set(c.matched) - explained and c.runbook.id not in {f.runbook.id for f in fits}
        ]
        for c in uncovered:
            matched = [i for i, e in zip(alert_ids, events, strict=True) if e.name in c.matched]
            sharp = 0.5 + 0.5 * max(spec.get(n, 0.0) for n in c.matched)
            causes.append(
                Cause(
                    service,
                    None,
                    f"{service}: {', '.join(c.matched)} — the failure mode {c.runbook.id} "
                    f"fixes on other kinds, but no runbook covers a {graph.kind(service)}; "
                    f"fix it by hand; {where}",
                    0.0,
                    [*matched, *group_ids, *healthy],
                    UNCOVERED * c.confidence * sharp * position + bonus,
                    c.runbook.id,
                    bool(ups),
                )
            )
        if not fits and not uncovered:
            causes.append(
                Cause(
                    service,
                    None,
                    f"{service}: {', '.join(sorted(set(names)))} that no runbook's declared "
                    f"cause explains; {where}",
                    0.0,
                    [*alert_ids, *group_ids, *healthy],
                    SYMPTOM_FIT * symptom_position + bonus,
                    victim=bool(ups or stalled),
                )
            )
    causes += _common_parents(graph, troubled, causes, by_id)
    causes.sort(key=lambda c: (-c.weight, c.service, c.runbook or ""))
    total = sum(c.weight for c in causes) or 1.0
    for c in causes:
        c.confidence = round(c.weight / total, 3)
    return causes


def _common_parents(
    graph: Topology,
    troubled: dict[str, list[Event]],
    causes: list[Cause],
    by_id: dict[str, Evidence],
) -> list[Cause]:
    """Infrastructure most of whose dependents are in trouble explains them at once: a
    zone whose nodes are all unreachable, a node whose workloads all fail, a shared DNS
    everything errors on. Such a parent weighs COMMON x the share of its direct
    dependents in trouble x what their own best causes weigh together. A silent parent
    (no alerts of its own: a zone has no exporter) becomes a cause citing its dependents'
    alerts (they keep their own weights: a node can be silent under a workload that
    crashes by itself); a parent in trouble itself has its own causes raised to that
    weight."""
    best: dict[str, Cause] = {}
    for c in causes:
        if c.service not in best or c.weight > best[c.service].weight:
            best[c.service] = c
    # the deepest first (a node before its zone), so a zone sums its nodes as raised
    parents = sorted(
        {n for s in troubled for n in graph.needs(s) if graph.infrastructure(n)},
        key=lambda n: (-len(graph.upstream(n)), n),
    )
    out: list[Cause] = []
    for parent in parents:
        dependents = graph.dependents(parent)
        hit = sorted(d for d in dependents & set(troubled) if d in best)
        if len(hit) < 2 or len(hit) < COMMON_SHARE * len(dependents):
            continue
        share = len(hit) / len(dependents)
        # a parent standing on something in trouble itself (DNS on unreachable nodes)
        # is a victim like any other service
        below = VICTIM if graph.upstream(parent) & set(troubled) else 1.0
        weight = COMMON * share * below * sum(best[d].weight for d in hit)
        own = best.get(parent)
        if own is not None:
            own.weight = max(own.weight, weight)
            continue
        cited = [i for d in hit for i in best[d].evidence[:1]]
        near = [f"neighbour:{parent}"] if f"neighbour:{parent}" in by_id else []
        out.append(
            Cause(
                parent,
                None,
                f"{parent}: no alerts of its own, but {len(hit)} of the {len(dependents)} "
                f"services standing on it are in trouble ({', '.join(hit[:5])}"
                f"{'...' if len(hit) > 5 else ''}); look at it first, by hand",
                0.0,
                [*cited, *near],
                weight,
            )
        )
        best[parent] = out[-1]
    return out


def _corroboration(
    evidence: list[Evidence], troubled: dict[str, list[Event]]
) -> dict[str, list[str]]:
    """Per service in trouble, what backs its alerts from elsewhere: detector findings
    (a metric anomaly, a new log template, a log rate change) on it that did not join the
    incident, and tickets people linked to the incident about it. Independent signals
    agreeing on a service make it likelier the place where the trouble is."""
    inside = {f"{_kind_prefix(e)}:{e.id}" for evs in troubled.values() for e in evs}
    out: dict[str, list[str]] = {}
    for e in evidence:
        if e.kind in ("finding", "ticket") and e.service in troubled and e.id not in inside:
            out.setdefault(e.service, []).append(e.id)
    return out


def _uncovered(scope: Scope, names: list[str], spec: dict[str, float]) -> list[Any]:
    """Runbooks whose declared cause fits these alerts when kinds are set aside."""
    return [
        c
        for rb in scope.catalogue
        if (rb.doc["match"].get("service_kinds"))
        and (c := score(rb, names, None, spec, any_kind=True))
    ]


def distinct_faults(scope: Scope, causes: list[Cause]) -> list[Cause]:
    """The heads of the distinct faults an incident holds: the first cause, and each
    other origin (not a victim of anything in trouble) with a failure mode of its own,
    independent of every head in the graph and nearly as strong. Two faults in one
    incident (a full disk beside a bad release) each get named, not one hidden second."""
    if not causes:
        return []
    heads = [causes[0]]
    graph = scope.graph
    for c in causes[1:]:
        if len(heads) >= MAX_FAULTS or c.weight < DISTINCT * heads[0].weight:
            break
        independent = all(
            c.service != h.service
            and c.failure_mode != h.failure_mode
            and c.service not in graph.upstream(h.service)
            and h.service not in graph.upstream(c.service)
            for h in heads
        )
        if c.failure_mode and not c.victim and independent:
            heads.append(c)
    return heads


def _first_sentence(text: str) -> str:
    return " ".join(text.split()).split(". ")[0].rstrip(".")


def _where(service: str, ups: list[str], downs: list[str]) -> str:
    if ups:
        return f"it needs {', '.join(ups)}, also in trouble, so it may be a victim"
    if downs:
        return f"nothing it needs is in trouble and {', '.join(downs)} need it"
    return "nothing it needs is in trouble"


def _fixed_before(evidence: list[Evidence]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for e in evidence:
        if e.kind != "past" or not e.service:
            continue
        for run in e.facts.get("resolved_by", []):
            if run.get("verified"):
                out.setdefault((e.service, run["runbook"]), []).append(e.id)
    return out


def checks(causes: list[Cause], evidence: list[Evidence]) -> list[Claim]:
    """What a technician should look at next, each pointing at the evidence it is about."""
    if not causes:
        return []
    out: list[Claim] = []
    top = causes[0]
    alerts = [i for i in top.evidence if i.startswith(("alert:", "finding:"))]
    out.append(Claim(f"confirm the alerts on {top.service} are still firing", alerts))
    if len(causes) > 1 and causes[1].confidence >= 0.6 * top.confidence:
        other = causes[1]
        out.append(
            Claim(
                f"tell apart {top.runbook or top.service} on {top.service} and "
                f"{other.runbook or other.service} on {other.service}: their evidence is close",
                [*top.evidence[:2], *other.evidence[:2]],
            )
        )
    changes = [e.id for e in evidence if e.kind == "change" and e.service == top.service]
    if changes:
        out.append(Claim(f"review what changed on {top.service} shortly before", changes))
    sick = [e.id for e in evidence if e.kind == "neighbour" and not e.facts.get("healthy")]
    if sick:
        out.append(Claim("look at neighbours in trouble outside this incident", sick))
    if top.runbook:
        rid = f"runbook:{top.runbook}"
        record = next((e.facts["track_record"] for e in evidence if e.id == rid), {})
        rate = record.get("success_rate")
        if rate is not None and rate < 0.8:
            out.append(Claim(f"{top.runbook} succeeded {rate:.0%} of its runs; weigh that", [rid]))
    tickets = [e.id for e in evidence if e.kind == "ticket"]
    if tickets:
        out.append(Claim("read what the people reporting it say", tickets))
    return out


def draft_fix(
    scope: Scope,
    causes: list[Cause],
    scopes: Callable[[Runbook], Confinement] | None = None,
) -> dict[str, Any] | None:
    """The top cause that has a runbook, as a draft proposal (params resolved and
    validated the way triage does); None when no supported cause has one."""
    for cause in causes:
        if cause.runbook is None:
            continue
        runbook = scope.catalogue.get(cause.runbook)
        if runbook is None:
            continue
        events = _by_service(scope.events).get(cause.service, [])
        try:
            params = resolve_params(
                runbook,
                origin_service=cause.service,
                labels=events[0].labels if events else {},
                scope=scopes(runbook) if scopes else None,
            )
        except ParamError:
            continue
        return {
            "runbook": runbook.id,
            "version": runbook.version,
            "params": params,
            "service": cause.service,
            "confidence": cause.confidence,
            "rationale": cause.statement,
            "evidence": cause.evidence,
        }
    return None


def investigate(scope: Scope, scopes: Callable[[Runbook], Confinement] | None = None) -> Report:
    """The offline investigation of `scope.incident`: evidence, ranked causes, checks, a
    draft fix, injection flags; every claim supported by gathered evidence."""
    evidence = gather(scope)
    causes = rank(scope, evidence)
    inc = scope.incident
    alerts = [e.id for e in evidence if e.kind in ("alert", "finding")]
    if causes:
        top = causes[0]
        text = (
            f"{len(alerts)} alerts on {len(inc.services or [])} services "
            f"({', '.join(inc.services or [])}); most likely {top.service}"
            f"{' (' + top.runbook + ')' if top.runbook else ''}, confidence {top.confidence}"
        )
        summary = Claim(text, [*top.evidence[:3], *alerts[:3]])
    else:
        summary = Claim(f"{len(alerts)} alerts, none firing now", alerts[:5])
    report = Report(
        incident_id=inc.id,
        summary=summary,
        causes=causes,
        checks=checks(causes, evidence),
        fix=None,
        evidence=evidence,
        flags=flag_injections(evidence),
    )
    report = keep_supported(report)
    report.faults = distinct_faults(scope, report.causes)
    if len(report.faults) > 1:
        names = ", ".join(f"{c.service} ({c.failure_mode})" for c in report.faults)
        report.checks.insert(
            1,
            Claim(
                f"this incident holds {len(report.faults)} distinct faults: {names}; "
                "each needs its own fix",
                [c.evidence[0] for c in report.faults],
            ),
        )
    report.fix = draft_fix(scope, report.causes, scopes)
    return report
