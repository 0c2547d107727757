"""Suppression and correlation through a running platform: what pages, what joins which
incident and why, and people's corrections kept as feedback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from baton.api.app import create_app
from baton.correlate.config import parse_config
from baton.correlate.silences import MaintenanceIn, SilenceIn, create_silence, create_window
from baton.correlate.topology import ServiceDef
from baton.govern.rbac import Role, create_token
from baton.kernel.audit import Actor
from baton.store.models import AuditRecord, CorrelationFeedback, Event, Incident

OPS = Actor("ana", "human")


def fire(platform, service, name="HighErrorRate", severity="critical", resolved=False, **extra):
    alert = {"labels": {"alertname": name, "service": service, "severity": severity, **extra}}
    if resolved:
        alert["endsAt"] = platform.clock.now().isoformat()
    return alert


def post(platform, *alerts):
    platform.drain.ingest_alertmanager(list(alerts))


def events(platform):
    with platform.db.session() as s:
        return {
            (e.service, e.name, e.id): (e.incident_id, e.suppressed_by)
            for e in s.scalars(select(Event).order_by(Event.id))
        }


def incidents(platform):
    with platform.db.session() as s:
        return list(s.scalars(select(Incident).order_by(Incident.id)))


def audits(platform, action):
    with platform.db.session() as s:
        return list(s.scalars(select(AuditRecord).where(AuditRecord.action == action)))


@pytest.fixture
def estate(platform):
    """db and cache fail independently; web needs both (their blast radii touch)."""
    platform.config.declare_services(
        [
            ServiceDef("db", kind="database"),
            ServiceDef("cache", kind="cache"),
            ServiceDef("orders", kind="api", depends_on=("db",)),
            ServiceDef("catalog", kind="api", depends_on=("cache",)),
            ServiceDef("web", kind="web", depends_on=("orders", "catalog")),
        ]
    )
    return platform


def test_overlapping_faults_stay_apart_and_say_why(estate):
    post(estate, fire(estate, "db"), fire(estate, "cache"))
    estate.clock.advance(30)
    post(estate, fire(estate, "orders"), fire(estate, "catalog"))
    estate.clock.advance(30)
    post(estate, fire(estate, "web", "HighLatency", "warning"))
    db_inc, cache_inc = incidents(estate)
    assert db_inc.origin_service == "db" and set(db_inc.services) >= {"db", "orders"}
    assert cache_inc.origin_service == "cache" and set(cache_inc.services) == {
        "cache",
        "catalog",
    }
    joined = {r["service"]: r for r in db_inc.grouping + cache_inc.grouping}
    assert joined["orders"]["rule"] == "downstream"
    assert "orders depends on db" in joined["orders"]["detail"]
    assert 0 < joined["orders"]["score"] <= 1
    # web is downstream of both: it joins one of them, never chains the two together
    assert sum("web" in i.services for i in (db_inc, cache_inc)) == 1


def test_silence_mutes_until_it_ends_then_the_alert_pages(estate):
    with estate.db.session() as s:
        silence = create_silence(
            s,
            SilenceIn(
                matchers=['service="db"', 'alertname=~"High.*"'],
                ends_at=estate.clock.now() + timedelta(minutes=10),
                comment="db migration",
            ),
            OPS,
            estate.clock.now(),
        )
        silence_id = silence.id
    post(estate, *[fire(estate, "db")] * 20, fire(estate, "cache"))  # 20 duplicates
    seen = events(estate)
    assert seen[("db", "HighErrorRate", 1)] == (None, f"silence:{silence_id}")
    assert [i.services for i in incidents(estate)] == [["cache"]]
    screened = audits(estate, "events.screened")
    assert len(screened) == 1 and screened[0].inputs["counts"] == {"silence": 1}
    estate.clock.advance(timedelta(minutes=11))
    post(estate, fire(estate, "db"))  # still firing after the silence ended
    estate.scheduler.tick()
    incident_id, why = events(estate)[("db", "HighErrorRate", 1)]
    assert incident_id is not None and why is None


def test_maintenance_window_mutes_matching_alerts(estate):
    with estate.db.session() as s:
        window = create_window(
            s,
            MaintenanceIn(
                name="db patching",
                matchers=['service="db"'],
                starts_at=estate.clock.now() - timedelta(days=7),
                duration_s=3600,
                rrule="FREQ=WEEKLY",
                comment="weekly patching",
            ),
            OPS,
            estate.clock.now(),
        )
    post(estate, fire(estate, "db", "ServiceDown"))
    assert events(estate)[("db", "ServiceDown", 1)] == (None, f"maintenance:{window.id}")
    assert incidents(estate) == []


def test_transient_alert_held_and_resolved_never_pages(estate):
    estate.config.correlation = parse_config({"transient_hold_s": 120})
    post(estate, fire(estate, "db"))
    estate.clock.advance(60)
    estate.scheduler.tick()
    post(estate, fire(estate, "db", resolved=True))
    assert incidents(estate) == []
    assert events(estate)[("db", "HighErrorRate", 1)] == (None, "transient")
    post(estate, fire(estate, "cache"))  # this one lasts
    estate.clock.advance(121)
    estate.scheduler.tick()
    assert [i.services for i in incidents(estate)] == [["cache"]]


def test_flapping_alert_stops_opening_incidents(estate):
    estate.config.correlation = parse_config({"flap": {"window_s": 1800, "min_firings": 3}})
    for _ in range(4):
        post(estate, fire(estate, "db", "HighLatency", "warning"))
        estate.clock.advance(60)
        post(estate, fire(estate, "db", "HighLatency", "warning", resolved=True))
        estate.clock.advance(60)
    whys = [why for (_, _, _), (_, why) in sorted(events(estate).items(), key=lambda x: x[0][2])]
    assert whys == [None, None, "flapping", "flapping"]
    assert len(incidents(estate)) == 1  # the second firing reopened the first incident


def test_inhibited_alert_joins_its_source_but_needs_a_firing_source(estate):
    estate.config.correlation = parse_config(
        {
            "inhibit_rules": [
                {
                    "name": "down-masks-errors",
                    "source_matchers": ['alertname="ServiceDown"'],
                    "target_matchers": ['alertname="HighErrorRate"'],
                    "equal": ["service"],
                }
            ]
        }
    )
    post(estate, fire(estate, "db", "ServiceDown"), fire(estate, "db"))
    (down_inc, _), (err_inc, why) = events(estate).values()
    assert why == "inhibition:down-masks-errors" and err_inc == down_inc
    # the source on cache fired and resolved: nothing inhibits cache's errors any more
    post(estate, fire(estate, "cache", "ServiceDown"))
    post(estate, fire(estate, "cache", "ServiceDown", resolved=True))
    estate.clock.advance(timedelta(minutes=20))
    post(estate, fire(estate, "cache"))
    assert events(estate)[("cache", "HighErrorRate", 4)][1] is None


@pytest.fixture
def technician(estate):
    with estate.db.session() as s:
        _, secret = create_token(s, name="tess", role=Role.TECHNICIAN.value, at=estate.clock.now())
    return TestClient(create_app(estate)), {"Authorization": f"Bearer {secret}"}


def test_merge_split_and_origin_are_kept_as_feedback(estate, technician):
    client, auth = technician
    post(estate, fire(estate, "db"), fire(estate, "cache"))
    db_inc, cache_inc = incidents(estate)
    merged = client.post(
        f"/api/v1/incidents/{db_inc.id}/merge",
        json={"incidents": [cache_inc.id], "reason": "one storage outage"},
        headers=auth,
    )
    assert merged.status_code == 200, merged.text
    assert set(merged.json()["services"]) == {"db", "cache"}
    assert client.get(f"/api/v1/incidents/{cache_inc.id}", headers=auth).json()["status"] == (
        "merged"
    )
    again = client.post(
        f"/api/v1/incidents/{db_inc.id}/merge",
        json={"incidents": [cache_inc.id], "reason": "clicked twice"},
        headers=auth,
    )  # a refusal in the current state, not bad input
    assert again.status_code == 409 and "already merged" in again.json()["error"]["message"]
    empty = client.post(
        f"/api/v1/incidents/{db_inc.id}/merge",
        json={"incidents": [db_inc.id], "reason": "itself"},
        headers=auth,
    )
    assert empty.status_code == 422 and empty.json()["error"]["message"].startswith("incidents:")
    cache_event = next(i for (svc, _, i) in events(estate) if svc == "cache")
    split = client.post(
        f"/api/v1/incidents/{db_inc.id}/split",
        json={"events": [cache_event], "reason": "cache is separate after all"},
        headers=auth,
    )
    assert split.status_code == 201 and split.json()["services"] == ["cache"]
    post(estate, fire(estate, "orders"))  # orders joins db's incident
    moved = client.post(
        f"/api/v1/incidents/{db_inc.id}/origin",
        json={"service": "orders", "reason": "a bad deploy on orders, not the db"},
        headers=auth,
    )
    assert moved.json()["origin_service"] == "orders" and moved.json()["origin_set_by"] == "tess"
    post(estate, fire(estate, "db", "DBConnectionsExhausted"))  # new alerts keep the person's
    assert incidents(estate)[0].origin_service == "orders"
    with estate.db.session() as s:
        kinds = [
            f.kind for f in s.scalars(select(CorrelationFeedback).order_by(CorrelationFeedback.id))
        ]
        first = s.scalars(select(CorrelationFeedback)).first()
        assert kinds == ["merge", "split", "origin"]
        assert first.actor == "tess" and first.reason == "one storage outage"
        assert {e["service"] for e in first.before["merged"][0]["events"]} == {"cache"}
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditRecord)
                .where(
                    AuditRecord.action.in_(("incident.merge", "incident.split", "incident.origin"))
                )
            )
            >= 3
        )
    listed = client.get("/api/v1/correlation/feedback", headers=auth).json()
    assert [f["kind"] for f in listed] == ["origin", "split", "merge"]


def test_bad_corrections_name_the_field(estate, technician):
    client, auth = technician
    post(estate, fire(estate, "db"))
    (inc,) = incidents(estate)
    bad = client.post(
        f"/api/v1/incidents/{inc.id}/origin", json={"service": "nope", "reason": "x"}, headers=auth
    )
    assert bad.status_code == 422 and "service" in bad.json()["error"]["message"]
    missing = client.post(f"/api/v1/incidents/{inc.id}/merge", json={"reason": "x"}, headers=auth)
    assert missing.status_code == 422 and "incidents" in missing.json()["error"]["message"]
    alone = client.post(
        f"/api/v1/incidents/{inc.id}/split", json={"events": [1], "reason": "x"}, headers=auth
    )
    assert alone.status_code == 422 and "events" in alone.json()["error"]["message"]


def test_silence_api_round_trip(estate, technician):
    client, auth = technician
    until = (estate.clock.now() + timedelta(hours=1)).isoformat()
    made = client.post(
        "/api/v1/silences",
        json={"matchers": ['service="db"'], "ends_at": until, "comment": "migration"},
        headers=auth,
    )
    assert made.status_code == 201 and made.json()["created_by"] == "tess"
    bad = client.post(
        "/api/v1/silences",
        json={"matchers": ["db"], "ends_at": until, "comment": "x"},
        headers=auth,
    )
    assert bad.status_code == 422 and "matchers" in bad.json()["error"]["message"]
    active = client.get("/api/v1/silences?active=true", headers=auth).json()
    assert [s["id"] for s in active] == [made.json()["id"]]
    assert client.delete(f"/api/v1/silences/{made.json()['id']}", headers=auth).status_code == 200
    assert client.get("/api/v1/silences?active=true", headers=auth).json() == []


def test_a_bad_correlation_file_stops_the_start_naming_the_field(settings, clock, tmp_path):
    from baton.runtime.platform import Platform

    bad = tmp_path / "correlation.yaml"
    bad.write_text("flap: {min_firings: 1}\n")
    with pytest.raises(ValueError, match=r"correlation\.yaml: flap\.min_firings"):
        Platform(settings.model_copy(update={"correlation_file": bad}), clock)


def test_a_pod_s_own_trouble_does_not_join_by_dependency(estate):
    """db fails and orders' requests with it; a web pod crash-looping soon after is not
    opens its own incident: the graph does not link it to db's (a pod's own state is
    its node's or its workload's, not a dependency's)."""
    post(estate, fire(estate, "db"))
    estate.clock.advance(30)
    post(estate, fire(estate, "orders"))
    estate.clock.advance(30)
    crash = fire(estate, "kube-state-metrics", "KubePodCrashLooping", pod="web-7f9c6-abcde")
    post(estate, crash)  # kube-state-metrics names the pod; its workload is web
    estate.clock.advance(600)
    estate.scheduler.tick()
    placed = events(estate)
    by_name = {(service, name): inc for (service, name, _), (inc, _) in placed.items()}
    db_inc = by_name[("db", "HighErrorRate")]
    assert by_name[("orders", "HighErrorRate")] == db_inc
    assert by_name[("web", "KubePodCrashLooping")] not in (None, db_inc)


def test_an_origin_spreads_for_minutes_not_for_ever(estate):
    """catalog failing one minute into cache's trouble is cache's effect; orders failing
    eleven minutes into db's still-firing trouble is another fault reaching it."""
    post(estate, fire(estate, "db"), fire(estate, "cache"))
    estate.clock.advance(60)
    post(estate, fire(estate, "catalog"))
    estate.clock.advance(600)
    post(estate, fire(estate, "orders"))
    estate.clock.advance(300)
    estate.scheduler.tick()
    placed = {(s, n): inc for (s, n, _), (inc, _) in events(estate).items()}
    assert placed[("catalog", "HighErrorRate")] == placed[("cache", "HighErrorRate")]
    assert placed[("orders", "HighErrorRate")] not in (None, placed[("db", "HighErrorRate")])
