"""Storms under two policies: a candidate that caps production at `approve` must show
fewer runs on Baton's own and more approvals asked of people, on the same faults."""

from pathlib import Path

from baton.govern.config import PolicyConfig, load_policy
from baton.harness.demo import DemoPlan
from baton.harness.policy_storms import compare_storms

ROOT = Path(__file__).resolve().parents[2]


def _short(seed: int) -> DemoPlan:
    return DemoPlan(
        seed=seed,
        baseline_min=5,
        spacing_min=30,
        tail_min=10,
        scenarios=["disk_full"],
        veto_runbook=None,
        pause_during=None,
        late_fault=None,
    )


def test_a_stricter_candidate_moves_fixes_from_auto_to_approvals():
    runbooks = ROOT / "runbooks"
    current = load_policy(runbooks / "policy.yaml")
    data = current.model_dump(mode="json")
    data["environments"] = {env: "approve" for env in data["environments"]} | {"prod": "approve"}
    candidate = PolicyConfig.model_validate(data)
    out = compare_storms(current, candidate, runbooks, [1], plan=_short)
    t = out["totals"]
    assert t["auto"]["current"] > 0
    assert t["auto"]["candidate"] == 0
    assert t["approvals_requested"]["candidate"] > t["approvals_requested"]["current"]
    assert any("fewer fixes Baton ran on its own" in s for s in out["said"])
    assert out["per_storm"][0]["seed"] == 1
