"""Alert storms: several overlapping faults across the estate plus the noise a real estate
makes, with the hidden truth of every alert.

A storm starts 4-6 faults within about ten minutes of each other on roots that do not
depend on one another, chosen so that at least two blast radii share downstream
services (time-only grouping merges them; label-only grouping splits every cascade).
On top come flapping alerts, short transients that resolve by themselves, a host
rebooting inside a declared maintenance window, and a highly-available pair of
Prometheus servers that sends every alert twice. Only scorers read `Storm.truth()`.
"""

# ruff: noqa: S311
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from baton.sandbox.estate import Estate
from baton.sandbox.faults import SCENARIOS
from baton.sandbox.rules import iso
from baton.sandbox.topology import ServiceSpec, downstream_of

STORM_START = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # a Wednesday afternoon
NOISE_NAMES = (
    "HostHighCpuLoad",
    "BlackboxProbeSlow",
    "NodeNetworkReceiveErrs",
    "HostClockSkew",
    "HostSwapUsage",
)
AlertKey = tuple[str, str, str]  # (service, alertname, startsAt)


@dataclass(frozen=True)
class StormFault:
    scenario: str
    root: str
    offset_s: float


@dataclass(frozen=True)
class NoiseAlert:
    """An alert no fault is behind; `spans` are the (start, end) offsets it fires for."""

    kind: str  # flapping | transient | maintenance
    labels: tuple[tuple[str, str], ...]
    spans: tuple[tuple[float, float], ...]
    summary: str


@dataclass(frozen=True)
class MaintenancePlan:
    """Planned work the operators declared beforehand (a weekly window)."""

    host: str
    services: tuple[str, ...]
    start: datetime
    duration_s: float


@dataclass(frozen=True)
class StormPlan:
    seed: int
    start: datetime
    duration_s: float
    faults: tuple[StormFault, ...]
    noise: tuple[NoiseAlert, ...]
    maintenance: MaintenancePlan | None
    senders: int = 2  # an HA pair of Prometheus servers: every alert arrives twice


@dataclass
class StormTruth:
    """For scorers only: which fault (or None, noise) each alert belongs to."""

    alert_fault: dict[AlertKey, str | None] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)  # fault id -> root service
    noise_kind: dict[AlertKey, str] = field(default_factory=dict)
    noise_source: dict[AlertKey, int] = field(default_factory=dict)  # which noise alert


def _reach(specs: list[ServiceSpec], name: str) -> set[str]:
    return {name} | downstream_of(specs, name)


def _choose_faults(
    rng: random.Random, specs: list[ServiceSpec], estate: Estate
) -> tuple[StormFault, ...]:
    options = [(sc, s.name) for sc in SCENARIOS for s in specs if estate.misfit(sc, s.name) is None]
    for _ in range(200):
        want = rng.randint(4, 6)
        picked: list[tuple[str, str]] = []
        for sc, root in rng.sample(options, len(options)):
            if all(
                root not in _reach(specs, other) and other not in _reach(specs, root)
                for _, other in picked
            ):
                picked.append((sc, root))
            if len(picked) == want:
                break
        reaches = [_reach(specs, root) for _, root in picked]
        touching = any(
            reaches[a] & reaches[b] for a in range(len(picked)) for b in range(a + 1, len(picked))
        )
        if len(picked) == want and touching:
            offsets = sorted(rng.uniform(120.0, 720.0) for _ in picked)
            return tuple(
                StormFault(sc, root, round(at))
                for (sc, root), at in zip(picked, offsets, strict=True)
            )
    raise RuntimeError("no storm with touching blast radii found")  # pragma: no cover


def _labels(
    spec: ServiceSpec, alertname: str, severity: str, job: str
) -> tuple[tuple[str, str], ...]:
    labels = {
        "alertname": alertname,
        "service": spec.name,
        "host": spec.host,
        "severity": severity,
        "env": spec.env,
        "instance": f"{spec.host}:9100",
        "job": job,
    }
    if spec.owner:
        labels["team"] = spec.owner
    return tuple(sorted(labels.items()))


def _noise(rng: random.Random, specs: list[ServiceSpec], duration_s: float) -> list[NoiseAlert]:
    out: list[NoiseAlert] = []
    for _ in range(rng.randint(2, 3)):  # flapping: on and off all through the storm
        spec, name = rng.choice(specs), rng.choice(NOISE_NAMES)
        spans, t = [], rng.uniform(0.0, 300.0)
        while t < duration_s - 300.0:
            on = rng.uniform(40.0, 200.0)
            spans.append((t, t + on))
            t += on + rng.uniform(60.0, 240.0)
        out.append(
            NoiseAlert("flapping", _labels(spec, name, "warning", "node"), tuple(spans), name)
        )
    for _ in range(rng.randint(4, 6)):  # transients: fire once, clear by themselves
        spec, name = rng.choice(specs), rng.choice(NOISE_NAMES)
        t = rng.uniform(60.0, duration_s - 600.0)
        spans = ((t, t + rng.uniform(30.0, 180.0)),)
        out.append(NoiseAlert("transient", _labels(spec, name, "warning", "node"), spans, name))
    return out


def _maintenance(
    rng: random.Random, specs: list[ServiceSpec], faults: tuple[StormFault, ...], start: datetime
) -> tuple[MaintenancePlan | None, list[NoiseAlert]]:
    """A host nobody's fault reaches is rebooted inside its weekly window."""
    touched = set().union(*(_reach(specs, f.root) for f in faults))
    hosts = sorted({s.host for s in specs} - {s.host for s in specs if s.name in touched})
    if not hosts:
        return None, []
    host = rng.choice(hosts)
    on_host = [s for s in specs if s.host == host]
    window_start = start + timedelta(minutes=5)
    plan = MaintenancePlan(host, tuple(s.name for s in on_host), window_start, 1800.0)
    down_at = 300.0 + rng.uniform(120.0, 300.0)
    span = ((down_at, down_at + rng.uniform(480.0, 900.0)),)
    alerts = [
        NoiseAlert("maintenance", _labels(s, "ServiceDown", "critical", "blackbox"), span, "down")
        for s in on_host
    ]
    return plan, alerts


def plan_storm(seed: int, start: datetime = STORM_START, duration_s: float = 3000.0) -> StormPlan:
    """A deterministic storm for `seed`."""
    rng = random.Random(f"{seed}:storm")
    estate = Estate(seed=seed, start=start)
    specs = estate.topology()
    faults = _choose_faults(rng, specs, estate)
    noise = _noise(rng, specs, duration_s)
    maintenance, planned = _maintenance(rng, specs, faults, start)
    return StormPlan(seed, start, duration_s, faults, tuple(noise + planned), maintenance)


class Storm:
    """Runs a plan on its own estate and yields what the alert senders post, step by step."""

    def __init__(self, plan: StormPlan, step_seconds: float = 30.0) -> None:
        self.plan = plan
        self.estate = Estate(seed=plan.seed, start=plan.start, step_seconds=step_seconds)
        self._fault_ids: dict[str, str] = {}  # root -> fault id
        self._noise_keys: dict[AlertKey, tuple[str, int]] = {}
        self.notifications = 0

    def batches(self) -> Iterator[tuple[datetime, list[dict[str, object]]]]:
        """(time, alerts posted during the step that ends then) until the storm is over."""
        dt = self.estate.step_seconds
        pending = sorted(self.plan.faults, key=lambda f: f.offset_s)
        steps = int(self.plan.duration_s / dt)
        for k in range(1, steps + 1):
            until = self.plan.start + timedelta(seconds=k * dt)
            while pending and pending[0].offset_s < k * dt:
                fault = pending.pop(0)
                self._fault_ids[fault.root] = self.estate.inject(fault.scenario, fault.root)
            alerts = self.estate.step(until).alerts + self._noise_at(k * dt, dt)
            batch = [dict(a) for a in alerts for _ in range(self.plan.senders)]
            self.notifications += len(batch)
            yield until, batch

    def _noise_at(self, t: float, dt: float) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for source, alert in enumerate(self.plan.noise):
            for begin, end in alert.spans:
                if not begin <= t < end + dt:
                    continue
                labels = dict(alert.labels)
                starts = iso(self.plan.start + timedelta(seconds=begin))
                key = (labels["service"], labels["alertname"], starts)
                self._noise_keys[key] = (alert.kind, source)
                item: dict[str, object] = {
                    "labels": labels,
                    "annotations": {"summary": f"{alert.summary} on {labels['service']}"},
                    "startsAt": starts,
                }
                if t >= end:
                    item["endsAt"] = iso(self.plan.start + timedelta(seconds=end))
                out.append(item)
        return out

    def truth(self) -> StormTruth:
        """For scorers only."""
        truth = StormTruth()
        truth.alert_fault.update(self.estate.alert_causes())
        for key, (kind, source) in self._noise_keys.items():
            truth.alert_fault[key] = None
            truth.noise_kind[key] = kind
            truth.noise_source[key] = source
        truth.roots = {fid: root for root, fid in self._fault_ids.items()}
        return truth
