"""Candidates through indexes: an alert is scored only against incidents that share
something with it (its graph neighbourhood, host, entity or words), never against every
open incident, and the grouping stays what the features decide."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from baton.correlate.candidates import ALIKE, CandidateIndex
from baton.correlate.config import CorrelationConfig
from baton.correlate.grouping import Grouper, tokens
from baton.correlate.topology import load_topology
from baton.harness.correlate_scale import catalogue, seed_background
from baton.store.models import Event, Incident, IncidentTerm


def alert(service, name="HighErrorRate", severity="critical", **labels):
    return {"labels": {"alertname": name, "service": service, "severity": severity, **labels}}


def with_background(platform, count):
    platform.config.declare_services(catalogue(count))
    with platform.db.session() as s:
        return set(seed_background(s, count, platform.clock.now()))


def lookup(platform, event_id):
    with platform.db.session() as s:
        event = s.get(Event, event_id)
        grouper = Grouper(s, load_topology(s), platform.clock.now(), CorrelationConfig())
        return grouper._lookup(event)


def latest_event(platform, service):
    with platform.db.session() as s:
        query = select(Event).where(Event.service == service).order_by(Event.id.desc())
        event = s.scalars(query).first()
        return event.id, event.incident_id


def test_only_the_neighbourhood_is_scored_beside_many_open_incidents(platform):
    background = with_background(platform, 30)
    platform.drain.ingest_alertmanager([alert("db")])
    platform.clock.advance(30)
    platform.drain.ingest_alertmanager([alert("orders")])
    _, db_incident = latest_event(platform, "db")
    orders_event, orders_incident = latest_event(platform, "orders")
    assert orders_incident == db_incident  # orders needs db: it joined db's incident
    found = lookup(platform, orders_event)
    assert db_incident in found
    assert not found & background  # none of the 30 unrelated incidents was looked at
    with platform.db.session() as s:
        reasons = s.get(Incident, db_incident).grouping
    assert any(r["rule"] == "downstream" and r["service"] == "orders" for r in reasons)


def test_an_uncatalogued_alert_finds_its_like_through_the_word_index(platform):
    with_background(platform, 40)  # 20 uncatalogued incidents sharing words with it
    first = alert("billing-legacy", "QueueStuck", job="billing-legacy", team="payments")
    platform.drain.ingest_alertmanager([first])
    platform.clock.advance(20)
    second = alert("billing-legacy2", "QueueStuck", job="billing-legacy", team="payments")
    platform.drain.ingest_alertmanager([second])
    _, one = latest_event(platform, "billing-legacy")
    event_id, two = latest_event(platform, "billing-legacy2")
    assert one == two  # alike in name and labels: grouped by similarity
    with platform.db.session() as s:
        index = CandidateIndex(s, platform.clock.now(), timedelta(minutes=15))
        common = tokens("HighErrorRate", {"job": "legacy", "team": "ops"}, {})
        assert len(index.by_words(common, platform.clock.now() - timedelta(minutes=5))) <= ALIKE
        rule = s.get(Incident, one).grouping[-1]["rule"]
    assert rule == "similarity"
    assert one in lookup(platform, event_id)


def test_a_merged_incident_s_words_find_the_one_it_joined(platform):
    platform.drain.ingest_alertmanager([alert("ghost-a", "FooStalled", job="ghost")])
    platform.clock.advance(600)  # too late to be alike: a second incident
    platform.drain.ingest_alertmanager([alert("ghost-b", "BarBroken", job="other")])
    _, a = latest_event(platform, "ghost-a")
    _, b = latest_event(platform, "ghost-b")
    assert a != b
    with platform.db.session() as s:
        index = CandidateIndex(s, platform.clock.now(), timedelta(minutes=15))
        index.moved(b, a)
        s.flush()
        owners = set(s.scalars(select(IncidentTerm.incident_id).distinct()))
        assert owners == {a}
        words = s.scalar(select(func.count()).where(IncidentTerm.incident_id == a))
        assert words >= len(tokens("BarBroken", {"job": "other"}, {}))


def test_a_node_s_incident_takes_only_the_pods_placed_on_it(platform):
    from baton.correlate.topology import ServiceDef

    platform.config.declare_services(
        [
            ServiceDef("z1", kind="zone"),
            ServiceDef("n1", kind="node", zone="z1"),
            ServiceDef("n2", kind="node", zone="z1"),
            ServiceDef("api", hosts=("n1", "n2")),
        ]
    )
    node = {"labels": {"alertname": "NodeDiskStalled", "node": "n1", "severity": "critical"}}
    platform.drain.ingest_alertmanager([node])
    platform.clock.advance(20)
    platform.drain.ingest_alertmanager([alert("api", node="n1", pod="api-1")])
    platform.clock.advance(60)
    platform.drain.ingest_alertmanager([alert("api", "HighLatency", node="n2", pod="api-2")])
    with platform.db.session() as s:
        rows = s.execute(select(Event.host, Event.incident_id).where(Event.service == "api"))
        placed = dict(rows.all())
    assert placed["n1"] != placed["n2"]  # the pod on n2 is not the stalled n1's trouble
