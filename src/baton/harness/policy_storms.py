"""Policy replay against the sandbox: the same simulated storms run under the current
policy and under a candidate, side by side, with what the candidate changed.

Each storm is the demo's day of faults (one seed per storm, simulated people approving,
vetoing a fix at a bad moment, pausing automation for maintenance). The two runs of a
seed see the same estate and the same faults; only `policy.yaml` differs, written into a
copy of the runbooks directory, so the candidate is read exactly as a live Baton would
read it. What changed is told in figures: decisions by tier, approvals people were asked
for, runs that failed or were rolled back, people's overrides, faults fixed, MTTR.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from baton.govern.config import PolicyConfig
from baton.harness.demo import Demo, DemoPlan
from baton.runtime.settings import Settings

# the figures compared, each from the demo's summary (a path into it)
FIGURES: dict[str, tuple[str, ...]] = {
    "auto": ("decisions_by_tier", "auto"),
    "approve": ("decisions_by_tier", "approve"),
    "recommend": ("decisions_by_tier", "recommend"),
    "observe": ("decisions_by_tier", "observe"),
    "approvals_requested": ("approvals_requested",),
    "executions": ("executions",),
    "executions_failed": ("executions_failed",),
    "overrides": ("overrides",),
    "faults_fixed": ("faults_fixed",),
    "incidents_resolved": ("incidents_resolved",),
    "escalations": ("escalations",),
    "mttr_s": ("kpis", "mttr_s"),
}


def _figure(summary: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = summary
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None and path[0] == "decisions_by_tier":
        return 0  # a tier no decision took
    return value


def run_storm_under(
    policy: PolicyConfig, runbooks: Path, plan: DemoPlan, home: Path
) -> dict[str, Any]:
    """One storm on a fresh SQLite database under `home`, with `policy` as policy.yaml."""
    books = home / "runbooks"
    shutil.copytree(runbooks, books)
    (books / "policy.yaml").write_text(yaml.safe_dump(policy.model_dump(mode="json")))
    demo = Demo(Settings(home=home, runbooks_dir=books), plan)
    try:
        summary = demo.run_once()
    finally:
        demo.close()
    return {name: _figure(summary, path) for name, path in FIGURES.items()}


def _delta(before: Any, after: Any) -> Any:
    if isinstance(before, int | float) and isinstance(after, int | float):
        return round(after - before, 1)
    return None


def compare_storms(
    current: PolicyConfig,
    candidate: PolicyConfig,
    runbooks: Path,
    seeds: list[int],
    plan: Callable[[int], DemoPlan] = lambda seed: DemoPlan(seed=seed),
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Every seed's storm under both policies; per storm and in total, each figure under
    the current and the candidate policy and the difference, and in words what the
    candidate would have changed."""
    storms: list[dict[str, Any]] = []
    totals: dict[str, dict[str, Any]] = {n: {"current": 0, "candidate": 0} for n in FIGURES}
    for i, seed in enumerate(seeds):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            was = run_storm_under(current, runbooks, plan(seed), Path(a))
            now = run_storm_under(candidate, runbooks, plan(seed), Path(b))
        storms.append(
            {
                "seed": seed,
                "figures": {
                    n: {"current": was[n], "candidate": now[n], "change": _delta(was[n], now[n])}
                    for n in FIGURES
                },
            }
        )
        for n in FIGURES:
            if n != "mttr_s":
                totals[n]["current"] += was[n] or 0
                totals[n]["candidate"] += now[n] or 0
        if progress is not None:
            progress(i + 1, len(seeds))
    del totals["mttr_s"]  # a median per storm; not summed
    for t in totals.values():
        t["change"] = t["candidate"] - t["current"]
    return {"storms": len(seeds), "totals": totals, "per_storm": storms, "said": _said(totals)}


def _said(totals: dict[str, dict[str, Any]]) -> list[str]:
    """The changes, in words, worst news first."""
    words = {
        "executions_failed": "runs that failed or were rolled back",
        "overrides": "people's overrides (vetoes, cancels, rollbacks)",
        "auto": "fixes Baton ran on its own",
        "approvals_requested": "approvals people were asked for",
        "faults_fixed": "faults fixed",
        "escalations": "escalations",
    }
    out = []
    for name, text in words.items():
        change = totals[name]["change"]
        if change:
            more = "more" if change > 0 else "fewer"
            out.append(f"{abs(change)} {more} {text}")
    return out or ["no figure changed"]
