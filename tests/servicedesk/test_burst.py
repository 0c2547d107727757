"""A burst of similar tickets is correlated as one Event: it opens an incident, and the
tickets of the burst (and later ones like them) are linked to it (default settings:
three tickets within 30 minutes; SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from baton.kernel.audit import records
from baton.servicedesk import burst
from baton.store.models import Event, Incident

REPORTS = [
    ("ann", "VPN down", "the vpn connection drops at login, cannot reach the office"),
    ("bob", "cannot connect to VPN", "vpn connection fails since this morning"),
    ("cy", "VPN connection broken", "my vpn connection keeps failing"),
    ("dee", "vpn again", "vpn connection failing for me too"),
]


def test_a_burst_opens_one_incident_through_correlation_and_links_its_tickets(platform, clock):
    p = platform
    first = [p.desk.file(*r) for r in REPORTS[:2]]
    with p.db.session() as s:
        assert s.scalars(select(Event).where(Event.name == burst.NAME)).all() == []
    clock.advance(timedelta(minutes=5))
    third = p.desk.file(*REPORTS[2])
    assert third.incident_id is not None
    with p.db.session() as s:
        incident = s.get(Incident, third.incident_id)
        events = s.scalars(select(Event).where(Event.name == burst.NAME)).all()
        assert [e.incident_id for e in events] == [incident.id]
        assert events[0].source == "servicedesk" and events[0].suppressed_by is None
        for t in first:
            assert p.desk.show(t.id)["incident_id"] == incident.id
        assert any(r.action == "ticket.burst" for r in records(s, subject=f"ticket:{third.id}"))
    clock.advance(timedelta(minutes=1))
    fourth = p.desk.file(*REPORTS[3])  # the same burst: joins, no second incident
    assert fourth.incident_id == incident.id
    with p.db.session() as s:
        assert len(s.scalars(select(Incident)).all()) == 1


def test_unlike_or_spread_out_tickets_open_nothing(platform, clock):
    p = platform
    p.desk.file("ann", "VPN down", "the vpn connection drops")
    p.desk.file("bob", "wifi in room 4", "the network in the meeting room is slow")
    clock.advance(timedelta(hours=1))  # outside the window
    p.desk.file("cy", "VPN connection down", "vpn connection drops")
    late = p.desk.file("dee", "printer", "the network printer jams on every job")
    assert late.incident_id is None
    with p.db.session() as s:
        assert s.scalars(select(Incident)).all() == []


def test_similarity_is_word_overlap_without_filler():
    assert burst.similar({"vpn", "connection"}, {"vpn", "connection", "fails"}, 0.5)
    assert not burst.similar({"vpn"}, {"printer"}, 0.1)
    assert not burst.similar(set(), set(), 0.1)
