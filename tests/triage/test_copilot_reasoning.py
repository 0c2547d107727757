"""The ranking's general reasoning: distinct faults in one incident each named, and a
failure mode kept for a service whose kind no runbook covers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from baton.act.runbook import load_dir
from baton.triage.investigate import Cause, _uncovered, distinct_faults
from baton.triage.propose import score, specificity

ROOT = Path(__file__).resolve().parents[2]


class Graph:
    def __init__(self, upstream: dict[str, set[str]]) -> None:
        self._up = upstream

    def upstream(self, name: str) -> frozenset[str]:
        return frozenset(self._up.get(name, set()))


def _scope(upstream: dict[str, set[str]]) -> SimpleNamespace:
    return SimpleNamespace(graph=Graph(upstream))


def _cause(service: str, mode: str | None, weight: float, victim: bool = False) -> Cause:
    return Cause(service, mode, service, 0.0, [f"alert:{service}"], weight, mode, victim)


def test_two_independent_origins_are_two_faults_but_a_victim_is_not():
    causes = [
        _cause("queue", "clear-disk", 0.9),
        _cause("payments", "rollback-deploy", 0.88),
        _cause("worker", "rollback-deploy", 0.85, victim=True),
    ]
    heads = distinct_faults(_scope({"worker": {"queue"}}), causes)
    assert [h.service for h in heads] == ["queue", "payments"]


def test_a_dependent_or_weak_origin_is_not_a_fault_of_its_own():
    causes = [_cause("db", "recycle", 1.0), _cause("api", "rollback", 0.9)]
    assert len(distinct_faults(_scope({"api": {"db"}}), causes)) == 1
    weak = [_cause("db", "recycle", 1.0), _cause("web", "rollback", 0.3)]
    assert len(distinct_faults(_scope({}), weak)) == 1
    same_mode = [_cause("a", "rollback", 1.0), _cause("b", "rollback", 0.95)]
    assert len(distinct_faults(_scope({}), same_mode)) == 1


def test_a_kind_no_runbook_covers_still_gets_its_failure_mode():
    catalogue = load_dir(ROOT / "runbooks")
    spec = specificity(catalogue)
    scale = catalogue.get("scale-out")
    assert score(scale, ["HighCPU"], "search", spec) is None  # not for a search service
    modes = {
        c.runbook.id for c in _uncovered(SimpleNamespace(catalogue=catalogue), ["HighCPU"], spec)
    }
    assert "scale-out" in modes


def test_findings_and_tickets_outside_the_alerts_back_their_service():
    from baton.triage.evidence import Evidence
    from baton.triage.investigate import _corroboration

    alert = SimpleNamespace(id=1, source="prometheus")
    evidence = [
        Evidence("alert:1", "alert", "db", None),
        Evidence("finding:7", "finding", "db", None, {"name": "MetricAnomaly"}),
        Evidence("finding:8", "finding", "web", None, {"name": "NewLogTemplate"}),
        Evidence("ticket:3", "ticket", "db", None),
        Evidence("ticket:4", "ticket", None, None),
    ]
    backing = _corroboration(evidence, {"db": [alert]})
    assert backing == {"db": ["finding:7", "ticket:3"]}  # web is not in trouble


def _topology(*defs):
    from baton.correlate.topology import ServiceDef, Topology

    return Topology({d.name: d for d in (ServiceDef(**x) for x in defs)})


def test_a_silent_zone_under_unreachable_nodes_is_their_common_cause():
    from baton.triage.investigate import _common_parents

    graph = _topology(
        {"name": "zone-a", "kind": "zone"},
        {"name": "zone-b", "kind": "zone"},
        *({"name": f"n{i}", "kind": "node", "zone": "zone-a"} for i in range(3)),
        {"name": "n9", "kind": "node", "zone": "zone-b"},
        {"name": "n8", "kind": "node", "zone": "zone-b"},
    )
    troubled = {n: [] for n in ("n0", "n1", "n2", "n9")}  # one node of zone-b: not its zone
    causes = [_cause(n, None, 0.4) for n in troubled]
    [zone] = _common_parents(graph, troubled, causes, {})
    assert zone.service == "zone-a" and zone.runbook is None
    assert zone.weight > max(c.weight for c in causes)  # it explains the three at once
    assert zone.evidence == ["alert:n0", "alert:n1", "alert:n2"]


def test_a_parent_under_few_of_its_dependents_explains_nothing():
    from baton.triage.investigate import _common_parents

    graph = _topology(
        {"name": "dns", "kind": "dns", "shared": True},
        *({"name": f"app{i}", "kind": "api"} for i in range(6)),
    )
    troubled = {"app0": [], "app1": []}  # two of six services standing on DNS
    assert _common_parents(graph, troubled, [_cause(s, None, 0.5) for s in troubled], {}) == []


def _event(n, service, name, seconds):
    from datetime import UTC, datetime, timedelta

    at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC) + timedelta(seconds=seconds)
    firing = {"status": "firing", "suppressed_by": None, "source": "prometheus", "labels": {}}
    return SimpleNamespace(id=n, service=service, name=name, starts_at=at, **firing)


def test_an_upstream_whose_trouble_began_later_only_half_makes_a_victim():
    from baton.triage.investigate import rank

    graph = _topology(
        {"name": "smtp", "kind": "email"},
        {"name": "worker", "kind": "worker", "depends_on": ("smtp",)},
    )

    def top(smtp_after_s):
        events = [_event(1, "worker", "HighErrorRate", 0), _event(2, "smtp", "Probe", smtp_after_s)]
        scope = SimpleNamespace(
            events=events,
            graph=graph,
            catalogue=load_dir(ROOT / "runbooks"),
            incident=SimpleNamespace(origin_service="smtp"),
        )
        return {c.service: c.weight for c in rank(scope, [])}

    early, late = top(30), top(120)
    assert early["smtp"] > early["worker"]  # smtp went (about) first: worker is its victim
    assert late["worker"] > late["smtp"]  # worker failed first; smtp's trouble came after


def test_an_alert_no_covered_fit_explains_keeps_its_failure_mode_beside_them():
    from baton.triage.investigate import rank

    graph = _topology({"name": "sso", "kind": "auth"})
    events = [_event(1, "sso", "HighErrorRate", 0), _event(2, "sso", "HighCPU", 30)]
    scope = SimpleNamespace(
        events=events,
        graph=graph,
        catalogue=load_dir(ROOT / "runbooks"),
        incident=SimpleNamespace(origin_service="sso"),
    )
    modes = {(c.runbook, c.failure_mode) for c in rank(scope, [])}
    # errors fit a rollback; the CPU fits scale-out, which covers no auth service
    assert ("rollback-deploy", "rollback-deploy") in modes and (None, "scale-out") in modes
    # errors alone: nothing a covered fit leaves unexplained, so no uncovered twin
    scope.events = events[:1]
    assert {c.failure_mode for c in rank(scope, [])} == {"rollback-deploy"}
