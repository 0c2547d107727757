"""Running a sandbox alert storm through a Baton and scoring the incidents it opened.

The storm reaches the platform only as Alertmanager-format alerts (plus the maintenance
window its operators declared beforehand); the truth is read only after the run, to
score it. See docs/benchmarks.md for exactly what each figure counts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from baton.correlate.silences import MaintenanceIn, create_window
from baton.correlate.topology import load_catalogue
from baton.harness.demo import estate_services
from baton.harness.replay import replay
from baton.kernel.audit import Actor
from baton.kernel.clock import SimulatedClock
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from baton.sandbox.kube import KubeStorm, plan_kube_storm
from baton.sandbox.rules import iso
from baton.sandbox.scoring import origin_hits, pairwise
from baton.sandbox.storms import Storm, StormPlan
from baton.store.models import Event, Incident

OPERATOR = Actor("storm-ops", "human")

# What an SRE team would configure for this estate: a short hold for new alerts, the
# usual "a service that is down also has errors" inhibition, and flap detection.
STORM_CONFIG: dict[str, Any] = {
    "window_s": 900,
    "transient_hold_s": 120,
    "flap": {"window_s": 1800, "min_firings": 3},
    "impact_matchers": [['severity=~"critical|error"'], ['alertname=~".*Latency.*"']],
    "inhibit_rules": [
        {
            "name": "down-masks-symptoms",
            "source_matchers": ['alertname="ServiceDown"'],
            "target_matchers": ['alertname=~"HighErrorRate|HighLatency"'],
            "equal": ["service"],
        }
    ],
}


@dataclass
class StormResult:
    notifications: int
    alerts: int  # distinct alert episodes (an alert from firing to resolved)
    incidents: int
    truth: list[Any]  # fault id, ("noise", n) for the repeats of noise alert n, or None
    predicted: list[int | None]
    roots: dict[str, str]
    origins: dict[int, str | None]
    suppressed: dict[str, int]


def _declare_maintenance(platform: Platform, plan: StormPlan) -> None:
    """The team's weekly window for the host being rebooted (declared, not peeked)."""
    m = plan.maintenance
    if m is None:
        return
    day = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[m.start.weekday()]
    window = MaintenanceIn(
        name=f"weekly patching of {m.host}",
        matchers=[f'host="{m.host}"'],
        starts_at=m.start - timedelta(weeks=4),
        duration_s=int(m.duration_s),
        rrule=f"FREQ=WEEKLY;BYDAY={day}",
        timezone="Europe/Berlin",
        comment="patch and reboot",
    )
    with platform.db.session() as s:
        create_window(s, window, OPERATOR, platform.clock.now())


def run_storm(
    plan: StormPlan, home: Path, inspect: Callable[[Platform, Storm], Any] | None = None
) -> StormResult:
    """Feed one storm to a fresh platform (SQLite under `home`) and collect the outcome.

    `inspect` looks at the platform once the storm is over, before it is closed (the
    copilot bench investigates the incidents there)."""
    config = home / "correlation.yaml"
    config.write_text(yaml.safe_dump(STORM_CONFIG))
    clock = SimulatedClock(plan.start)
    platform = Platform(Settings(home=home, correlation_file=config), clock).start()
    try:
        storm = Storm(plan)
        platform.config.declare_services(estate_services(storm.estate))
        _declare_maintenance(platform, plan)
        for until, batch in storm.batches():
            clock.set(until)
            if batch:
                platform.drain.ingest_alertmanager(batch)
            platform.scheduler.tick()
        truth = storm.truth()
        if inspect is not None:
            inspect(platform, storm)
        with platform.db.session() as s:
            events = list(s.scalars(select(Event).order_by(Event.id)))
            incidents = list(s.scalars(select(Incident)))
            keys = [(e.labels.get("service", ""), e.name, iso(e.starts_at)) for e in events]
            labels: list[Any] = [
                ("noise", truth.noise_source[k])
                if k in truth.noise_source
                else truth.alert_fault.get(k)
                for k in keys
            ]
            suppressed: dict[str, int] = {}
            for e in events:
                if e.suppressed_by:
                    kind = e.suppressed_by.split(":")[0]
                    suppressed[kind] = suppressed.get(kind, 0) + 1
            return StormResult(
                notifications=storm.notifications,
                alerts=len(events),
                incidents=len(incidents),
                truth=labels,
                predicted=[e.incident_id for e in events],
                roots=truth.roots,
                origins={i.id: i.origin_service for i in incidents},
                suppressed=suppressed,
            )
    finally:
        platform.close()


def score(results: list[StormResult]) -> dict[str, Any]:
    """Figures over several storms: alerts and pairs are pooled, not averaged."""
    truth: list[Any] = []
    predicted: list[Any] = []
    neutral: set[Any] = set()
    hits = faults = 0
    for n, r in enumerate(results):
        truth += [None if t is None else (n, t) for t in r.truth]
        neutral |= {(n, t) for t in r.truth if isinstance(t, tuple)}
        predicted += [None if p is None else (n, p) for p in r.predicted]
        h, f = origin_hits(
            [(n, t) if isinstance(t, str) else None for t in r.truth],
            [None if p is None else (n, p) for p in r.predicted],
            {(n, k): v for k, v in r.roots.items()},
            {(n, k): v for k, v in r.origins.items()},
        )
        hits, faults = hits + h, faults + f
    pairs = pairwise(truth, predicted, neutral)
    notifications = sum(r.notifications for r in results)
    alerts = sum(r.alerts for r in results)
    incidents = sum(r.incidents for r in results)
    suppressed: dict[str, int] = {}
    for r in results:
        for k, v in r.suppressed.items():
            suppressed[k] = suppressed.get(k, 0) + v
    return {
        "storms": len(results),
        "notifications": notifications,
        "alerts": alerts,
        "incidents": incidents,
        "faults": faults,
        "noise_reduction": round(1 - incidents / notifications, 4) if notifications else None,
        "noise_reduction_distinct": round(1 - incidents / alerts, 4) if alerts else None,
        "pairwise_precision": pairs.precision,
        "pairwise_recall": pairs.recall,
        "pairwise_f1": pairs.f1,
        "origin_accuracy": round(hits / faults, 4) if faults else None,
        "suppressed": suppressed,
    }


# What a team running kube-prometheus would configure: a short hold, flap detection, and
# errors or worse as the sign of impact. Nothing in it names the estate's services.
KUBE_CONFIG: dict[str, Any] = {
    "window_s": 900,
    "transient_hold_s": 120,
    "flap": {"window_s": 1800, "min_firings": 3},
    "impact_matchers": [['severity=~"critical|error"']],
}


def run_kube_storm(
    storm: KubeStorm,
    config: dict[str, Any] | None = None,
    inspect: Callable[[Platform], Any] | None = None,
) -> StormResult:
    """Replay one Kubernetes storm (its stream, its catalogue) and label what came out;
    `inspect` looks at the platform before it is closed (the copilot bench)."""
    services = load_catalogue(storm.estate.catalogue())
    out = replay(list(storm.stream()), services, config or KUBE_CONFIG, inspect=inspect)
    truth = storm.truth()
    labels = [truth.get((tuple(sorted(a.labels.items())), a.starts_at)) for a in out.alerts]
    suppressed: dict[str, int] = {}
    for a in out.alerts:
        if a.suppressed_by:
            kind = a.suppressed_by.split(":")[0]
            suppressed[kind] = suppressed.get(kind, 0) + 1
    return StormResult(
        notifications=out.notifications,
        alerts=len(out.alerts),
        incidents=len(out.incidents),
        truth=labels,
        predicted=[a.incident_id for a in out.alerts],
        roots=storm.roots,
        origins={i["id"]: i["origin"] for i in out.incidents},
        suppressed=suppressed,
    )


def mixed_share(results: list[StormResult]) -> float | None:
    """Share of incidents holding alerts of two or more faults (noise not counted)."""
    mixed = total = 0
    for r in results:
        faults: dict[int, set[Any]] = {}
        for t, p in zip(r.truth, r.predicted, strict=True):
            if p is not None:
                faults.setdefault(p, set())
                if isinstance(t, str):
                    faults[p].add(t)
        total += len(faults)
        mixed += sum(1 for f in faults.values() if len(f) > 1)
    return round(mixed / total, 4) if total else None


def correlate_kube(seeds: list[int], progress: Any = None) -> dict[str, Any]:
    """Kubernetes storms for `seeds`, scored together."""
    results = []
    for k, seed in enumerate(seeds):
        results.append(run_kube_storm(plan_kube_storm(seed)))
        if progress is not None:
            progress(k + 1, len(seeds))
    return {"seeds": seeds, **score(results), "mixed_fault_incidents": mixed_share(results)}


def correlate_storms(seed: int, storms: int = 3, progress: Any = None) -> dict[str, Any]:
    """Run `storms` storms with seeds seed, seed+1, ... and score them together."""
    from baton.sandbox.storms import plan_storm

    results = []
    for k in range(storms):
        with tempfile.TemporaryDirectory() as home:
            results.append(run_storm(plan_storm(seed + k), Path(home)))
        if progress is not None:
            progress(k + 1, storms)
    return {"seed": seed, **score(results), "mixed_fault_incidents": mixed_share(results)}
