"""Importing the topology instead of typing it: where things run from the Kubernetes API,
what is scraped from Prometheus targets, and who calls whom from a trace service graph.

Each reader turns what the source says into ServiceDefs; `combine` merges them (the same
name from two sources is one service: dependencies, hosts and endpoints are united), and
the result is declared like any catalogue (PUT /api/v1/services). Sources are a file
holding the JSON the API gives, or a URL:

- Kubernetes: `kubectl get nodes,pods,services -A -o json` (a List), or the API's own
  NodeList / PodList / ServiceList; a URL is an API server (say `kubectl proxy`'s
  http://127.0.0.1:8001), read at /api/v1/nodes, /api/v1/pods and /api/v1/services.
  Nodes become `node` services in their zone (topology.kubernetes.io/zone); each
  workload (a Deployment found through its ReplicaSet, a StatefulSet, a DaemonSet, a
  Job, else the pod's app label) becomes a service hosted on the nodes its pods run on,
  answering on `http://<service>.<namespace>.svc` for each Service selecting its pods.
- Prometheus: `/api/v1/targets`. Each active target's `service` (else `job`) label is a
  service; its node (`node`, `kubernetes_node`, or the discovered pod node) or the host
  part of `instance` is where it runs.
- Service graph (Tempo's or the OpenTelemetry collector's servicegraph connector):
  a Prometheus query API answering `traces_service_graph_request_total` by client and
  server; each client depends on the servers it calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from baton.correlate.topology import ServiceDef

TIMEOUT_S = 10.0
SERVICE_GRAPH_QUERY = "sum by (client, server) (traces_service_graph_request_total)"
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
APP_LABELS = ("app.kubernetes.io/name", "app", "k8s-app")
_HASH = re.compile(r"-[a-z0-9]{5,10}$")


def read(
    source: str, paths: Iterable[str] = ("",), params: dict[str, str] | None = None
) -> list[Any]:
    """The JSON documents of a source: a file, or a URL read at each of `paths`."""
    if not source.startswith(("http://", "https://")):
        try:
            return [json.loads(Path(source).read_text())]
        except (OSError, ValueError) as exc:
            raise ValueError(f"{source}: cannot read JSON: {exc}") from None
    docs = []
    with httpx.Client(timeout=TIMEOUT_S) as client:
        for path in paths:
            url = source.rstrip("/") + path
            try:
                response = client.get(url, params=params)
                response.raise_for_status()
                docs.append(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                raise ValueError(f"{url}: {exc}") from None
    return docs


def _items(docs: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(kind, object) of every item of Kubernetes List / NodeList / PodList documents."""
    out = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        list_kind = str(doc.get("kind", "List"))
        for item in doc.get("items", []):
            if isinstance(item, dict):
                kind = item.get("kind") or list_kind.removesuffix("List")
                out.append((str(kind), item))
    return out


def _workload(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata", {})
    labels = meta.get("labels") or {}
    for owner in meta.get("ownerReferences") or []:
        name = str(owner.get("name", ""))
        if owner.get("kind") == "ReplicaSet":
            template = labels.get("pod-template-hash")
            return name.removesuffix(f"-{template}") if template else _HASH.sub("", name)
        if name:
            return name
    for key in APP_LABELS:
        if labels.get(key):
            return str(labels[key])
    return str(meta.get("name", "unknown"))


def from_kubernetes(docs: Iterable[Any]) -> list[ServiceDef]:
    """Nodes (in zones) and workloads (on nodes, with their Services' endpoints)."""
    items = _items(docs)
    defs: list[ServiceDef] = []
    zones: set[str] = set()
    for kind, node in items:
        if kind != "Node":
            continue
        labels = node.get("metadata", {}).get("labels") or {}
        zone = next((str(labels[k]) for k in ZONE_LABELS if labels.get(k)), None)
        defs.append(ServiceDef(str(node["metadata"]["name"]), kind="node", zone=zone))
        zones |= {zone} if zone else set()
    defs += [ServiceDef(z, kind="zone") for z in sorted(zones)]
    pods = [p for kind, p in items if kind == "Pod"]
    services = [s for kind, s in items if kind == "Service"]
    workloads: dict[str, ServiceDef] = {}
    for pod in pods:
        meta = pod.get("metadata", {})
        name, ns = _workload(pod), str(meta.get("namespace", "default"))
        labels = meta.get("labels") or {}
        node = (pod.get("spec") or {}).get("nodeName")
        endpoints = [
            f"http://{svc['metadata']['name']}.{ns}.svc"
            for svc in services
            if svc.get("metadata", {}).get("namespace", "default") == ns
            and (selector := (svc.get("spec") or {}).get("selector"))
            and all(labels.get(k) == v for k, v in selector.items())
        ]
        found = workloads.get(name, ServiceDef(name))
        workloads[name] = replace(
            found,
            hosts=tuple(dict.fromkeys([*found.hosts, *([str(node)] if node else [])])),
            endpoints=tuple(dict.fromkeys([*found.endpoints, *endpoints])),
        )
    known = {d.name for d in defs}
    unlisted = {h for w in workloads.values() for h in w.hosts} - known
    return combine(defs, [ServiceDef(h, kind="node") for h in sorted(unlisted)], workloads.values())


def _host(instance: str) -> str:
    return instance.rsplit("@", 1)[-1].split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]


def from_prometheus_targets(docs: Iterable[Any]) -> list[ServiceDef]:
    """A service per scraped `service` (or `job`), on the host or node it is scraped on."""
    defs: dict[str, ServiceDef] = {}
    hosts: dict[str, ServiceDef] = {}
    for doc in docs:
        targets = (doc.get("data") or {}).get("activeTargets", []) if isinstance(doc, dict) else []
        for target in targets:
            labels = target.get("labels") or {}
            found = target.get("discoveredLabels") or {}
            name = labels.get("service") or labels.get("job")
            if not name:
                continue
            host = (
                labels.get("node")
                or labels.get("kubernetes_node")
                or found.get("__meta_kubernetes_pod_node_name")
                or _host(str(labels.get("instance", "")))
            )
            current = defs.get(name, ServiceDef(str(name)))
            if host and host != name:
                hosts.setdefault(host, ServiceDef(str(host), kind="host"))
                # sorted: Prometheus lists targets in no fixed order
                current = replace(current, hosts=tuple(sorted({*current.hosts, str(host)})))
            defs[name] = current
    return combine(hosts.values(), defs.values())


def from_service_graph(docs: Iterable[Any]) -> list[ServiceDef]:
    """Each client depends on the servers it sends requests to."""
    needs: dict[str, set[str]] = {}
    for doc in docs:
        result = (doc.get("data") or {}).get("result", []) if isinstance(doc, dict) else []
        for row in result:
            metric = row.get("metric") or {}
            client, server = metric.get("client"), metric.get("server")
            value = (row.get("value") or [0, "0"])[-1]
            if not client or not server or client == server or float(value) <= 0:
                continue
            needs.setdefault(str(client), set()).add(str(server))
            needs.setdefault(str(server), set())
    return [ServiceDef(n, depends_on=tuple(sorted(deps))) for n, deps in sorted(needs.items())]


def combine(*groups: Iterable[ServiceDef]) -> list[ServiceDef]:
    """One service per name: the first source's kind, zone and owner; the union of
    dependencies, hosts and endpoints."""
    out: dict[str, ServiceDef] = {}
    for group in groups:
        for d in group:
            was = out.get(d.name)
            if was is None:
                out[d.name] = d
                continue
            out[d.name] = replace(
                was,
                kind=was.kind if was.kind != "service" else d.kind,
                zone=was.zone or d.zone,
                depends_on=tuple(dict.fromkeys([*was.depends_on, *d.depends_on])),
                hosts=tuple(dict.fromkeys([*was.hosts, *d.hosts])),
                endpoints=tuple(dict.fromkeys([*was.endpoints, *d.endpoints])),
            )
    return sorted(out.values(), key=lambda d: d.name)


def discover(
    kubernetes: Iterable[str] = (),
    prometheus_targets: Iterable[str] = (),
    service_graph: Iterable[str] = (),
) -> list[ServiceDef]:
    """Every source read and combined (Kubernetes first: its kinds and zones win)."""
    kube_paths = ("/api/v1/nodes", "/api/v1/pods", "/api/v1/services")
    groups = [from_kubernetes(read(src, kube_paths)) for src in kubernetes]
    groups += [
        from_prometheus_targets(read(src, ("/api/v1/targets",), {"state": "active"}))
        for src in prometheus_targets
    ]
    groups += [
        from_service_graph(read(src, ("/api/v1/query",), {"query": SERVICE_GRAPH_QUERY}))
        for src in service_graph
    ]
    return combine(*groups)
