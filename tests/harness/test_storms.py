"""Alert storms, the correlate bench's scoring, and the quality it reaches."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from baton.harness.storm import StormResult, correlate_storms, score
from baton.sandbox.scoring import origin_hits, pairwise
from baton.sandbox.storms import Storm, plan_storm
from baton.sandbox.topology import build_topology, downstream_of


def test_pairwise_scores_a_hand_made_grouping():
    # truth: faults A (3 alerts) and B (2), one noise alert; prediction merges one B
    # alert into A's incident and leaves the noise alone.
    truth = ["A", "A", "A", "B", "B", None]
    predicted = [1, 1, 1, 1, 2, None]
    s = pairwise(truth, predicted)
    # true pairs: 3 (A) + 1 (B) = 4; predicted pairs: C(4,2) = 6; agreeing: 3
    assert (s.true_pairs, s.predicted_pairs, s.agreeing_pairs) == (4, 6, 3)
    assert s.precision == 0.5 and s.recall == 0.75 and s.f1 == 0.6


def test_repeats_of_one_noise_alert_are_neutral_but_noise_in_an_incident_is_not():
    truth = ["A", "A", ("noise", 0), ("noise", 0)]
    together = pairwise(truth, [1, 1, 2, 2], neutral={("noise", 0)})
    assert together.f1 == 1.0
    mixed = pairwise(truth, [1, 1, 1, 2], neutral={("noise", 0)})
    assert mixed.precision == pytest.approx(1 / 3, abs=1e-3) and mixed.recall == 1.0


def test_origin_accuracy_uses_the_incident_holding_most_of_a_fault():
    truth = ["A", "A", "A", "B", "B"]
    predicted = [1, 1, 2, 2, None]
    hits, faults = origin_hits(truth, predicted, {"A": "db", "B": "cache"}, {1: "db", 2: "db"})
    assert (hits, faults) == (1, 2)  # A -> incident 1 (db) right; B -> incident 2 (db) wrong


def test_noise_reduction_counts_notifications_and_opened_incidents():
    r = StormResult(
        notifications=1000,
        alerts=40,
        incidents=5,
        truth=["A", "A"],
        predicted=[1, 1],
        roots={"A": "db"},
        origins={1: "db"},
        suppressed={},
    )
    figures = score([r])
    assert figures["noise_reduction"] == 0.995 and figures["noise_reduction_distinct"] == 0.875
    assert figures["pairwise_f1"] == 1.0 and figures["origin_accuracy"] == 1.0


def test_storms_overlap_touch_and_are_deterministic():
    plan = plan_storm(5)
    assert plan == plan_storm(5) and plan != plan_storm(6)
    specs = list(build_topology())
    roots = [f.root for f in plan.faults]
    assert 4 <= len(roots) <= 6 and len(set(roots)) == len(roots)
    reach = {r: {r} | downstream_of(specs, r) for r in roots}
    assert all(a not in reach[b] for a in roots for b in roots if a != b)
    assert any(reach[a] & reach[b] for a in roots for b in roots if a != b)
    assert max(f.offset_s for f in plan.faults) - min(f.offset_s for f in plan.faults) <= 600
    assert {n.kind for n in plan.noise} >= {"flapping", "transient"}


def test_storm_truth_names_a_fault_or_noise_for_every_alert():
    storm = Storm(plan_storm(2))
    sent = [a for _, batch in storm.batches() for a in batch]
    truth = storm.truth()
    assert storm.notifications == len(sent)
    keys = {(a["labels"]["service"], a["labels"]["alertname"], a["startsAt"]) for a in sent}
    assert keys <= set(truth.alert_fault)
    assert set(truth.roots) == {f"F-{i:04d}" for i in range(1, len(storm.plan.faults) + 1)}
    caused = {v for v in truth.alert_fault.values() if v}
    assert caused <= set(truth.roots) and len(caused) >= 3
    assert all(truth.alert_fault[k] is None for k in truth.noise_kind)
    assert "labels" in sent[0] and not any("fault" in str(a) for a in sent)  # nothing leaks


@pytest.mark.parametrize("seed", [1, 10])
def test_storms_meet_the_targets(seed):
    """Quality, not timing: the figures `baton bench correlate --seed N` reports."""
    figures = correlate_storms(seed)
    assert figures["noise_reduction"] >= 0.95
    assert figures["pairwise_f1"] >= 0.90
    assert figures["origin_accuracy"] >= 0.80


def test_alert_times_are_simulated():
    storm = Storm(plan_storm(3))
    first, _ = next(storm.batches())
    assert first == datetime(2026, 3, 4, 14, 0, 30, tzinfo=UTC)
