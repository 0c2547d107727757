"""What an alert is about, read from the labels real exporters send; where things run;
and grouping that reasons over shared nodes, zones and shared services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from baton.correlate.config import parse_config
from baton.correlate.entities import labels_subject
from baton.correlate.topology import ServiceDef, Topology, load_catalogue
from baton.store.models import Event, Incident

CATALOGUE = [
    {"name": "zone-a", "kind": "zone"},
    {"name": "zone-b", "kind": "zone"},
    {"name": "ip-10-0-1-7.ec2.internal", "kind": "node", "zone": "zone-a"},
    {"name": "ip-10-0-1-8.ec2.internal", "kind": "node", "zone": "zone-a"},
    {"name": "ip-10-0-2-9.ec2.internal", "kind": "node", "zone": "zone-b"},
    {"name": "coredns", "kind": "dns", "shared": True, "endpoints": ["dns://10.96.0.10"]},
    {"name": "cart-redis", "kind": "database", "hosts": ["ip-10-0-2-9.ec2.internal"]},
    {"name": "cart", "kind": "api", "hosts": ["ip-10-0-1-7.ec2.internal"]},
    {"name": "quote", "kind": "api", "hosts": ["ip-10-0-1-7.ec2.internal"]},
    {
        "name": "ads",
        "kind": "api",
        "hosts": ["ip-10-0-1-7.ec2.internal", "ip-10-0-2-9.ec2.internal"],
    },
    {"name": "mail", "kind": "api", "hosts": ["ip-10-0-2-9.ec2.internal"]},
    {
        "name": "frontend",
        "kind": "web",
        "hosts": ["ip-10-0-1-8.ec2.internal"],
        "depends_on": ["cart"],
        "endpoints": ["https://shop.example.com/"],
    },
]
NODE = "ip-10-0-1-7.ec2.internal"
CONFIG = {"transient_hold_s": 60, "impact_matchers": [['severity=~"critical|error"']]}


@pytest.fixture
def graph() -> Topology:
    return Topology({d.name: d for d in load_catalogue(CATALOGUE)})


@pytest.mark.parametrize(
    ("labels", "entity", "service", "host", "reporter"),
    [
        (  # kube-state-metrics: the workload is only in pod / namespace
            {
                "alertname": "KubePodCrashLooping",
                "service": "kube-state-metrics",
                "job": "kube-state-metrics",
                "namespace": "shop",
                "pod": "cart-7d9f8b6c5d-x2k4z",
            },
            "pod:shop/cart-7d9f8b6c5d-x2k4z",
            "cart",
            None,
            "kube-state-metrics",
        ),
        (
            {
                "alertname": "KubeDeploymentReplicasMismatch",
                "service": "kube-state-metrics",
                "namespace": "shop",
                "deployment": "quote",
            },
            "workload:shop/quote",
            "quote",
            None,
            "kube-state-metrics",
        ),
        (  # cAdvisor via the kubelet: the pod and the node it runs on
            {
                "alertname": "CPUThrottlingHigh",
                "service": "kubelet",
                "job": "kubelet",
                "namespace": "shop",
                "pod": "ads-5f6d7c8b9-abcde",
                "node": NODE,
            },
            "pod:shop/ads-5f6d7c8b9-abcde",
            "ads",
            NODE,
            "kubelet",
        ),
        (  # node-exporter: the node is in instance, with a port
            {
                "alertname": "NodeDiskIOSaturation",
                "service": "node-exporter",
                "job": "node-exporter",
                "instance": f"{NODE}:9100",
            },
            f"node:{NODE}",
            NODE,
            NODE,
            "node-exporter",
        ),
        (  # a probe with no service: the catalogue's endpoint names it
            {
                "alertname": "ProbeFailed",
                "job": "blackbox",
                "instance": "https://shop.example.com/health",
            },
            "endpoint:https://shop.example.com/health",
            "frontend",
            None,
            "blackbox",
        ),
        (
            {
                "alertname": "SSLCertExpiringSoon",
                "job": "blackbox",
                "instance": "https://shop.example.com",
            },
            "certificate:https://shop.example.com",
            "frontend",
            None,
            "blackbox",
        ),
        (
            {"alertname": "ProbeFailed", "job": "blackbox", "instance": "dns://10.96.0.10:53"},
            "endpoint:dns://10.96.0.10:53",
            "coredns",
            None,
            "blackbox",
        ),
        (  # a datastore exporter names itself; the database is the instance's host
            {
                "alertname": "RedisRejectedConnections",
                "service": "redis-exporter",
                "job": "redis-exporter",
                "instance": "cart-redis.shop.svc:6379",
            },
            "database:cart-redis",
            "cart-redis",
            None,
            "redis-exporter",
        ),
        (
            {
                "alertname": "KafkaConsumerGroupLag",
                "job": "kafka-exporter",
                "instance": "orders-kafka.shop.svc:9092",
                "topic": "orders-events",
            },
            "queue:orders-events",
            "orders-kafka",
            None,
            "kafka-exporter",
        ),
        (  # OpenTelemetry resource attributes
            {
                "alertname": "ErrorBudgetBurn",
                "service_name": "mail",
                "service_namespace": "shop",
                "job": "otel",
            },
            "workload:shop/mail",
            "mail",
            None,
            "otel",
        ),
        (  # a service label that is not an exporter is taken at its word
            {"alertname": "HighErrorRate", "service": "cart", "job": "cart"},
            "service:cart",
            "cart",
            None,
            "cart",
        ),
    ],
)
def test_the_subject_comes_from_real_exporter_labels(
    graph, labels, entity, service, host, reporter
):
    subject = labels_subject({"severity": "critical", **labels}, graph)
    assert (subject.entity, subject.service, subject.host, subject.reporter) == (
        entity,
        service,
        host,
        reporter,
    )


def test_an_unknown_convention_keeps_todays_service_and_never_fails(graph):
    subject = labels_subject({"alertname": "Weird", "service": "kube-state-metrics"}, graph)
    assert subject.entity is None and subject.service == "kube-state-metrics"
    assert labels_subject({}, graph).service is None  # nothing at all: still no error


def test_a_site_rule_comes_first_and_a_bad_one_is_refused_naming_the_field(graph):
    cfg = parse_config(
        {
            "entities": {
                "rules": [
                    {
                        "kind": "workload",
                        "when": ['team="pay"'],
                        "name_from": ["component"],
                        "strip": "-v[0-9]+$",
                    }
                ]
            }
        }
    )
    subject = labels_subject(
        {"alertname": "X", "team": "pay", "component": "ledger-v2", "service": "ledger"},
        graph,
        cfg.entities,
    )
    assert (subject.entity, subject.service, subject.rule) == (
        "workload:ledger",
        "ledger",
        "entities.rules.0",
    )
    with pytest.raises(ValueError, match=r"entities\.rules\.0\.when"):
        parse_config({"entities": {"rules": [{"kind": "x", "when": ["nope"], "name_from": ["a"]}]}})


def test_the_graph_knows_where_things_run_and_what_is_shared(graph):
    assert graph.hops("cart", NODE) == 1 and graph.hops("cart", "zone-a") == 2
    assert "coredns" in graph.upstream("frontend")  # shared: needed by every service
    assert graph.infra_edge("cart", NODE) and not graph.infra_edge("frontend", "cart")
    assert graph.dependents(NODE) == {"cart", "quote", "ads"}
    assert graph.by_endpoint("https://SHOP.example.com:443/x") == "frontend"
    with pytest.raises(ValueError, match="unknown service"):
        load_catalogue([{"name": "a", "hosts": ["nowhere"]}])


def _setup(platform, config=CONFIG):
    platform.config.declare_services(load_catalogue(CATALOGUE))
    platform.config.correlation = parse_config(config)


def _alert(labels, at, severity="critical"):
    return {"labels": {"severity": severity, **labels}, "startsAt": at.isoformat()}


def _run(platform, minutes):
    for _ in range(minutes * 2):
        platform.clock.advance(timedelta(seconds=30))
        platform.scheduler.tick()


def _open(platform):
    with platform.db.session() as s:
        found = list(s.scalars(select(Incident).where(Incident.status == "open")))
        members = {
            i.id: sorted(
                e.service for e in s.scalars(select(Event).where(Event.incident_id == i.id))
            )
            for i in found
        }
        return [(i.origin_service, members[i.id], i.title, i.grouping) for i in found]


def test_a_stalled_node_found_late_takes_over_its_workloads_incidents(platform):
    _setup(platform)
    t0 = platform.clock.now()
    platform.drain.ingest_alertmanager(
        [
            _alert({"alertname": "HighLatency", "service": s, "job": s}, t0)
            for s in ("cart", "quote", "ads")
        ]
    )
    _run(platform, 3)  # three unrelated services on one node: three incidents so far
    late = _alert(
        {
            "alertname": "NodeDiskIOSaturation",
            "service": "node-exporter",
            "job": "node-exporter",
            "instance": f"{NODE}:9100",
        },
        t0 - timedelta(minutes=1),
    )
    platform.drain.ingest_alertmanager([late])  # its rule's `for: 4m` made it late
    _run(platform, 2)
    [(origin, members, title, grouping)] = _open(platform)
    assert origin == NODE and members == sorted(["ads", "cart", "quote", NODE])
    assert title == f"NodeDiskIOSaturation on {NODE} (+3 related services)"
    rules = {r["rule"] for r in grouping}
    assert {"upstream-of-origin", "taken-over"} <= rules
    assert any(NODE in r["detail"] for r in grouping if r["rule"] == "taken-over")


def test_a_dns_outage_whose_alert_comes_last_is_the_origin(platform):
    _setup(platform)
    t0 = platform.clock.now()
    platform.drain.ingest_alertmanager(
        [_alert({"alertname": "HighErrorRate", "service": s}, t0) for s in ("cart", "mail", "ads")]
    )
    _run(platform, 3)
    probe = {"alertname": "ProbeFailed", "job": "blackbox", "instance": "dns://10.96.0.10:53"}
    platform.drain.ingest_alertmanager([_alert(probe, t0 - timedelta(seconds=30))])
    _run(platform, 2)
    [(origin, members, _, _)] = _open(platform)
    assert origin == "coredns" and members == ["ads", "cart", "coredns", "mail"]


def test_two_unreachable_nodes_of_a_zone_point_to_the_zone(platform):
    _setup(platform)
    t0 = platform.clock.now()
    platform.drain.ingest_alertmanager(
        [
            _alert(
                {"alertname": "KubeNodeUnreachable", "service": "kube-state-metrics", "node": n}, t0
            )
            for n in (NODE, "ip-10-0-1-8.ec2.internal")
        ]
    )
    _run(platform, 3)
    [(origin, _, title, grouping)] = _open(platform)
    assert origin == "zone-a" and title == "2 services failing under zone-a"
    assert any(r["rule"] == "shared-cause" and "zone-a (zone)" in r["detail"] for r in grouping)


def test_services_on_different_nodes_failing_together_stay_apart(platform):
    _setup(platform)
    t0 = platform.clock.now()
    platform.drain.ingest_alertmanager(
        [_alert({"alertname": "HighErrorRate", "service": s}, t0) for s in ("quote", "mail")]
    )
    _run(platform, 3)
    assert sorted(m for _, m, _, _ in _open(platform)) == [["mail"], ["quote"]]


def test_a_low_severity_observation_waits_and_joins_when_trouble_opens_there(platform):
    _setup(platform)
    t0 = platform.clock.now()
    node = "ip-10-0-2-9.ec2.internal"
    clock_skew = {
        "alertname": "NodeClockNotSynchronising",
        "service": "node-exporter",
        "job": "node-exporter",
        "instance": f"{node}:9100",
    }
    platform.drain.ingest_alertmanager([_alert(clock_skew, t0, severity="warning")])
    _run(platform, 3)
    assert _open(platform) == []  # a warning with no sign of impact pages nobody
    down = {**clock_skew, "alertname": "NodeFilesystemAlmostOutOfSpace"}
    platform.drain.ingest_alertmanager([_alert(down, t0 + timedelta(minutes=3))])
    _run(platform, 2)
    [(origin, members, _, grouping)] = _open(platform)
    assert origin == node and members == [node, node]
    assert any(r["rule"] == "observation" for r in grouping)


def test_without_impact_matchers_every_alert_may_open_as_before(platform):
    _setup(platform, {"transient_hold_s": 0})
    platform.drain.ingest_alertmanager(
        [_alert({"alertname": "Minor", "service": "mail"}, platform.clock.now(), "warning")]
    )
    _run(platform, 1)
    assert [m for _, m, _, _ in _open(platform)] == [["mail"]]
    assert ServiceDef("x").placement() == {}


def test_a_fresh_fault_downstream_of_a_long_standing_symptom_opens_its_own_incident(platform):
    _setup(platform)
    t0 = platform.clock.now()
    node_alert = {
        "alertname": "NodeDiskIOSaturation",
        "service": "node-exporter",
        "job": "node-exporter",
        "instance": NODE,
    }
    platform.drain.ingest_alertmanager(
        [_alert(node_alert, t0), _alert({"alertname": "HighLatency", "service": "cart"}, t0)]
    )
    _run(platform, 8)
    later = platform.clock.now()
    platform.drain.ingest_alertmanager(
        [_alert({"alertname": "HighErrorRate", "service": "frontend"}, later)]
    )
    _run(platform, 3)
    found = sorted((o, m) for o, m, _, _ in _open(platform))
    assert found == [("frontend", ["frontend"]), (NODE, ["cart", NODE])]
