"""The metric model: what each service's gauges read, given load, state and trouble.

Everything an alert rule, a runbook verify check or a user sees is derived from one
noise-free `Levels` computation, so they always agree; noise is added only to the
samples that are emitted.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import NormalDist

from baton.sandbox.topology import PROVIDER_CLIENTS, PROVIDERS, TLS_SERVICES, ServiceSpec


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One gauge reading, as a Prometheus scrape would record it."""

    ts: datetime
    service: str
    host: str
    metric: str
    value: float


BASE_METRICS: tuple[str, ...] = (
    "cpu_pct",
    "memory_pct",
    "disk_pct",
    "latency_ms",
    "error_rate",
    "up",
)

# kind: (cpu %, memory %, disk %, p99 latency ms, error rate, replicas) baseline ranges.
_KIND_BASE: dict[str, tuple[tuple[float, float], ...]] = {
    "dns": ((8, 18), (20, 35), (20, 35), (2, 6), (0.0005, 0.002), (2, 2)),
    "monitoring": ((15, 30), (40, 60), (40, 60), (30, 60), (0.001, 0.003), (1, 1)),
    "directory": ((10, 25), (35, 55), (25, 45), (6, 15), (0.001, 0.003), (2, 2)),
    "database": ((20, 40), (50, 65), (40, 65), (4, 12), (0.0005, 0.002), (1, 1)),
    "cache": ((8, 20), (40, 60), (15, 30), (1, 3), (0.0005, 0.002), (1, 1)),
    "queue": ((10, 25), (35, 55), (25, 45), (3, 8), (0.0005, 0.002), (1, 1)),
    "search": ((20, 40), (45, 62), (35, 60), (25, 60), (0.001, 0.004), (2, 2)),
    "storage": ((10, 25), (30, 50), (45, 68), (15, 40), (0.001, 0.003), (1, 1)),
    "external": ((5, 10), (20, 30), (10, 20), (250, 400), (0.002, 0.006), (1, 1)),
    "auth": ((15, 35), (40, 60), (20, 35), (60, 120), (0.002, 0.006), (2, 2)),
    "email": ((10, 25), (35, 55), (35, 60), (150, 300), (0.002, 0.005), (1, 1)),
    "vpn": ((15, 35), (30, 50), (15, 30), (25, 50), (0.001, 0.004), (1, 1)),
    "api": ((25, 40), (40, 60), (20, 40), (80, 180), (0.002, 0.006), (2, 3)),
    "web": ((15, 35), (35, 55), (20, 40), (150, 300), (0.002, 0.006), (2, 2)),
    "load_balancer": ((10, 25), (20, 35), (15, 25), (160, 320), (0.001, 0.004), (2, 2)),
    "worker": ((20, 40), (40, 60), (20, 40), (200, 500), (0.002, 0.006), (2, 2)),
    "reporting": ((10, 30), (40, 60), (30, 55), (400, 900), (0.002, 0.005), (1, 1)),
    "backup": ((5, 15), (30, 50), (50, 68), (500, 1500), (0.001, 0.003), (1, 1)),
}
_DEFAULT_BASE = _KIND_BASE["api"]

SYMPTOM_PCT = 85.0  # a resource this full is a symptom even before anything fails


@dataclass(frozen=True)
class Profile:
    """A service's healthy baseline, drawn once from the seed."""

    cpu_base: float
    mem_base: float
    disk_base: float
    lat_base: float
    err_base: float
    replicas: int
    latency_threshold: float
    conn_base: float | None
    queue_base: float | None
    has_cert: bool
    nightly: bool

    def metric_names(self) -> tuple[str, ...]:
        names = BASE_METRICS
        if self.conn_base is not None:
            names = (*names, "db_connections_pct")
        if self.has_cert:
            names = (*names, "cert_days_left")
        if self.queue_base is not None:
            names = (*names, "queue_depth")
        return names


def make_profile(spec: ServiceSpec, rng: random.Random) -> Profile:
    """Draw a baseline comfortably below every alert threshold."""
    cpu, mem, disk, lat, err, reps = _KIND_BASE.get(spec.kind, _DEFAULT_BASE)
    lat_base = rng.uniform(*lat)
    return Profile(
        cpu_base=rng.uniform(*cpu),
        mem_base=rng.uniform(*mem),
        disk_base=rng.uniform(*disk),
        lat_base=lat_base,
        err_base=rng.uniform(*err),
        replicas=rng.randint(int(reps[0]), int(reps[1])),
        latency_threshold=round(lat_base * 3 + 250, -1),
        conn_base=rng.uniform(20, 40) if spec.kind == "database" else None,
        queue_base=rng.uniform(50, 400) if spec.kind == "queue" else None,
        has_cert=spec.name in TLS_SERVICES,
        nightly=spec.kind == "backup",
    )


@dataclass
class ServiceState:
    """What an operator could inspect or change on a service."""

    version: str
    replicas: int
    base_replicas: int
    memory_pct: float
    disk_pct: float
    cert_expires_at: datetime | None
    provider: str | None
    previous_versions: list[str] = field(default_factory=list)
    down_left: float = 0.0  # seconds until a crashed process is back
    restarts: int = 0
    started_at: datetime | None = None
    queue_backlog: float = 0.0
    runaway_writer: bool = False  # something is filling the disk


def initial_state(
    spec: ServiceSpec, prof: Profile, rng: random.Random, now: datetime
) -> ServiceState:
    """A plausible, healthy starting state (versions, certificates, providers)."""
    version = f"v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
    cert = now + timedelta(days=rng.uniform(60, 330)) if prof.has_cert else None
    return ServiceState(
        version=version,
        replicas=prof.replicas,
        base_replicas=prof.replicas,
        memory_pct=prof.mem_base,
        disk_pct=prof.disk_base,
        cert_expires_at=cert,
        provider=_first_provider(spec.name),
        started_at=now - timedelta(days=rng.uniform(1, 40)),
    )


def _first_provider(name: str) -> str | None:
    """The primary provider, for an external service with a secondary and its clients."""
    for ext, clients in PROVIDER_CLIENTS.items():
        if name == ext or name in clients:
            return PROVIDERS[ext][0]
    return None


@dataclass(frozen=True, slots=True)
class Effect:
    """What active trouble does to a service during one step (summed over faults)."""

    err_add: float = 0.0
    lat_add: float = 0.0
    extra_demand: float = 0.0
    down: bool = False
    conn_floor: float = 0.0
    log: str | None = None  # which family of error lines the service writes


NO_EFFECT = Effect()


def combine(effects: list[Effect]) -> Effect:
    if len(effects) == 1:
        return effects[0]
    return Effect(
        err_add=sum(e.err_add for e in effects),
        lat_add=sum(e.lat_add for e in effects),
        extra_demand=sum(e.extra_demand for e in effects),
        down=any(e.down for e in effects),
        conn_floor=max(e.conn_floor for e in effects),
        log=next((e.log for e in effects if e.log), None),
    )


def business_load(now: datetime) -> float:
    """Traffic as a share of the weekday peak: busy 9-17 with a lunch dip, quiet at night."""
    h = now.hour + now.minute / 60.0
    shape = math.exp(-((h - 10.5) ** 2) / 6.0) + 0.9 * math.exp(-((h - 15.0) ** 2) / 6.0)
    peak = 0.35 + 0.65 * min(1.0, shape)
    return peak * 0.6 if now.weekday() >= 5 else peak


def _latency_mult(util: float) -> float:
    u = min(util, 0.97)
    r = u / (1.0 - u)
    return min(15.0, 1.0 + 0.3 * r**1.5)


class Levels:
    """Noise-free metric levels of one service at one instant."""

    __slots__ = (
        "cause",
        "cert",
        "conn",
        "cpu",
        "disk",
        "down",
        "err",
        "err_excess",
        "lat",
        "lat_excess",
        "mem",
        "queue",
        "tls_broken",
        "util",
    )

    def __init__(self) -> None:
        self.cpu = self.mem = self.disk = self.lat = self.err = 0.0
        self.util = self.err_excess = self.lat_excess = 0.0
        self.conn: float | None = None
        self.cert: float | None = None
        self.queue: float | None = None
        self.down = False
        self.tls_broken = False
        self.cause: str | None = None

    def value(self, metric: str) -> float:
        match metric:
            case "cpu_pct":
                return self.cpu
            case "memory_pct":
                return self.mem
            case "disk_pct":
                return self.disk
            case "latency_ms":
                return self.lat
            case "error_rate":
                return self.err
            case "up":
                return 0.0 if self.down else 1.0
            case "db_connections_pct" if self.conn is not None:
                return self.conn
            case "cert_days_left" if self.cert is not None:
                return self.cert
            case "queue_depth" if self.queue is not None:
                return self.queue
        raise KeyError(metric)

    @property
    def symptomatic(self) -> bool:
        """Would anyone looking at this service say something is wrong?"""
        return (
            self.down
            or self.err_excess > 0.02
            or self.lat_excess > 100.0
            or self.cpu > SYMPTOM_PCT
            or self.mem > SYMPTOM_PCT
            or self.disk > SYMPTOM_PCT
            or (self.conn is not None and self.conn > SYMPTOM_PCT)
            or (self.cert is not None and self.cert <= 14.0)
            or (self.queue is not None and self.queue > 2500.0)
        )


def compute_levels(
    p: Profile,
    st: ServiceState,
    eff: Effect,
    err_in: float,
    lat_in: float,
    load: float,
    now: datetime,
) -> Levels:
    """The model itself: load drives CPU and latency, state and trouble add the rest."""
    lv = Levels()
    base_demand = (1.35 - load) if p.nightly else load
    util = p.cpu_base / 100.0 * (base_demand + eff.extra_demand) * st.base_replicas / st.replicas
    lv.util = util
    lv.cpu = min(100.0, util * 100.0)
    lv.mem = min(100.0, st.memory_pct + 3.0 * load)
    lv.disk = min(100.0, st.disk_pct)
    healthy_lat = p.lat_base * _latency_mult(p.cpu_base / 100.0 * base_demand)
    if eff.extra_demand or st.replicas != st.base_replicas:
        healthy_lat_now = p.lat_base * _latency_mult(util)
    else:
        healthy_lat_now = healthy_lat
    lat = healthy_lat_now + eff.lat_add + lat_in
    err = p.err_base + eff.err_add + err_in
    if util > 0.95:
        err += min(0.5, (util - 0.95) * 2.0)
    if p.has_cert and st.cert_expires_at is not None:
        lv.cert = (st.cert_expires_at - now).total_seconds() / 86400.0
        if lv.cert <= 0.0:
            lv.tls_broken = True
            err += 0.85
    if p.conn_base is not None:
        lv.conn = max(p.conn_base * (0.6 + 0.4 * load), min(100.0, eff.conn_floor))
    if p.queue_base is not None:
        lv.queue = p.queue_base * (0.3 + 0.7 * load) + st.queue_backlog
    lv.down = eff.down or st.down_left > 0.0
    if lv.down:
        err = 1.0
        lat = p.lat_base
    lv.err = min(1.0, err)
    lv.lat = lat
    lv.err_excess = max(0.0, lv.err - p.err_base)
    lv.lat_excess = max(0.0, lat - healthy_lat)
    if lv.down:
        lv.cause = "down"
    elif lv.tls_broken:
        lv.cause = "tls"
    elif lv.err_excess > 0.02:
        lv.cause = "error"
    elif lv.lat_excess > 100.0:
        lv.cause = "slow"
    return lv


_NORMAL = tuple(NormalDist().inv_cdf((k + 0.5) / 4096) for k in range(4096))


class Noise:
    """Measurement noise: standard normal draws from a quantised table (fast, seeded)."""

    __slots__ = ("_rand",)

    def __init__(self, rng: random.Random) -> None:
        self._rand = rng.random

    def __call__(self, sigma: float) -> float:
        return _NORMAL[int(self._rand() * 4096.0)] * sigma


def noisy_values(lv: Levels, g: Noise) -> dict[str, float]:
    """The readings a scrape would return: levels plus measurement noise."""
    vals = {
        "cpu_pct": min(100.0, max(0.0, lv.cpu + g(2.5))),
        "memory_pct": min(100.0, max(0.0, lv.mem + g(0.8))),
        "disk_pct": min(100.0, max(0.0, lv.disk + g(0.15))),
        "latency_ms": max(0.1, lv.lat * (1.0 + g(0.06))),
        "error_rate": min(1.0, max(0.0, lv.err + g(0.0015 + 0.05 * lv.err))),
        "up": 0.0 if lv.down else 1.0,
    }
    if lv.conn is not None:
        vals["db_connections_pct"] = min(100.0, max(0.0, lv.conn + g(2.0)))
    if lv.cert is not None:
        vals["cert_days_left"] = lv.cert
    if lv.queue is not None:
        q = lv.queue
        vals["queue_depth"] = float(max(0, round(q + g(0.05 * q + 5.0))))
    return vals
