"""Fault scenarios: how each kind of trouble changes a service, and the hidden truth.

A scenario only touches its root service's state; everything else (downstream errors,
alerts, tickets) follows from the model, the way it would in a real estate.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from baton.sandbox.metrics import NO_EFFECT, Effect, Profile, ServiceState
from baton.sandbox.topology import ServiceSpec


@dataclass(frozen=True)
class GroundTruth:
    """What really happened, for scorers only; never part of any signal."""

    fault_id: str
    scenario: str
    root_service: str
    started_at: datetime
    affected: tuple[str, ...]
    fixed_at: datetime | None = None
    fixed_by: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "fault_id": self.fault_id,
            "scenario": self.scenario,
            "root_service": self.root_service,
            "started_at": self.started_at,
            "affected": list(self.affected),
            "fixed_at": self.fixed_at,
            "fixed_by": self.fixed_by,
        }


@dataclass
class Fault:
    """A running (or finished) fault; the estate's private bookkeeping."""

    fault_id: str
    scenario: str
    root: str
    started_at: datetime
    fix_targets: frozenset[str]
    reach: frozenset[str]
    params: dict[str, float] = field(default_factory=dict)
    note: str = ""
    affected: list[str] = field(default_factory=list)
    fixed_at: datetime | None = None
    fixed_by: str | None = None

    def truth(self) -> GroundTruth:
        return GroundTruth(
            self.fault_id,
            self.scenario,
            self.root,
            self.started_at,
            tuple(self.affected),
            self.fixed_at,
            self.fixed_by,
        )


# start(fault, state, profile, rng, now, load) -> events worth a log line
StartFn = Callable[[Fault, ServiceState, Profile, random.Random, datetime, float], list[str]]
# advance(fault, state, profile, now, dt) -> events; moves the fault along one step
AdvanceFn = Callable[[Fault, ServiceState, Profile, datetime, float], list[str]]
# effect(fault, state, profile) -> what the fault does to the service right now (pure)
EffectFn = Callable[[Fault, ServiceState, Profile], Effect]
# healed(fault, root state) -> did the fixing action remove the cause (not just touch it)?
HealedFn = Callable[[Fault, ServiceState], bool]


def _no_start(
    f: Fault, st: ServiceState, p: Profile, rng: random.Random, now: datetime, load: float
) -> list[str]:
    return []


def _no_advance(f: Fault, st: ServiceState, p: Profile, now: datetime, dt: float) -> list[str]:
    return []


def _no_effect(f: Fault, st: ServiceState, p: Profile) -> Effect:
    return NO_EFFECT


def _always(f: Fault, st: ServiceState) -> bool:
    return True


@dataclass(frozen=True)
class Scenario:
    """A kind of trouble, where it can happen and what really fixes it."""

    name: str
    description: str
    default_root: str
    fixes: tuple[str, ...]
    kinds: tuple[str, ...]
    needs_metric: str | None = None
    start: StartFn = field(default=_no_start, compare=False, repr=False)
    advance: AdvanceFn = field(default=_no_advance, compare=False, repr=False)
    effect: EffectFn = field(default=_no_effect, compare=False, repr=False)
    healed: HealedFn = field(default=_always, compare=False, repr=False)

    def misfit(self, spec: ServiceSpec, metrics: tuple[str, ...]) -> str | None:
        """Why this scenario cannot happen on `spec`, or None when it can."""
        if spec.kind not in self.kinds:
            return (
                f"scenario {self.name!r} does not apply to service {spec.name!r} "
                f"(kind {spec.kind!r}); it applies to kinds: {', '.join(self.kinds)}"
            )
        if self.needs_metric and self.needs_metric not in metrics:
            return (
                f"scenario {self.name!r} does not apply to service {spec.name!r}: "
                f"it has no {self.needs_metric}"
            )
        return None


# --- disk_full: something writes until the volume is full, then writes fail -------------


def _disk_start(
    f: Fault, st: ServiceState, p: Profile, rng: random.Random, now: datetime, load: float
) -> list[str]:
    st.runaway_writer = True
    f.params["rate"] = max(0.5, 100.0 - st.disk_pct) / rng.uniform(600.0, 1080.0)
    return []


def _disk_advance(f: Fault, st: ServiceState, p: Profile, now: datetime, dt: float) -> list[str]:
    if st.runaway_writer:
        st.disk_pct = min(100.0, st.disk_pct + f.params["rate"] * dt)
    return []


def _disk_effect(f: Fault, st: ServiceState, p: Profile) -> Effect:
    if st.disk_pct >= 99.5:
        return Effect(err_add=0.45, lat_add=0.5 * p.lat_base, log="enospc")
    if st.disk_pct >= 88.0:
        return Effect(log="disk_warn")
    return NO_EFFECT


# --- memory_leak: heap grows, GC thrashes, the process is OOM-killed and comes back -----

OOM_RESTART_SECONDS = 60.0


def _leak_start(
    f: Fault, st: ServiceState, p: Profile, rng: random.Random, now: datetime, load: float
) -> list[str]:
    f.params["rate"] = (98.0 - p.mem_base) / rng.uniform(1200.0, 2400.0)
    return []


def _leak_advance(f: Fault, st: ServiceState, p: Profile, now: datetime, dt: float) -> list[str]:
    if st.down_left > 0.0:
        return []
    st.memory_pct += f.params["rate"] * dt
    if st.memory_pct >= 98.0:
        st.memory_pct = p.mem_base
        st.down_left = OOM_RESTART_SECONDS
        st.restarts += 1
        st.started_at = now
        return ["oom"]
    return []


def _leak_effect(f: Fault, st: ServiceState, p: Profile) -> Effect:
    m = st.memory_pct
    if m <= 80.0:
        return NO_EFFECT
    lat = p.lat_base * 20.0 * ((m - 80.0) / 20.0) ** 2
    err = 0.05 + (m - 92.0) * 0.02 if m > 92.0 else 0.0
    return Effect(err_add=err, lat_add=lat, log="gc" if m > 85.0 else None)


# --- bad_deploy: a new version goes out and half-works ----------------------------------


def bump_version(version: str) -> str:
    """v2.14.1 -> v2.15.0 (a feature release, the kind that breaks things)."""
    parts = version.lstrip("v").split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return version + "-1"
    return f"v{major}.{minor + 1}.0"


def _deploy_start(
    f: Fault, st: ServiceState, p: Profile, rng: random.Random, now: datetime, load: float
) -> list[str]:
    st.previous_versions.append(st.version)
    st.version = bump_version(st.version)
    f.note = st.version
    f.params["err"] = rng.uniform(0.15, 0.35)
    return ["deploy"]


def _deploy_healed(f: Fault, st: ServiceState) -> bool:
    return st.version != f.note


def _deploy_effect(f: Fault, st: ServiceState, p: Profile) -> Effect:
    if st.version != f.note:
        return NO_EFFECT
    return Effect(err_add=f.params["err"], lat_add=0.3 * p.lat_base, log="regression")


# --- db_connection_exhaustion: clients leak connections until the pool is full ----------


def _conn_start(
    f: Fault, st: ServiceState, p: Profile, rng: random.Random, now: datetime, load: float
) -> list[str]:
    f.params["conn"] = (p.conn_base or 30.0) * (0.6 + 0.4 * load)
    f.params["ramp"] = rng.uniform(0.8, 1.6)  # pool percent per second
    f.params["wait_ms"] = rng.uniform(3000.0, 5000.0)
    return []


def _conn_advance(f: Fault, st: ServiceState, p: Profile, now: datetime, dt: float) -> list[str]:
    f.params["conn"] = min(100.0, f.params["conn"] + f.params["ramp"] * dt)
    return []


def _conn_effect(f: Fault, st: ServiceState, p: Profile) -> Effect:
    conn = f.params["conn"]
    if conn >= 99.0:
        return Effect(
            err_add=0.35, lat_add=f.params["wait_ms"], conn_floor=100.0, log="too_many_clients"
        )
    return Effect(conn_floor=conn)


# --- certificate_expiry: nobody renewed it; the model fails TLS once days_left <= 0 -----


def _cert_start(
    f: Fault, st: ServiceState, p: Profile, rng: random.Random, now: datetime, load: float
) -> list[str]:
    st.cert_expires_at = now
    return []


# --- upstream_outage: the external provider in use stops answering ---------------------


def _outage_start(
    f: Fault, st: ServiceState, p: Profile, rng: random.Random, now: datetime, load: float
) -> list[str]:
    f.note = st.provider or ""
    return []


def _outage_healed(f: Fault, st: ServiceState) -> bool:
    return (st.provider or "") != f.note  # failing back onto the broken provider heals nothing


def _outage_effect(f: Fault, st: ServiceState, p: Profile) -> Effect:
    if (st.provider or "") != f.note:
        return NO_EFFECT
    return Effect(down=True)


# --- traffic_surge: demand ramps past what the replicas can serve ----------------------


def _surge_start(
    f: Fault, st: ServiceState, p: Profile, rng: random.Random, now: datetime, load: float
) -> list[str]:
    target_util = rng.uniform(1.05, 1.25)
    capacity = st.replicas / st.base_replicas
    f.params["target"] = max(1.5, target_util * 100.0 * capacity / p.cpu_base - load)
    f.params["ramp_s"] = rng.uniform(240.0, 420.0)
    f.params["extra"] = 0.0
    f.params["replicas"] = st.replicas
    return []


def _surge_healed(f: Fault, st: ServiceState) -> bool:
    return st.replicas > f.params["replicas"]


def _surge_advance(f: Fault, st: ServiceState, p: Profile, now: datetime, dt: float) -> list[str]:
    target = f.params["target"]
    f.params["extra"] = min(target, f.params["extra"] + target * dt / f.params["ramp_s"])
    return []


def _surge_effect(f: Fault, st: ServiceState, p: Profile) -> Effect:
    extra = f.params["extra"]
    busy = extra >= 0.6 * f.params["target"]
    return Effect(extra_demand=extra, log="saturation" if busy else None)


_OWN_KINDS = (
    "load_balancer",
    "web",
    "api",
    "auth",
    "directory",
    "database",
    "cache",
    "queue",
    "worker",
    "dns",
    "vpn",
    "storage",
    "email",
    "monitoring",
    "search",
    "reporting",
    "backup",
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "disk_full",
            "A runaway writer fills the data volume until writes fail.",
            "file-storage",
            ("clear_disk",),
            _OWN_KINDS,
            None,
            _disk_start,
            _disk_advance,
            _disk_effect,
        ),
        Scenario(
            "memory_leak",
            "Heap grows over 20-40 minutes; GC pauses slow requests, then OOM kills flap it.",
            "orders-api",
            ("restart",),
            (
                "api",
                "web",
                "auth",
                "worker",
                "search",
                "reporting",
                "directory",
                "email",
                "monitoring",
                "queue",
                "cache",
            ),
            None,
            _leak_start,
            _leak_advance,
            _leak_effect,
        ),
        Scenario(
            "bad_deploy",
            "A new release goes out and a share of requests fail with errors.",
            "checkout-api",
            ("rollback",),
            ("api", "web", "auth", "worker", "reporting"),
            None,
            _deploy_start,
            _no_advance,
            _deploy_effect,
            _deploy_healed,
        ),
        Scenario(
            "db_connection_exhaustion",
            "Clients leak connections until the database refuses new ones; queries time out.",
            "orders-db",
            ("recycle_connections",),
            ("database",),
            "db_connections_pct",
            _conn_start,
            _conn_advance,
            _conn_effect,
        ),
        Scenario(
            "certificate_expiry",
            "A TLS certificate lapses; clients fail the handshake.",
            "auth-sso",
            ("renew_certificate",),
            ("load_balancer", "web", "api", "auth", "directory", "email", "vpn"),
            "cert_days_left",
            _cert_start,
            _no_advance,
            _no_effect,
        ),
        Scenario(
            "upstream_outage",
            "The external payment provider stops answering; payments fail until failover.",
            "payment-provider",
            ("failover",),
            ("external",),
            None,
            _outage_start,
            _no_advance,
            _outage_effect,
            _outage_healed,
        ),
        Scenario(
            "traffic_surge",
            "Demand ramps far past capacity; CPU saturates and latency climbs.",
            "catalog-api",
            ("scale_out",),
            ("api", "web", "load_balancer", "search", "auth"),
            None,
            _surge_start,
            _surge_advance,
            _surge_effect,
            _surge_healed,
        ),
    )
}
