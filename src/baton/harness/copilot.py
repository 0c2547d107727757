"""Scoring the copilot on sandbox storms whose root causes are known.

Each storm runs through a fresh Baton (harness/storm.py); once it is over, every fault's
incident (the one holding most of its alerts) is investigated offline. A cause is right
when it names the fault's root service and a runbook whose remediation is one the fault's
scenario is really fixed by. The truth is read only to score, after the investigation.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from baton.harness.storm import run_storm
from baton.runtime.platform import Platform
from baton.sandbox.faults import SCENARIOS
from baton.sandbox.rules import iso
from baton.sandbox.storms import Storm, plan_storm
from baton.store.models import Event, Incident
from baton.triage.evidence import Scope
from baton.triage.investigate import investigate


def _remediations(platform: Platform, runbook_id: str | None) -> set[str]:
    """What a runbook's steps do to the sandbox (its `remediation` arguments)."""
    runbook = platform.config.catalogue.get(runbook_id) if runbook_id else None
    if runbook is None:
        return set()
    return {
        str(step.get("with", {}).get("remediation"))
        for step in runbook.doc.get("steps", [])
        if isinstance(step.get("with"), dict)
    }


class Tally:
    def __init__(self) -> None:
        self.faults = self.top1 = self.top3 = 0
        self.cited = self.cited_right = 0
        self.seconds: list[float] = []
        self.misses: list[dict[str, Any]] = []

    def figures(self) -> dict[str, Any]:
        n = self.faults or 1
        ordered = sorted(self.seconds)
        return {
            "faults": self.faults,
            "top1": round(self.top1 / n, 4),
            "top3": round(self.top3 / n, 4),
            "evidence_precision": round(self.cited_right / self.cited, 4) if self.cited else None,
            "investigation_s_p50": round(ordered[len(ordered) // 2], 4) if ordered else None,
            "investigation_s_max": round(ordered[-1], 4) if ordered else None,
            "misses": self.misses[:20],
        }


def _score_storm(platform: Platform, storm: Storm, tally: Tally) -> None:
    truth = storm.truth()
    scenario = {g.fault_id: g.scenario for g in storm.estate.ground_truth_records()}
    with platform.db.session() as s:
        events = list(s.scalars(select(Event).order_by(Event.id)))
        fault_of = {
            e.id: truth.alert_fault.get((e.labels.get("service", ""), e.name, iso(e.starts_at)))
            for e in events
        }
        placed: dict[str, Counter[int | None]] = {}
        for e in events:
            if fault_of[e.id]:
                placed.setdefault(fault_of[e.id], Counter())[e.incident_id] += 1
        graph = platform.config.graph(s)
        for fault, incidents in sorted(placed.items()):
            tally.faults += 1
            root, fixes = truth.roots.get(fault), set(SCENARIOS[scenario[fault]].fixes)
            homes = [(n, i) for i, n in incidents.items() if i is not None]
            if not homes:
                tally.misses.append({"fault": fault, "why": "no incident"})
                continue
            incident = s.get(Incident, max(homes)[1])
            began = time.perf_counter()
            report = investigate(
                Scope(s, incident, platform.config.catalogue, graph, platform.clock.now())
            )
            tally.seconds.append(time.perf_counter() - began)
            right = [
                c.service == root and bool(_remediations(platform, c.runbook) & fixes)
                for c in report.causes
            ]
            tally.top1 += bool(right[:1] and right[0])
            tally.top3 += any(right[:3])
            if report.causes:
                alert_ids = [
                    int(i.split(":")[1])
                    for i in report.causes[0].evidence
                    if i.startswith(("alert:", "finding:"))
                ]
                tally.cited += len(alert_ids)
                tally.cited_right += sum(1 for i in alert_ids if fault_of.get(i) == fault)
            if not (right[:1] and right[0]):
                tally.misses.append(
                    {
                        "fault": fault,
                        "scenario": scenario[fault],
                        "root": root,
                        "incident": incident.id,
                        "ranked": [(c.service, c.runbook, c.confidence) for c in report.causes[:3]],
                    }
                )


def copilot_storms(seeds: list[int], progress: Any = None) -> dict[str, Any]:
    """Investigate every fault's incident in the storms of `seeds`, scored together."""
    tally = Tally()
    for k, seed in enumerate(seeds):
        with tempfile.TemporaryDirectory() as home:
            run_storm(plan_storm(seed), Path(home), lambda p, st: _score_storm(p, st, tally))
        if progress is not None:
            progress(k + 1, len(seeds))
    return {"seeds": seeds, **tally.figures()}
