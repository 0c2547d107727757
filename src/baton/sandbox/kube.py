"""Alert storms from a Kubernetes estate, labelled the way real exporters label them.

Where `storms.py` models a classic estate (one host per service, a `service` label on
every alert), these estates look like what kube-prometheus sends: kube-state-metrics
alerts carry `service="kube-state-metrics"` with the workload only in `namespace` /
`pod` / `deployment`; cAdvisor alerts say `service="kubelet"`; node-exporter puts the
node in `instance`; blackbox probes carry a URL and no service at all; database and
queue exporters name themselves. Workloads have pods on shared nodes in two or three
zones; shared infrastructure (DNS, identity, ingress) is used by many.

Each seed draws an estate (names, size, label dialect, rule timings) and a storm:
overlapping faults (bad deploys, crash loops, slow burns, node stalls, zone partitions,
DNS and identity outages) plus background noise at 30-40 % of alert episodes, sent by an
HA pair of Prometheus servers that re-send every firing alert. Seeds from
`HELD_OUT_FROM` on use names, alert dialects and timings that no tuned seed uses, so a
rule keyed to a name would show there. Only scorers read `KubeStorm.truth`.
"""

# ruff: noqa: S311
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

STORM_START = datetime(2026, 5, 12, 9, 0, tzinfo=UTC)
HELD_OUT_FROM = 1000  # seeds from here on are never tuned on
Labels = tuple[tuple[str, str], ...]

# Application names per estate family; the last two are only used for held-out seeds.
_FAMILIES: tuple[tuple[str, ...], ...] = (
    (
        "frontend",
        "cart",
        "checkout",
        "payment",
        "shipping",
        "email",
        "currency",
        "recommendation",
        "productcatalog",
        "ad",
        "quote",
        "review",
    ),
    (
        "web-banking",
        "accounts",
        "ledger",
        "transfers",
        "fraud-check",
        "notifications",
        "statements",
        "fx-rates",
        "kyc",
        "cards",
        "loans",
        "audit-trail",
    ),
    (
        "portal",
        "playback",
        "catalogue",
        "transcoder",
        "subscriptions",
        "billing",
        "search",
        "profiles",
        "recommender",
        "uploads",
        "thumbnails",
        "entitlements",
    ),
    (
        "tracking-ui",
        "shipments",
        "routing",
        "warehouse",
        "fleet",
        "invoicing",
        "pricing",
        "customs",
        "notify",
        "geo",
        "manifests",
        "returns",
    ),
    (
        "storefront",
        "basket",
        "orders",
        "stock",
        "promotions",
        "loyalty",
        "tax",
        "delivery-slots",
        "reviews",
        "wishlist",
        "vouchers",
        "receipts",
    ),
)
_STORES = (
    ("postgres", "statefulset"),
    ("redis", "statefulset"),
    ("kafka", "statefulset"),
    ("mysql", "statefulset"),
)
_SUFFIXES = ("", "service", "-svc", "-api")
_NODE_STYLES = ("ip-10-0-{z}-{n}.ec2.internal", "gke-prod-pool-{z}-{n:04x}", "k8s-worker-{n:02d}")
_HELD_NODE_STYLES = ("aks-nodepool{z}-{n:08d}-vmss", "node{n:03d}.dc{z}.example.org")

# Alert names for application symptoms, per dialect (held-out seeds use the last).
_APP_DIALECTS: tuple[dict[str, str], ...] = (
    {"errors": "HighErrorRate", "latency": "HighLatency", "down": "ServiceDown"},
    {"errors": "ErrorBudgetBurn", "latency": "LatencySLOBurn", "down": "TargetDown"},
    {"errors": "Http5xxRatioHigh", "latency": "P99LatencyHigh", "down": "NoHealthyUpstream"},
)


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    role: str  # frontend | api | store | queue | dns | identity | ingress
    controller: str  # deployment | statefulset | daemonset
    pods: tuple[tuple[str, str], ...]  # (pod name, node)
    depends_on: tuple[str, ...]
    shared: bool = False
    endpoint: str | None = None


@dataclass(frozen=True)
class KubeEstate:
    seed: int
    workloads: tuple[Workload, ...]
    nodes: dict[str, str]  # node -> zone
    dialect: int  # which application alert names
    otel: bool  # application alerts carry OpenTelemetry resource attributes
    node_instance_port: bool  # node-exporter's instance is "node:9100", not "node"

    def get(self, name: str) -> Workload:
        return next(w for w in self.workloads if w.name == name)

    def dependents(self, name: str) -> list[Workload]:
        return [
            w
            for w in self.workloads
            if name in w.depends_on
            or (self.get(name).shared and w.role not in ("dns", "ingress") and w.name != name)
        ]

    def on_node(self, node: str) -> list[tuple[Workload, str]]:
        return [(w, pod) for w in self.workloads for pod, n in w.pods if n == node]

    def catalogue(self) -> list[dict[str, Any]]:
        """What its operators would declare: services with dependencies and placement,
        nodes with their zones, shared infrastructure marked once."""
        out: list[dict[str, Any]] = [
            {"name": zone, "kind": "zone"} for zone in sorted(set(self.nodes.values()))
        ]
        out += [
            {"name": node, "kind": "node", "zone": zone}
            for node, zone in sorted(self.nodes.items())
        ]
        for w in self.workloads:
            item: dict[str, Any] = {
                "name": w.name,
                "kind": {"store": "database", "queue": "queue"}.get(w.role, w.role),
                "hosts": sorted({n for _, n in w.pods}),
                "depends_on": list(w.depends_on),
            }
            if w.shared:
                item["shared"] = True
            if w.endpoint:
                item["endpoints"] = [w.endpoint]
            out.append(item)
        return out


def _pod_name(rng: random.Random, w: str, controller: str, i: int) -> str:
    if controller == "statefulset":
        return f"{w}-{i}"
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    rs = "".join(rng.choice(alphabet) for _ in range(rng.choice((9, 10))))
    return f"{w}-{rs}-{''.join(rng.choice(alphabet) for _ in range(5))}"


def build_estate(seed: int) -> KubeEstate:
    """A deterministic Kubernetes estate for `seed`."""
    rng = random.Random(f"{seed}:kube-estate")
    held = seed >= HELD_OUT_FROM
    family = _FAMILIES[3 + seed % 2] if held else _FAMILIES[seed % 3]
    suffix = rng.choice(_SUFFIXES)
    zones = [f"{'westeurope' if held else 'eu-central-1'}-{z}" for z in "abc"[: rng.randint(2, 3)]]
    style = rng.choice(_HELD_NODE_STYLES if held else _NODE_STYLES)
    nodes = {
        style.format(z=zi + 1, n=rng.randint(10, 250) * 7 + k): zones[zi]
        for k in range(rng.randint(5, 8))
        for zi in (k % len(zones),)
    }
    node_names = list(nodes)
    apps = [f"{a}{suffix}" if a != family[0] else a for a in rng.sample(family, rng.randint(9, 12))]
    app_ns = rng.choice(("shop", "prod", "apps", "default", "core"))

    def place(n_pods: int) -> list[str]:
        return rng.sample(node_names, min(n_pods, len(node_names)))

    built: dict[str, Workload] = {}

    def add(
        name: str,
        ns: str,
        role: str,
        controller: str,
        deps: list[str],
        n_pods: int,
        shared: bool = False,
        endpoint: str | None = None,
    ) -> None:
        pods = tuple(
            (_pod_name(rng, name, controller, i), node) for i, node in enumerate(place(n_pods))
        )
        built[name] = Workload(name, ns, role, controller, pods, tuple(deps), shared, endpoint)

    dns = rng.choice(("coredns", "kube-dns"))
    add(dns, "kube-system", "dns", "deployment", [], 2, shared=True, endpoint="dns://10.96.0.10")
    ingress = rng.choice(("ingress-nginx-controller", "traefik", "envoy-gateway"))
    add(ingress, "ingress", "ingress", "deployment", [], 2)
    identity = rng.choice(("keycloak", "dex", "auth-server", "identity"))
    stores = []
    for kind, controller in rng.sample(_STORES, rng.randint(2, 4)):
        owner = rng.choice(apps[1:])
        name = f"{owner.removesuffix(suffix) if suffix else owner}-{kind}"
        add(name, app_ns, "queue" if kind == "kafka" else "store", controller, [], 1)
        stores.append(name)
    add(
        identity, "identity", "identity", "deployment", [stores[0]] if rng.random() < 0.5 else [], 2
    )
    front = apps[0]
    mids = apps[1:]
    tiers = [mids[: len(mids) // 2], mids[len(mids) // 2 :]]  # upper tier needs lower tier
    for name in tiers[1]:
        deps = rng.sample(stores, rng.randint(0, min(2, len(stores))))
        add(name, app_ns, "api", "deployment", deps, rng.randint(1, 3))
    for name in tiers[0]:
        deps = rng.sample(tiers[1], rng.randint(1, min(3, len(tiers[1]))))
        deps += rng.sample(stores, rng.randint(0, 1))
        if rng.random() < 0.4:
            deps.append(identity)
        add(name, app_ns, "api", "deployment", sorted(set(deps)), rng.randint(1, 3))
    host = rng.choice(("shop", "www", "app", "portal"))
    add(
        front,
        app_ns,
        "frontend",
        "deployment",
        sorted({*rng.sample(tiers[0], min(4, len(tiers[0]))), identity, ingress}),
        3,
        endpoint=f"https://{host}.example.{'org' if held else 'com'}/",
    )
    order = [dns, ingress, *stores, identity, *tiers[1], *tiers[0], front]
    return KubeEstate(
        seed=seed,
        workloads=tuple(built[n] for n in order),
        nodes=nodes,
        dialect=2 if held else seed % 2,
        otel=rng.random() < 0.4,
        node_instance_port=rng.random() < 0.5,
    )


@dataclass(frozen=True)
class Episode:
    """One alert from becoming active to resolving (offsets in seconds from the start);
    Prometheus first sends it after its rule's `for`."""

    labels: Labels
    active_s: float
    for_s: float
    end_s: float
    summary: str
    fault: str | None  # fault id, or None for noise
    noise: int | None = None  # which noise source, for noise


@dataclass
class KubeStorm:
    seed: int
    estate: KubeEstate
    start: datetime
    duration_s: float
    episodes: list[Episode] = field(default_factory=list)
    roots: dict[str, str] = field(default_factory=dict)  # fault id -> catalogue name
    scenarios: dict[str, str] = field(default_factory=dict)  # fault id -> scenario
    resend_s: float = 60.0
    senders: int = 2

    def truth(self) -> dict[tuple[Labels, datetime], Any]:
        """For scorers only: (labels, startsAt) -> fault id, or ("noise", n)."""
        return {
            (e.labels, self.start + timedelta(seconds=e.active_s)): (
                e.fault if e.fault is not None else ("noise", e.noise)
            )
            for e in self.episodes
        }

    def stream(self, step_s: float = 30.0) -> Iterator[tuple[datetime, list[dict[str, Any]]]]:
        """(time, Alertmanager v2 alerts posted in the step ending then), with re-sends
        and every alert sent once per server of the HA pair."""
        last: dict[int, float] = {}
        done: set[int] = set()
        for k in range(1, int(self.duration_s / step_s) + 1):
            t = k * step_s
            batch: list[dict[str, Any]] = []
            for i, e in enumerate(self.episodes):
                visible = e.active_s + e.for_s
                if i in done or visible > t or visible >= e.end_s:
                    continue
                ended = e.end_s <= t
                if not ended and i in last and t - last[i] < self.resend_s:
                    continue
                last[i] = t
                item: dict[str, Any] = {
                    "labels": dict(e.labels),
                    "annotations": {"summary": e.summary},
                    "startsAt": _iso(self.start + timedelta(seconds=e.active_s)),
                }
                if ended:
                    item["endsAt"] = _iso(self.start + timedelta(seconds=e.end_s))
                    done.add(i)
                batch += [dict(item) for _ in range(self.senders)]
            yield self.start + timedelta(seconds=t), batch


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Writer:
    """Labels alerts the way each exporter would, for one estate."""

    def __init__(self, estate: KubeEstate, rng: random.Random) -> None:
        self.e, self.rng = estate, rng
        self.names = _APP_DIALECTS[estate.dialect]

    def app(self, w: Workload, what: str, severity: str, pod: str | None = None) -> Labels:
        """An application's own metric (errors, latency), as its instrumentation labels it."""
        labels = {"alertname": self.names[what], "severity": severity, "namespace": w.namespace}
        if self.e.otel:
            labels |= {"service_name": w.name, "service_namespace": w.namespace, "job": "otel"}
        else:
            labels |= {"service": w.name, "job": w.name}
        if pod:
            labels["pod"] = pod
        return tuple(sorted(labels.items()))

    def ksm(self, alertname: str, w: Workload, severity: str, pod: str | None = None) -> Labels:
        labels = {
            "alertname": alertname,
            "severity": severity,
            "service": "kube-state-metrics",
            "job": "kube-state-metrics",
            "namespace": w.namespace,
            "instance": "10.2.0.14:8080",
        }
        if pod:
            labels |= {"pod": pod, "container": w.name}
        else:
            labels[w.controller] = w.name
        return tuple(sorted(labels.items()))

    def kubelet(self, alertname: str, w: Workload, pod: str, node: str, severity: str) -> Labels:
        labels = {
            "alertname": alertname,
            "severity": severity,
            "service": "kubelet",
            "job": "kubelet",
            "metrics_path": "/metrics/cadvisor",
            "namespace": w.namespace,
            "pod": pod,
            "container": w.name,
            "node": node,
        }
        return tuple(sorted(labels.items()))

    def node(
        self, alertname: str, node: str, severity: str, extra: dict[str, str] | None = None
    ) -> Labels:
        instance = f"{node}:9100" if self.e.node_instance_port else node
        labels = {
            "alertname": alertname,
            "severity": severity,
            "service": "node-exporter",
            "job": "node-exporter",
            "namespace": "monitoring",
            "instance": instance,
            **(extra or {}),
        }
        return tuple(sorted(labels.items()))

    def ksm_node(self, alertname: str, node: str, severity: str) -> Labels:
        labels = {
            "alertname": alertname,
            "severity": severity,
            "service": "kube-state-metrics",
            "job": "kube-state-metrics",
            "node": node,
            "instance": "10.2.0.14:8080",
        }
        return tuple(sorted(labels.items()))

    def probe(self, alertname: str, url: str, severity: str) -> Labels:
        labels = {"alertname": alertname, "severity": severity, "job": "blackbox", "instance": url}
        return tuple(sorted(labels.items()))

    def exporter(self, w: Workload, alertname: str, severity: str) -> Labels:
        kind = w.name.rsplit("-", 1)[-1]
        port = {"postgres": 5432, "redis": 6379, "kafka": 9092, "mysql": 3306}.get(kind, 9000)
        job = {
            "postgres": "postgres-exporter",
            "redis": "redis-exporter",
            "kafka": "kafka-exporter",
            "mysql": "mysqld-exporter",
        }.get(kind, "exporter")
        labels = {
            "alertname": alertname,
            "severity": severity,
            "service": job,
            "job": job,
            "namespace": w.namespace,
            "instance": f"{w.name}.{w.namespace}.svc:{port}",
        }
        if kind == "kafka":
            labels["topic"] = f"{w.name.split('-')[0]}-events"
        return tuple(sorted(labels.items()))


_STORE_ALERTS = {
    "postgres": ("PostgresqlTooManyConnections", "PostgresqlSlowQueries", "PostgresqlDown"),
    "mysql": ("MysqlTooManyConnections", "MysqlSlowQueries", "MysqlDown"),
    "redis": ("RedisRejectedConnections", "RedisLatencyHigh", "RedisDown"),
    "kafka": ("KafkaConsumerGroupLag", "KafkaProduceLatencyHigh", "KafkaBrokerDown"),
}


class _Faults:
    """Writes the alert episodes of each kind of fault."""

    def __init__(self, storm: KubeStorm, rng: random.Random, timing: float) -> None:
        self.s, self.rng, self.timing = storm, rng, timing
        self.w = _Writer(storm.estate, rng)
        self.end = storm.duration_s
        self.fixed = storm.duration_s  # when the fault being written is fixed

    def _add(
        self,
        labels: Labels,
        at: float,
        fid: str | None,
        summary: str,
        for_s: float | None = None,
        lasts: float | None = None,
        noise: int | None = None,
    ) -> None:
        for_s = self.rng.choice((0.0, 60.0, 120.0)) * self.timing if for_s is None else for_s
        fixed = max(at + 60, self.fixed) + self.rng.uniform(30, 150)
        end = at + lasts if lasts is not None else fixed
        self.s.episodes.append(Episode(labels, round(at), for_s, round(end), summary, fid, noise))

    def _symptoms(
        self, fid: str, root: Workload, at: float, hops: int = 2, share: float = 0.8
    ) -> None:
        """Errors travel to dependents, then their dependents, a little later each hop."""
        frontier, seen = [root.name], {root.name}
        for hop in range(hops):
            nxt = []
            for name in frontier:
                for dep in self.s.estate.dependents(name):
                    if dep.name in seen or self.rng.random() > share:
                        continue
                    seen.add(dep.name)
                    nxt.append(dep.name)
                    t = at + self.rng.uniform(30, 150) * (hop + 1) * self.timing
                    self._add(
                        self.w.app(dep, "errors", "critical"),
                        t,
                        fid,
                        f"{dep.name} returns errors calling {name}",
                    )
                    if self.rng.random() < 0.4:
                        self._add(
                            self.w.app(dep, "latency", "warning"),
                            t + 30,
                            fid,
                            f"{dep.name} is slow",
                        )
            frontier = nxt

    def bad_deploy(self, fid: str, w: Workload, at: float) -> None:
        self._add(self.w.app(w, "errors", "critical"), at + 30, fid, f"{w.name} 5xx after rollout")
        for pod, _ in w.pods[: self.rng.randint(1, len(w.pods))]:
            self._add(
                self.w.ksm("KubePodCrashLooping", w, "warning", pod),
                at + 60,
                fid,
                f"pod {pod} is crash looping",
                for_s=300 * self.timing,
            )
        self._symptoms(fid, w, at + 60)

    def crashloop(self, fid: str, w: Workload, at: float) -> None:
        pod, node = w.pods[0]
        self._add(
            self.w.ksm("KubePodCrashLooping", w, "warning", pod),
            at,
            fid,
            f"pod {pod} is crash looping",
            for_s=300 * self.timing,
        )
        self._add(
            self.w.kubelet("KubeContainerOOMKilled", w, pod, node, "warning"),
            at,
            fid,
            f"container in {pod} was OOM killed",
            for_s=0,
        )
        self._add(
            self.w.ksm(f"Kube{w.controller.title()}ReplicasMismatch", w, "critical"),
            at + 60,
            fid,
            f"{w.name} has fewer replicas than wanted",
            for_s=300 * self.timing,
        )
        self._add(self.w.app(w, "down", "critical"), at + 90, fid, f"{w.name} is down")
        self._symptoms(fid, w, at + 120, share=0.6)

    def slow_burn(self, fid: str, w: Workload, at: float) -> None:
        kind = w.name.rsplit("-", 1)[-1]
        names = _STORE_ALERTS.get(kind, _STORE_ALERTS["postgres"])
        self._add(
            self.w.exporter(w, names[1], "warning"),
            at,
            fid,
            f"{w.name} is getting slower",
            for_s=300 * self.timing,
        )
        self._add(
            self.w.exporter(w, names[0], "critical"),
            at + 420 * self.timing,
            fid,
            f"{w.name} is saturated",
            for_s=120 * self.timing,
        )
        for dep in self.s.estate.dependents(w.name):
            t = at + self.rng.uniform(240, 600) * self.timing
            self._add(self.w.app(dep, "latency", "critical"), t, fid, f"{dep.name} is slow")

    def node_stall(self, fid: str, node: str, at: float) -> None:
        alert = self.rng.choice(
            ("NodeDiskIOSaturation", "NodeFilesystemAlmostOutOfSpace", "NodeHighLoad")
        )
        extra = {"device": "nvme0n1"} if "Disk" in alert else {}
        self._add(
            self.w.node(alert, node, "critical", extra),
            at,
            fid,
            f"{node}: {alert}",
            for_s=self.rng.uniform(120, 420) * self.timing,
        )
        for w, pod in self.s.estate.on_node(node):
            t = at + self.rng.uniform(20, 120) * self.timing
            if w.role in ("store", "queue"):
                names = _STORE_ALERTS.get(w.name.rsplit("-", 1)[-1], _STORE_ALERTS["postgres"])
                self._add(self.w.exporter(w, names[1], "critical"), t, fid, f"{w.name} slow")
            elif self.rng.random() < 0.5:
                self._add(
                    self.w.kubelet("CPUThrottlingHigh", w, pod, node, "warning"),
                    t,
                    fid,
                    f"{pod} throttled",
                )
            self._add(
                self.w.app(w, "latency", "critical", pod), t + 30, fid, f"{w.name} slow on {pod}"
            )
            if self.rng.random() < 0.5:
                self._add(
                    self.w.ksm("KubePodNotReady", w, "critical", pod),
                    t + 60,
                    fid,
                    f"{pod} not ready",
                    for_s=300 * self.timing,
                )

    def zone_partition(self, fid: str, zone: str, at: float) -> None:
        nodes = [n for n, z in self.s.estate.nodes.items() if z == zone]
        for node in nodes:
            self._add(
                self.w.ksm_node("KubeNodeUnreachable", node, "critical"),
                at,
                fid,
                f"{node} is unreachable",
                for_s=self.rng.uniform(60, 240) * self.timing,
            )
            for w, pod in self.s.estate.on_node(node):
                t = at + self.rng.uniform(20, 90) * self.timing
                self._add(
                    self.w.app(w, "errors", "critical", pod), t, fid, f"{w.name} errors on {pod}"
                )

    def shared_outage(self, fid: str, w: Workload, at: float) -> None:
        """DNS or identity: many dependents fail first; the cause's own rule waits longer."""
        for dep in self.s.estate.dependents(w.name):
            if self.rng.random() < 0.85:
                t = at + self.rng.uniform(20, 120) * self.timing
                self._add(
                    self.w.app(dep, "errors", "critical"),
                    t,
                    fid,
                    f"{dep.name} cannot reach {w.name}",
                )
        alert = "CoreDNSErrorsHigh" if w.role == "dns" else self.w.names["errors"]
        labels = (
            self.w.app(w, "errors", "critical")
            if w.role != "dns"
            else tuple(
                sorted(
                    {
                        "alertname": alert,
                        "severity": "critical",
                        "job": w.name,
                        "service": w.name,
                        "namespace": "kube-system",
                    }.items()
                )
            )
        )
        self._add(labels, at, fid, f"{w.name} is failing", for_s=self.rng.uniform(240, 360))
        if w.role == "dns":
            self._add(
                self.w.probe("ProbeFailed", "dns://10.96.0.10:53", "critical"),
                at,
                fid,
                "DNS probe fails",
                for_s=self.rng.uniform(120, 300),
            )

    def noise(self, n: int) -> None:
        e, w, rng = self.s.estate, self.w, self.rng
        wl = rng.choice([x for x in e.workloads if x.role not in ("dns",)])
        pod, node = rng.choice(wl.pods)
        pick = rng.randrange(6)
        if pick == 0:
            labels = w.node(
                rng.choice(
                    (
                        "NodeClockNotSynchronising",
                        "NodeCPUHighUsage",
                        "NodeNetworkReceiveErrs",
                        "NodeMemoryHighUtilization",
                    )
                ),
                rng.choice(list(e.nodes)),
                "warning",
            )
        elif pick == 1:
            labels = w.kubelet("CPUThrottlingHigh", wl, pod, node, "info")
        elif pick == 2:
            labels = w.ksm(
                rng.choice(("KubeHpaMaxedOut", "KubeJobFailed", "KubeContainerWaiting")),
                wl,
                "warning",
                pod if rng.random() < 0.5 else None,
            )
        elif pick == 3:
            url = f"https://{wl.name}.{wl.namespace}.svc/healthz"
            labels = w.probe(rng.choice(("ProbeSlow", "SSLCertExpiringSoon")), url, "warning")
        elif pick == 4:
            labels = w.app(wl, "latency", "warning")
        else:
            stores = [x for x in e.workloads if x.role in ("store", "queue")]
            s = rng.choice(stores)
            alerts = _STORE_ALERTS.get(s.name.rsplit("-", 1)[-1], _STORE_ALERTS["postgres"])
            labels = w.exporter(s, alerts[0], "warning")
        summary = f"{dict(labels)['alertname']} (background)"
        if rng.random() < 0.35:  # flapping: on and off through the storm
            t = rng.uniform(0, 300)
            while t < self.end - 300:
                on = rng.uniform(40, 200)
                self._add(labels, t, None, summary, for_s=0, lasts=on, noise=n)
                t += on + rng.uniform(60, 240)
        else:
            t = rng.uniform(60, self.end - 600)
            self._add(
                labels,
                t,
                None,
                summary,
                for_s=rng.choice((0, 60)),
                lasts=rng.uniform(60, 400),
                noise=n,
            )


def plan_kube_storm(
    seed: int, start: datetime = STORM_START, duration_s: float = 3600.0
) -> KubeStorm:
    """A deterministic storm for `seed` on its own estate."""
    estate = build_estate(seed)
    rng = random.Random(f"{seed}:kube-storm")
    timing = rng.uniform(0.6, 1.0) if seed < HELD_OUT_FROM else rng.uniform(1.0, 1.5)
    storm = KubeStorm(seed, estate, start, duration_s, resend_s=rng.choice((60.0, 120.0, 240.0)))
    faults = _Faults(storm, rng, timing)
    apps = [w for w in estate.workloads if w.role in ("api", "frontend")]
    stores = [w for w in estate.workloads if w.role in ("store", "queue")]
    kinds = [
        "bad_deploy",
        "crashloop",
        "slow_burn",
        "node_stall",
        "zone_partition",
        "dns",
        "identity",
    ]
    chosen = rng.sample(kinds, rng.randint(3, 5))
    used_nodes: set[str] = set()
    apps_left = list(apps)  # one fault per workload: two on one root are one in practice
    offsets = sorted(rng.uniform(120, 2100) for _ in chosen)  # within 35 minutes
    for k, (kind, at) in enumerate(zip(chosen, offsets, strict=True)):
        fid = f"F{k}"
        faults.fixed = at + rng.uniform(900, 2100)  # someone fixes it 15-35 minutes in
        storm.scenarios[fid] = kind
        if kind == "bad_deploy":
            w = apps_left.pop(rng.randrange(len(apps_left)))
            faults.bad_deploy(fid, w, at)
            storm.roots[fid] = w.name
        elif kind == "crashloop":
            w = apps_left.pop(rng.randrange(len(apps_left)))
            faults.crashloop(fid, w, at)
            storm.roots[fid] = w.name
        elif kind == "slow_burn":
            w = rng.choice(stores)
            faults.slow_burn(fid, w, at)
            storm.roots[fid] = w.name
        elif kind == "node_stall":
            node = rng.choice(sorted(set(estate.nodes) - used_nodes))
            used_nodes.add(node)
            faults.node_stall(fid, node, at)
            storm.roots[fid] = node
        elif kind == "zone_partition":
            zone = rng.choice(sorted(set(estate.nodes.values())))
            used_nodes |= {n for n, z in estate.nodes.items() if z == zone}
            faults.zone_partition(fid, zone, at)
            storm.roots[fid] = zone
        else:
            w = next(x for x in estate.workloads if x.role == kind)
            faults.shared_outage(fid, w, at)
            storm.roots[fid] = w.name
    fault_episodes = len(storm.episodes)
    share = rng.uniform(0.30, 0.40)  # of all alert episodes, noise
    target = share / (1 - share) * fault_episodes
    n = 0
    while len(storm.episodes) - fault_episodes < target:
        faults.noise(n)
        n += 1
    storm.episodes = _unique(storm.episodes)
    return storm


def _unique(episodes: list[Episode]) -> list[Episode]:
    """One alert (labels) cannot be active twice at once; later overlapping copies go."""
    out: list[Episode] = []
    busy: dict[Labels, float] = {}
    for e in sorted(episodes, key=lambda e: e.active_s):
        if busy.get(e.labels, -1.0) >= e.active_s:
            continue
        busy[e.labels] = e.end_s
        out.append(e)
    return out
