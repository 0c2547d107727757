"""KPIs over a period, on a recorded history and on the sandbox demo."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from baton.api.app import create_app
from baton.govern.rbac import create_token
from baton.kernel.errors import Invalid
from baton.learn.figures import Scope, kpis, parse_since
from baton.learn.review import weekly, weekly_html
from baton.store.models import Escalation, Event, Incident, Service, Ticket
from tests.helpers import run_until
from tests.learn.history import record


def _figures(platform, since, **filters):
    with platform.db.session() as s:
        return kpis(s, Scope(since, platform.clock.now() + timedelta(seconds=1), **filters))


def _estate(platform):
    """Two services of two teams, alerts, tickets and an escalation around the history."""
    at = platform.clock.now()
    with platform.db.session() as s:
        s.add_all(
            [
                Service(name="web", owner="team-web", env="prod"),
                Service(name="db", owner="team-data", env="prod"),
            ]
        )
        for i in range(6):
            s.add(
                Event(
                    source="alertmanager",
                    fingerprint=f"f{i}",
                    name="HighLatency" if i < 4 else "DiskFull",
                    service="web" if i < 4 else "db",
                    starts_at=at,
                    first_seen=at,
                    last_seen=at,
                )
            )
        s.add(Escalation(subject="execution:1", service="web", reason="failed", created_at=at))


def test_kpis_over_a_recorded_history(platform):
    since = platform.clock.now()
    _estate(platform)
    ok = record(platform, "restart-service", "web", tier="auto", approval=None)
    record(platform, "restart-service", "web", tier="auto", approval=None, status="failed")
    rb = record(
        platform, "rollback-deploy", "web", status="rolled_back", override=("rollback", "wrong_fix")
    )
    record(platform, "rollback-deploy", "db", approval="rejected", status=None)
    record(platform, "scale-out", "db", tier="auto", approval=None, proposer="tia")
    clock = platform.clock
    with platform.db.session() as s:
        for n, inc in enumerate(s.query(Incident).order_by(Incident.id)):
            inc.acknowledged_at = inc.opened_at + timedelta(minutes=2 + n)
            if n != 3:
                inc.resolved_at = inc.opened_at + timedelta(minutes=20)
                inc.status = "resolved"
        s.add(
            Ticket(
                reporter="ann",
                subject="site slow",
                category="performance",
                service="web",
                incident_id=ok["incident"],
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    k = _figures(platform, since)
    inc = k["incidents"]
    assert (inc["opened"], inc["resolved"], inc["mttr_s"], inc["mtta_s"]) == (5, 4, 1200.0, 240.0)
    assert k["alerts"] == 6 and k["noise_reduction"] == round(1 - 5 / 6, 3)
    runs = k["automation"]
    assert runs["by_status"] == {"succeeded": 2, "failed": 1, "rolled_back": 1}
    assert runs["success_rate"] == 0.5 and runs["rollbacks"] == 1
    # restart-service declares 15 manual minutes, scale-out 20
    assert runs["time_saved_min"] == 35.0
    assert runs["time_saved_by_runbook"][0] == {"runbook": "scale-out", "minutes": 20.0}
    b = k["behaviour"]
    assert b["override_reasons"] == {"wrong_fix": 1} and b["rollbacks_by_people"] == 1
    assert (b["accepted"], b["overridden"], b["acceptance_rate"]) == (2, 2, 0.5)
    split = inc["resolution"]
    assert (split["automatic"], split["ai_assisted"], split["human_only"]) == (1, 0, 3)
    assert split["resolved_without_a_run"] == 2
    assert k["escalations"]["raised"] == 1 and k["escalations"]["rate_per_incident"] == 0.2
    assert k["escalations"]["top_paths"][0] == {
        "what": "execution",
        "service": "web",
        "level": 0,
        "count": 1,
    }
    t = k["tickets"]
    assert (t["filed"], t["deflected"], t["deflection_rate"]) == (1, 1, 1.0)
    assert t["sla_breaches"] == 0 and k["unavailable"] == []
    lee, tia = k["technicians"]
    assert (tia["person"], tia["approvals"], tia["approvals_rolled_back"]) == ("tia", 1, 1)
    assert (lee["person"], lee["overrides"], lee["overrides_proved_right"]) == ("lee", 1, 1)
    assert sum(row.get("executions", 0) for row in k["series"]) == 4

    with platform.db.session() as s:  # the desk's SLA job marked the ticket late
        s.scalars(select(Ticket)).one().breached_at = platform.clock.now()
    assert _figures(platform, since)["tickets"]["sla_breaches"] == 1

    web = _figures(platform, since, service="web")
    assert web["incidents"]["opened"] == 3 and web["automation"]["executions"] == 3
    assert web["alerts"] == 4
    team = _figures(platform, since, team="team-data")
    assert team["incidents"]["opened"] == 2 and team["alerts"] == 2
    assert _figures(platform, since, runbook="rollback-deploy")["automation"]["executions"] == 1
    perf = _figures(platform, since, category="performance")
    assert perf["incidents"]["opened"] == 1 and perf["tickets"]["filed"] == 1
    assert rb["execution"] is not None


def test_series_per_day_and_week(platform):
    since = platform.clock.now()
    for _ in range(3):
        record(platform, "restart-service", tier="auto", approval=None, minutes=60 * 24)
    days = _figures(platform, since)["series"]
    weeks = _figures(platform, since, bucket="week")["series"]
    assert [d["executions"] for d in days] == [1, 1, 1]
    assert sum(w["executions"] for w in weeks) == 3 and len(weeks) <= 2
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", w["bucket"]) for w in weeks)


def test_since_and_scope_are_checked():
    from datetime import UTC, datetime

    now = datetime(2026, 3, 9, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("2026-03-01T00:00:00Z", now).day == 1
    for bad in ("soon", "2026-03-01T00:00:00"):
        with pytest.raises(Invalid):
            parse_since(bad, now)
    with pytest.raises(Invalid):
        Scope(now, now - timedelta(days=1))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_kpis_and_weekly_review_agree_with_the_api(demo):
    start = demo.clock.now()
    demo.run_for(10, humans=True)
    demo.inject("disk_full")
    assert run_until(demo, lambda: _resolved(demo), minutes=120)
    demo.run_for(10, humans=True)
    p = demo.platform
    with p.db.session() as s:
        _, secret = create_token(s, name="vic", role="viewer", at=p.clock.now())
    client = TestClient(create_app(p))
    query = {"since": start.isoformat(), "until": p.clock.now().isoformat()}
    api = client.get("/api/v1/kpis", params=query, headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200, api.text
    k = api.json()
    assert k["incidents"]["resolved"] >= 1 and k["automation"]["verified_fixes"] >= 1
    assert k["automation"]["time_saved_min"] >= 20  # clear-disk declares 20 minutes
    with p.db.session() as s:
        data = weekly(s, p.config.policy, Scope(start, p.clock.now()))
    html = weekly_html(data)
    for key, value in (
        ("alerts", k["alerts"]),
        ("incidents", k["incidents"]["opened"]),
        ("runs", k["automation"]["executions"]),
        ("saved", k["automation"]["time_saved_min"]),
        ("escalations", k["escalations"]["raised"]),
    ):
        assert f'id="{key}">{value}<' in html, key
    assert "<svg" in html and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    resp = client.get(
        "/api/v1/reviews/weekly",
        params={**query, "format": "pdf"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF")
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {secret}"}).text
    saved = k["automation"]["time_saved_min"]
    assert f"baton_kpi_time_saved_minutes {float(saved)}" in metrics
    assert 'baton_kpi_resolutions{how="automatic"}' in metrics
    summary = demo.summary()
    assert summary["kpis"]["time_saved_min"] == saved
    assert any(row["runbook"] == "clear-disk" and row["proposals"] for row in summary["trust"])


def _resolved(demo):
    with demo.platform.db.session() as s:
        return s.query(Incident).filter(Incident.status == "resolved").count() > 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_override_the_outcome_proved_wrong(platform):
    since = platform.clock.now()
    first = record(
        platform,
        "restart-service",
        tier="auto",
        approval=None,
        status="vetoed",
        override=("veto", "bad_timing"),
    )
    record(platform, "restart-service", tier="auto", approval=None, incident=first["incident"])
    [lee] = _figures(platform, since)["technicians"]
    assert (lee["overrides"], lee["overrides_proved_wrong"], lee["overrides_proved_right"]) == (
        1,
        1,
        0,
    )
