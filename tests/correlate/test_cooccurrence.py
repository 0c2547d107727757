"""Learned co-occurrence: a person's merge teaches future grouping (and fades with its
half-life); a split stops the graph from joining those services again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from baton.correlate import feedback
from baton.correlate.cooccurrence import LearnSettings, learn
from baton.correlate.topology import ServiceDef, load_topology
from baton.kernel.audit import Actor
from baton.store.models import Event, Incident, IncidentTerm

OPS = Actor("ana", "human")


def alert(service, resolved_at=None):
    out = {"labels": {"alertname": "HighErrorRate", "service": service, "severity": "critical"}}
    if resolved_at is not None:
        out["endsAt"] = resolved_at.isoformat()
    return out


def incident_of(platform, service):
    with platform.db.session() as s:
        query = select(Event.incident_id).where(Event.service == service).order_by(Event.id.desc())
        return s.scalars(query).first()


def fire_and_clear(platform, *services):
    """Both fire together, then resolve, and the correlation window passes."""
    platform.drain.ingest_alertmanager([alert(s) for s in services])
    ids = [incident_of(platform, s) for s in services]
    platform.clock.advance(60)
    platform.drain.ingest_alertmanager([alert(s, platform.clock.now()) for s in services])
    platform.clock.advance(1200)
    return ids


@pytest.fixture
def estate(platform):
    """billing and ledger do not depend on one another; orders needs db."""
    platform.config.declare_services(
        [
            ServiceDef("billing"),
            ServiceDef("ledger"),
            ServiceDef("db", kind="database"),
            ServiceDef("orders", depends_on=("db",)),
        ]
    )
    return platform


def merge(platform, target, source):
    with platform.db.session() as s:
        graph = load_topology(s)
        feedback.merge(s, target, [source], graph, OPS, "one payment outage", platform.clock.now())


def test_a_merge_teaches_future_grouping_and_fades(estate):
    billing, ledger = fire_and_clear(estate, "billing", "ledger")
    assert billing != ledger  # nothing in the graph joins them
    merge(estate, billing, ledger)
    with estate.db.session() as s:  # the merged incident's words now find the target
        owners = set(s.scalars(select(IncidentTerm.incident_id).distinct()))
    assert ledger not in owners and billing in owners
    again = fire_and_clear(estate, "billing", "ledger")
    assert again[0] == again[1]  # learned from the merge
    with estate.db.session() as s:
        reason = next(r for r in s.get(Incident, again[0]).grouping if r["rule"] == "learned")
    assert "1 merges" in reason["detail"] and "ledger and billing" in reason["detail"]
    estate.clock.advance(timedelta(days=15))  # past the 14-day half-life: below the link
    later = fire_and_clear(estate, "billing", "ledger")
    assert later[0] != later[1]


def test_a_split_stops_the_graph_joining_those_services(estate):
    db, orders = fire_and_clear(estate, "db", "orders")
    assert db == orders  # orders needs db
    with estate.db.session() as s:
        graph = load_topology(s)
        moved = list(s.scalars(select(Event.id).where(Event.service == "orders")))
        why = "orders had its own bad deploy"
        feedback.split(s, db, moved, graph, OPS, why, estate.clock.now())
    again = fire_and_clear(estate, "db", "orders")
    assert again[0] != again[1]


def test_history_alone_needs_several_incidents_and_decays(estate):
    with estate.db.session() as s:
        assert learn(s, estate.clock.now(), LearnSettings()).weights == {}
    for _ in range(4):
        fire_and_clear(estate, "db", "orders")
    with estate.db.session() as s:
        now = estate.clock.now()
        weight = learn(s, now, LearnSettings()).weight("db", "orders")
        assert 0.9 < weight <= 1.0  # four incidents together, at 0.25 each, a little decayed
        faded = learn(s, now + timedelta(days=28), LearnSettings()).weight("db", "orders")
        assert faded == pytest.approx(weight / 4, rel=0.01)  # two half-lives
        assert learn(s, now, LearnSettings(enabled=False)).weights == {}
