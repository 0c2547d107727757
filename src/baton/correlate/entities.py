"""What an alert is about: its entity (workload, pod, node, zone, endpoint, certificate,
queue, database), the service that is in trouble, where it runs, and what reported it.

Exporters label alerts with themselves: kube-state-metrics alerts say
`service="kube-state-metrics"` with the workload in `namespace`/`pod`/`deployment`,
cAdvisor's say `service="kubelet"`, node-exporter's put the node in `instance`, probes
carry a URL and no service. Taking the `service` label at its word blames the exporter.
So the subject is read by rules, tried in order (docs/correlation.md lists them):

1. OpenTelemetry resource attributes (`service_name`, `service.name`, ...).
2. A `service` label that is not an exporter's name.
3. Kubernetes workload labels: `deployment`, `statefulset`, `daemonset`, `cronjob`,
   `job_name`; then `pod` (the replica set hash or ordinal stripped); then `app` /
   `app_kubernetes_io_name` / `k8s_app`.
4. Node alerts (node-exporter's job, or a `node` label with no pod): the node, from
   `node`, `nodename` or `instance` (port stripped).
5. Datastore and queue exporters (postgres, mysql, redis, kafka, mongodb, rabbitmq,
   elasticsearch, memcached): the host part of `instance`; kafka's `topic` is kept as
   the queue entity.
6. Probes whose `instance` / `target` is a URL: the endpoint (a certificate when the
   alert is about TLS), and the catalogue service declaring that endpoint.
7. A `job` label that is not an exporter's name.

Rules from `entities.rules` in correlation.yaml are tried before these (`entities.defaults:
false` drops the built-in ones); `entities.exporters` lists exporter names (anchored
regexes). When nothing applies, the event keeps the service the receiver gave it (its
`service` or `job` label): an unknown convention degrades to that, never to an error.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from baton.correlate.matchers import match_all, parse_all
from baton.correlate.topology import Topology
from baton.store.models import Event

DEFAULT_EXPORTERS = (
    "kube-state-metrics",
    "kubelet",
    "cadvisor",
    "node(-exporter)?",
    "blackbox(-exporter)?",
    "prometheus(-.*)?",
    "alertmanager",
    "otel(-collector)?",
    "apiserver",
    ".*-exporter",
    "mysqld",
    "pushgateway",
)
_DATASTORES = (
    "postgres|postgresql|mysql|mysqld|redis|kafka|mongodb|rabbitmq|elasticsearch|memcached"
)
_POD_SUFFIX = re.compile(r"-(?:[a-z0-9]{6,10}-[a-z0-9]{5}|[a-z0-9]{5}|\d+)$")
_TLS = re.compile(r"cert|ssl|tls", re.IGNORECASE)


class EntityRule(BaseModel):
    """A site's own convention: when the matchers hold, the first label present names
    the entity (`strip`, a regex, is cut from it); the entity is also the service unless
    `service_from` names other labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str = Field(pattern=r"^[a-z][a-z_-]{0,31}$")
    when: tuple[str, ...] = ()
    name_from: tuple[str, ...] = Field(min_length=1)
    strip: str | None = None
    service_from: tuple[str, ...] = ()
    host_from: tuple[str, ...] = ()

    @field_validator("when")
    @classmethod
    def _parses(cls, texts: tuple[str, ...]) -> tuple[str, ...]:
        parse_all(texts)
        return texts

    @field_validator("strip")
    @classmethod
    def _regex(cls, text: str | None) -> str | None:
        if text is not None:
            re.compile(text)
        return text


class EntitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exporters: list[str] = Field(default_factory=lambda: list(DEFAULT_EXPORTERS))
    rules: list[EntityRule] = Field(default_factory=list)
    defaults: bool = True

    @field_validator("exporters")
    @classmethod
    def _regexes(cls, items: list[str]) -> list[str]:
        for item in items:
            re.compile(item)
        return items


@dataclass(frozen=True)
class Subject:
    """What one alert is about."""

    entity: str | None  # "kind:name"
    service: str | None  # the service in trouble (a catalogue name when one matches)
    host: str | None  # the node or machine it runs on, when the labels say
    reporter: str | None  # the exporter or job that reported it
    rule: str  # which rule decided, for people reading why


class Resolver:
    """Applies the rules to an alert's labels against one catalogue."""

    def __init__(self, settings: EntitySettings, graph: Topology) -> None:
        self.settings, self.graph = settings, graph
        self._rules = [(r, parse_all(r.when)) for r in settings.rules]

    @cached_property
    def _exporter(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{e})" for e in self.settings.exporters) or "(?!)")

    def is_exporter(self, name: str | None) -> bool:
        return bool(name) and self._exporter.fullmatch(str(name).lower()) is not None

    def resolve(self, labels: dict[str, Any], fallback: str | None) -> Subject:
        """The alert's subject; `fallback` (the receiver's service) when nothing applies."""
        labels = {str(k): str(v) for k, v in labels.items()}
        reporter = next(
            (labels[k] for k in ("service", "job") if self.is_exporter(labels.get(k))),
            labels.get("job"),
        )
        try:
            found = self._custom(labels) or (
                self._builtin(labels) if self.settings.defaults else None
            )
        except (ValueError, TypeError, re.error):  # a site rule that does not fit: today's way
            found = None
        if found is None:
            return Subject(
                None, fallback, labels.get("node") or labels.get("host"), reporter, "none"
            )
        kind, name, service, host, rule = found
        return Subject(f"{kind}:{name}", self._catalogued(service), host, reporter, rule)

    def _catalogued(self, name: str | None) -> str | None:
        """The catalogue's name for it: as is, or with a namespace prefix cut."""
        if not name or self.graph.known(name):
            return name
        return name.rsplit("/", 1)[-1]

    def _custom(self, labels: dict[str, str]) -> tuple[str, str, str, str | None, str] | None:
        for n, (rule, matchers) in enumerate(self._rules):
            if matchers and not match_all(matchers, labels):
                continue
            name = _first(labels, rule.name_from)
            if not name:
                continue
            if rule.strip:
                name = re.sub(rule.strip, "", name) or name
            service = _first(labels, rule.service_from) or name
            host = _first(labels, rule.host_from) or labels.get("node")
            return rule.kind, name, service, host, f"entities.rules.{n}"
        return None

    def _builtin(self, labels: dict[str, str]) -> tuple[str, str, str, str | None, str] | None:
        node = labels.get("node") or labels.get("nodename")
        ns = labels.get("namespace") or labels.get("service_namespace")
        otel = _first(labels, ("service_name", "service.name", "k8s_deployment_name"))
        if otel:
            return "workload", _in(ns, otel), otel, node, "opentelemetry"
        service = labels.get("service")
        if service and not self.is_exporter(service):
            return "service", service, service, node or labels.get("host"), "service label"
        workload = _first(labels, ("deployment", "statefulset", "daemonset", "cronjob", "job_name"))
        if workload:
            return "workload", _in(ns, workload), workload, node, "kubernetes workload"
        pod = labels.get("pod")
        if pod:
            owner = self._pod_owner(pod, labels.get("container"))
            return "pod", _in(ns, pod), owner, node, "kubernetes pod"
        app = _first(labels, ("app_kubernetes_io_name", "app", "k8s_app"))
        if app:
            return "workload", _in(ns, app), app, node, "app label"
        job = (labels.get("job") or "").lower()
        instance = labels.get("instance") or labels.get("target") or ""
        if node or re.fullmatch(r"node(-exporter)?", job):
            name = self._named(node or _host(instance), short=False)
            if name:
                return "node", name, name, name, "node alert"
        if re.search(_DATASTORES, job + " " + (service or "")):
            host = _host(instance)
            name = None if _is_ip(host) or not host else self._named(host, short=True)
            if labels.get("topic"):
                return "queue", labels["topic"], name or labels["topic"], None, "queue exporter"
            if name:
                return "database", name, name, None, "datastore exporter"
        if "://" in instance:
            kind = "certificate" if _TLS.search(labels.get("alertname", "")) else "endpoint"
            owner = self.graph.by_endpoint(instance) or _host(instance)
            return kind, instance, owner, None, "probe target"
        job_label = labels.get("job")
        if job_label and not self.is_exporter(job_label):
            return "service", job_label, job_label, labels.get("host"), "job label"
        return None

    def _named(self, host: str, short: bool) -> str:
        """A host as the catalogue names it: in full, or up to its first dot
        ("cart-redis.shop.svc" -> "cart-redis"); unknown to it: the short form if `short`."""
        first = host.split(".", 1)[0]
        if self.graph.known(host) or _is_ip(host):
            return host
        if self.graph.known(first):
            return first
        return first if short else host

    def _pod_owner(self, pod: str, container: str | None) -> str:
        """The workload a pod belongs to: its name without the replica suffixes, checked
        against the catalogue (a container named like a known service wins)."""
        name = pod
        for _ in range(2):
            if self.graph.known(name):
                return name
            name = _POD_SUFFIX.sub("", name)
        if container and self.graph.known(container):
            return container
        return name


def _first(labels: dict[str, str], keys: Iterable[str]) -> str | None:
    return next((labels[k] for k in keys if labels.get(k)), None)


def _in(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _host(value: str) -> str:
    """The host part of an instance: scheme, user, port and path cut."""
    rest = value.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    return rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def resolve_events(events: Iterable[Event], settings: EntitySettings, graph: Topology) -> None:
    """Give each event not yet resolved its subject (entity, service, host, reporter)."""
    resolver: Resolver | None = None
    for event in events:
        if event.entity is not None:
            continue  # resolved before; one that matched no rule is read again (cheap, same)
        resolver = resolver or Resolver(settings, graph)
        subject = resolver.resolve(event.labels or {}, event.service)
        event.entity = (subject.entity or "")[:256] or None
        event.service = (subject.service or event.service or "")[:128] or None
        event.host = (subject.host or "")[:256] or None
        event.reporter = (subject.reporter or "")[:128] or None


def labels_subject(
    labels: dict[str, Any], graph: Topology, settings: EntitySettings | None = None
) -> Subject:
    """One alert's subject with the default rules (for tools and tests)."""
    return Resolver(settings or EntitySettings(), graph).resolve(labels, labels.get("service"))
