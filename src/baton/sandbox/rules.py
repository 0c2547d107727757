"""Threshold alert rules, evaluated the way Prometheus does and sent the way it sends.

A condition must hold for `for_steps` evaluations before the alert fires (startsAt is
when it first held). A firing alert is re-sent every evaluation with the same labels and
startsAt; when it stops holding it is sent once more with endsAt, so the receiver sees it
resolve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from baton.sandbox.metrics import Profile
from baton.sandbox.topology import ServiceSpec

PROMETHEUS_URL = "http://prometheus.example.internal:9090"


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule; a None threshold means the service's own (latency) threshold."""

    alertname: str
    metric: str
    op: str  # ">" or "<"
    threshold: float | None
    for_steps: int
    severity: str
    summary: str
    description: str


RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "ServiceDown",
        "up",
        "<",
        1.0,
        1,
        "critical",
        "{service} is down",
        "{service} on {host} is not answering its health check ({instance}); up = {value}.",
    ),
    AlertRule(
        "HighErrorRate",
        "error_rate",
        ">",
        0.05,
        2,
        "critical",
        "High error rate on {service}",
        "{value} of requests to {service} on {host} are failing (threshold {threshold}).",
    ),
    AlertRule(
        "HighLatency",
        "latency_ms",
        ">",
        None,
        2,
        "warning",
        "High p99 latency on {service}",
        "p99 latency of {service} on {host} is {value} (threshold {threshold}).",
    ),
    AlertRule(
        "HighCPU",
        "cpu_pct",
        ">",
        85.0,
        2,
        "warning",
        "High CPU on {service}",
        "CPU usage of {service} on {host} is {value} (threshold {threshold}).",
    ),
    AlertRule(
        "HighMemoryUsage",
        "memory_pct",
        ">",
        90.0,
        2,
        "warning",
        "High memory usage on {service}",
        "Memory usage of {service} on {host} is {value} (threshold {threshold}).",
    ),
    AlertRule(
        "DiskAlmostFull",
        "disk_pct",
        ">",
        90.0,
        2,
        "warning",
        "Disk almost full on {host}",
        "Data volume of {service} on {host} is {value} full (threshold {threshold}).",
    ),
    AlertRule(
        "DBConnectionsExhausted",
        "db_connections_pct",
        ">",
        90.0,
        2,
        "critical",
        "Database connections nearly exhausted on {service}",
        "{service} on {host} uses {value} of max_connections (threshold {threshold}).",
    ),
    AlertRule(
        "CertificateExpiringSoon",
        "cert_days_left",
        "<",
        14.0,
        2,
        "warning",
        "TLS certificate of {service} expires soon",
        "The certificate served by {service} on {host} expires in {value} (threshold {threshold}).",
    ),
    AlertRule(
        "QueueBacklog",
        "queue_depth",
        ">",
        5000.0,
        2,
        "warning",
        "Queue backlog on {service}",
        "{value} are waiting in {service} on {host} (threshold {threshold}).",
    ),
)

ALERT_NAMES: tuple[str, ...] = tuple(r.alertname for r in RULES)

_PORTS = {
    "database": 9187,
    "cache": 9121,
    "queue": 15692,
    "load_balancer": 9113,
    "dns": 9153,
    "directory": 9330,
    "external": 443,
    "vpn": 9176,
    "email": 9154,
}


def _fmt(metric: str, value: float) -> str:
    match metric:
        case "error_rate":
            return f"{value:.1%}"
        case "latency_ms":
            return f"{value:.0f} ms"
        case "cert_days_left":
            return f"{value:.1f} days"
        case "queue_depth":
            return f"{value:.0f} messages"
        case "up":
            return f"{value:.0f}"
        case _:
            return f"{value:.1f}%"


def iso(ts: datetime) -> str:
    """RFC 3339 in UTC with a Z, as Prometheus writes it."""
    return ts.isoformat().replace("+00:00", "Z")


class _Bound:
    """A rule bound to one service: fixed labels, threshold and link, built once."""

    __slots__ = ("above", "desc_kw", "generator_url", "labels", "rule", "threshold")

    def __init__(self, rule: AlertRule, spec: ServiceSpec, prof: Profile) -> None:
        self.rule = rule
        self.threshold = rule.threshold if rule.threshold is not None else prof.latency_threshold
        self.above = rule.op == ">"
        instance = f"{spec.host}:{_PORTS.get(spec.kind, 9100)}"
        labels = {
            "alertname": rule.alertname,
            "service": spec.name,
            "host": spec.host,
            "severity": rule.severity,
            "env": spec.env,
            "instance": instance,
        }
        if spec.owner:
            labels["team"] = spec.owner
        self.labels = labels
        self.desc_kw = {
            "service": spec.name,
            "host": spec.host,
            "instance": instance,
            "threshold": _fmt(rule.metric, self.threshold),
        }
        expr = f'{rule.metric}{{service="{spec.name}"}} {rule.op} {self.threshold:g}'
        self.generator_url = f"{PROMETHEUS_URL}/graph?g0.expr={quote(expr)}&g0.tab=1"

    def alert(self, value: float, starts: str, ends: str | None) -> dict[str, object]:
        kw = {**self.desc_kw, "value": _fmt(self.rule.metric, value)}
        out: dict[str, object] = {
            "labels": dict(self.labels),
            "annotations": {
                "summary": self.rule.summary.format(**kw),
                "description": self.rule.description.format(**kw),
            },
            "startsAt": starts,
            "generatorURL": self.generator_url,
        }
        if ends is not None:
            out["endsAt"] = ends
        return out


class AlertEvaluator:
    """Holds pending/firing state per (service, rule) and turns readings into alerts."""

    def __init__(self, specs: list[ServiceSpec], profiles: list[Profile]) -> None:
        self._bound: list[list[tuple[str, _Bound]]] = []
        for spec, prof in zip(specs, profiles, strict=True):
            names = set(prof.metric_names())
            self._bound.append(
                [(r.metric, _Bound(r, spec, prof)) for r in RULES if r.metric in names]
            )
        self._state: dict[tuple[int, int], _Track] = {}  # (service index, rule position)

    def evaluate(
        self, idx: int, values: dict[str, float], now: datetime, out: list[dict[str, object]]
    ) -> None:
        """Evaluate one service's rules on this step's readings; append alerts to send."""
        state = self._state
        now_iso: str | None = None
        for pos, (metric, b) in enumerate(self._bound[idx]):
            v = values[metric]
            holds = v > b.threshold if b.above else v < b.threshold
            key = (idx, pos)
            cur = state.get(key)
            if holds:
                if cur is None:
                    now_iso = now_iso or iso(now)
                    cur = state[key] = _Track(now_iso)
                cur.held += 1
                if cur.firing or cur.held >= b.rule.for_steps:
                    cur.firing = True
                    out.append(b.alert(v, cur.active_at, None))
            elif cur is not None:
                if cur.firing:
                    now_iso = now_iso or iso(now)
                    out.append(b.alert(v, cur.active_at, now_iso))
                del state[key]

    def firing(self) -> list[tuple[int, str]]:
        """(service index, alertname) of every alert currently firing."""
        return sorted(
            (idx, self._bound[idx][pos][1].rule.alertname)
            for (idx, pos), cur in self._state.items()
            if cur.firing
        )


class _Track:
    """Pending/firing bookkeeping of one rule on one service."""

    __slots__ = ("active_at", "firing", "held")

    def __init__(self, active_at: str) -> None:
        self.active_at = active_at
        self.held = 0
        self.firing = False
