"""Operator actions on the estate. Each one changes real state, or says why it did not.

Actions know nothing of faults: they act on what an operator could touch (versions,
replicas, files, certificates, pools, providers). Whether that fixed the trouble is the
estate's business, so a wrong action honestly leaves the problem in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from baton.sandbox.metrics import Profile, ServiceState
from baton.sandbox.topology import PROVIDERS, STATELESS_KINDS, ServiceSpec

REMEDIATIONS: tuple[str, ...] = (
    "restart",
    "rollback",
    "scale_out",
    "clear_disk",
    "renew_certificate",
    "recycle_connections",
    "failover",
)

MAX_REPLICAS = 12
MAX_DB_CONNECTIONS = 200
CERT_VALID_DAYS = 90
CERT_RENEW_WINDOW_DAYS = 30


@dataclass(frozen=True)
class RemediationResult:
    """What an action did, in words an operator (and an audit log) can use."""

    action: str
    service: str
    changed: bool
    detail: str


@dataclass
class Target:
    """The service an action is aimed at, as the action may see and change it."""

    spec: ServiceSpec
    state: ServiceState
    profile: Profile
    now: datetime
    params: dict[str, object]
    current: Callable[[str], float]  # the service's current metric level
    provider_group: list[ServiceState] = field(default_factory=list)  # share a provider


Outcome = tuple[bool, str, str | None]  # changed, detail, log line the action leaves


def _external(t: Target, action: str) -> Outcome | None:
    if t.spec.kind == "external":
        return False, f"{t.spec.name} is run by a third party; cannot {action} it from here", None
    return None


def restart(t: Target) -> Outcome:
    """Restart the process: memory starts from scratch, nothing else changes."""
    if (out := _external(t, "restart")) is not None:
        return out
    st, before = t.state, t.current("memory_pct")
    st.memory_pct = t.profile.mem_base
    st.down_left = 0.0
    st.restarts += 1
    st.started_at = t.now
    detail = (
        f"restarted {t.spec.name} ({st.replicas} replica(s), rolling); "
        f"memory {before:.0f}% -> {st.memory_pct:.0f}%"
    )
    return True, detail, f"Started {t.spec.name} {st.version} after restart request"


def rollback(t: Target) -> Outcome:
    """Redeploy the version that ran before the current one."""
    if (out := _external(t, "roll back")) is not None:
        return out
    st = t.state
    if not st.previous_versions:
        detail = f"no previous version of {t.spec.name} recorded; nothing to roll back to"
        return False, detail, None
    bad, st.version = st.version, st.previous_versions.pop()
    return (
        True,
        f"rolled back {t.spec.name} from {bad} to {st.version}",
        f"deploy: rolled back {t.spec.name} to version {st.version} (was {bad})",
    )


def scale_out(t: Target) -> Outcome:
    """Add replicas behind the balancer (`by`, alias `replicas`; negative scales back in)."""
    if (out := _external(t, "scale out")) is not None:
        return out
    by = t.params.get("by", t.params.get("replicas", 1))
    if not isinstance(by, int) or isinstance(by, bool) or by == 0 or not -10 <= by <= 10:
        raise ValueError(f"scale_out parameter 'by' must be a non-zero integer -10..10, got {by!r}")
    if t.spec.kind not in STATELESS_KINDS:
        return False, f"{t.spec.name} is stateful ({t.spec.kind}); scale-out is not supported", None
    st = t.state
    before = st.replicas
    after = max(1, min(MAX_REPLICAS, before + by))
    if after == before:
        limit = f"maximum of {MAX_REPLICAS}" if by > 0 else "minimum of 1"
        return False, f"{t.spec.name} already runs the {limit} replica(s)", None
    st.replicas = after
    return (
        True,
        f"scaled {t.spec.name} from {before} to {after} replicas",
        f"autoscaler: scaled deployment/{t.spec.name} from {before} to {after} replicas",
    )


def clear_disk(t: Target) -> Outcome:
    """Remove rotated logs, dumps and temp files, and stop whatever was filling the disk."""
    if (out := _external(t, "clear the disk of")) is not None:
        return out
    st, base = t.state, t.profile.disk_base
    if not st.runaway_writer and st.disk_pct <= base + 2.0:
        detail = f"disk on {t.spec.host} is at {st.disk_pct:.0f}%; nothing worth clearing"
        return False, detail, None
    before = st.disk_pct
    st.disk_pct = base
    st.runaway_writer = False
    freed_gib = max(0.1, (before - base) * 5.0)
    return (
        True,
        f"removed rotated logs and temp files on {t.spec.host}: disk {before:.0f}% -> {base:.0f}%",
        f"cleanup: removed rotated logs and core dumps, freed {freed_gib:.1f} GiB on /var",
    )


def renew_certificate(t: Target) -> Outcome:
    """Issue a fresh certificate; skipped while the current one is far from expiry."""
    st = t.state
    if st.cert_expires_at is None:
        return False, f"{t.spec.name} has no TLS certificate", None
    days = (st.cert_expires_at - t.now).total_seconds() / 86400.0
    if days > CERT_RENEW_WINDOW_DAYS and not t.params.get("force", False):
        return (
            False,
            f"certificate for {t.spec.name} is valid for {days:.0f} more days; renewal not due "
            "(force=True renews anyway)",
            None,
        )
    st.cert_expires_at = t.now + timedelta(days=CERT_VALID_DAYS)
    until = st.cert_expires_at.date().isoformat()
    return (
        True,
        f"renewed certificate for {t.spec.name}; valid for {CERT_VALID_DAYS} days (until {until})",
        f"certbot: certificate for {t.spec.name} renewed, expires {until}",
    )


def recycle_connections(t: Target) -> Outcome:
    """Terminate idle sessions and reset the pool of a database."""
    if t.spec.kind != "database":
        return False, f"{t.spec.name} is not a database; it has no connection pool to recycle", None
    pct = t.current("db_connections_pct")
    n = max(1, int(pct / 100.0 * MAX_DB_CONNECTIONS * 0.8))
    return (
        True,
        f"terminated {n} idle connections on {t.spec.name} (pool was at {pct:.0f}%)",
        f"FATAL:  terminating connection due to administrator command ({n} sessions)",
    )


def failover(t: Target) -> Outcome:
    """Switch the provider group over (`to`, alias `target`: secondary or primary)."""
    group = t.provider_group
    if not group or t.state.provider is None:
        return False, f"{t.spec.name} has no secondary provider configured", None
    pair = next(p for p in PROVIDERS.values() if t.state.provider in p)
    to = t.params.get("to", t.params.get("target", "secondary"))
    names = {"primary": pair[0], "secondary": pair[1], pair[0]: pair[0], pair[1]: pair[1]}
    if not isinstance(to, str) or to not in names:
        raise ValueError(f"failover parameter 'to' must be 'primary' or 'secondary', got {to!r}")
    target = names[to]
    before = t.state.provider
    if before == target:
        return False, f"{t.spec.name} already uses {target}; nothing to fail over", None
    for st in group:
        st.provider = target
    return (
        True,
        f"switched provider from {before} to {target}",
        f"provider switch: routing {t.spec.name} traffic to {target} (was {before})",
    )


ACTIONS: dict[str, Callable[[Target], Outcome]] = {
    "restart": restart,
    "rollback": rollback,
    "scale_out": scale_out,
    "clear_disk": clear_disk,
    "renew_certificate": renew_certificate,
    "recycle_connections": recycle_connections,
    "failover": failover,
}
