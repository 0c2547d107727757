"""The console without a browser: sign-in, sessions, CSRF, roles, escaping, facets."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from baton.api.app import create_app
from baton.govern.signin import hash_password, password_matches
from baton.kernel.audit import Actor
from baton.kernel.clock import SimulatedClock
from baton.kernel.errors import Invalid
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from baton.store.models import AuditRecord, Credential, Event, Incident

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
HOST = Actor("host", "human")


@pytest.fixture(scope="module")
def platform(module_db_url, tmp_path_factory):
    """One platform per database for the module: building one takes seconds."""
    url = module_db_url
    home = tmp_path_factory.mktemp("home")
    shutil.copytree(ROOT / "runbooks", home / "runbooks")
    settings = Settings(home=home, database_url=url, runbooks_dir=home / "runbooks")
    p = Platform(settings, SimulatedClock(START)).start()
    for name, role in (("tess", "technician"), ("vic", "viewer"), ("lee", "lead")):
        p.commands.set_password(name, role, PASSWORD, HOST)
    yield p
    p.close()


@pytest.fixture
def app(platform):
    return TestClient(create_app(platform), base_url="http://127.0.0.1")


def sign_in(client, name, password=PASSWORD, next_="/incidents"):
    page = client.get("/console/sign-in")
    token = re.search(r'name="signin" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/console/sign-in",
        data={"name": name, "password": password, "signin": token, "next": next_},
        follow_redirects=False,
    )


def csrf_of(client):
    page = client.get("/console/runbooks")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_passwords_are_scrypt_hashes_with_their_own_salt():
    a, b = hash_password(PASSWORD, n=2**10), hash_password(PASSWORD, n=2**10)
    assert a != b and a.startswith("scrypt$1024$") and PASSWORD not in a
    assert password_matches(PASSWORD, a) and not password_matches("wrong " + PASSWORD, a)
    assert not password_matches(PASSWORD, "garbage")


def test_short_passwords_are_refused(platform):
    with pytest.raises(Invalid):
        platform.commands.set_password("sam", "viewer", "short", HOST)


def test_sign_in_sets_a_strict_httponly_cookie_and_is_audited(app, platform):
    assert app.get("/console/incidents", follow_redirects=False).status_code == 303
    wrong = sign_in(app, "tess", "not the password")
    assert "failed=1" in wrong.headers["location"]
    ok = sign_in(app, "tess", next_="//evil.example/")  # no open redirect
    assert ok.headers["location"] == "/console/incidents"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    with platform.db.session() as s:
        actions = [r.action for r in s.scalars(select(AuditRecord))]
        stored = s.scalars(select(Credential)).first().password_hash
    assert "session.refused" in actions and "session.opened" in actions
    assert PASSWORD not in stored
    page = app.get("/console/incidents")
    assert page.status_code == 200
    assert "unsafe-inline" not in page.headers["content-security-policy"]


def test_forms_need_the_session_csrf_token(app, platform):
    sign_in(app, "tess")
    bad = app.post("/console/automation/pause", data={"csrf": "nope", "reason": "x"})
    assert bad.status_code == 403
    good = app.post(
        "/console/automation/pause",
        data={"csrf": csrf_of(app), "scope": "all", "reason": "maintenance"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    with platform.db.session() as s:
        paused = s.scalars(select(AuditRecord).where(AuditRecord.action == "automation.paused"))
        assert [r.actor for r in paused] == ["tess"]


def test_roles_are_the_apis(app):
    sign_in(app, "vic")
    page = app.get("/console/runbooks")
    assert "pause-form" not in page.text
    refused = app.post(
        "/console/automation/pause", data={"csrf": csrf_of(app), "scope": "all", "reason": "x"}
    )
    assert refused.status_code == 403
    app.cookies.clear()
    sign_in(app, "tess")
    resume = app.post(
        "/console/automation/resume", data={"csrf": csrf_of(app), "scope": "all", "reason": "x"}
    )
    assert resume.status_code == 403  # resuming is for leads
    app.cookies.clear()
    sign_in(app, "lee")
    lead = app.post(
        "/console/automation/resume",
        data={"csrf": csrf_of(app), "scope": "all", "reason": "x"},
        follow_redirects=False,
    )
    assert lead.status_code == 303


def test_sign_out_and_expiry_end_the_session(app, platform):
    sign_in(app, "tess")
    assert app.get("/console/runs").status_code == 200
    platform.clock.advance(timedelta(hours=13))
    assert app.get("/console/runs", follow_redirects=False).status_code == 303
    sign_in(app, "tess")
    app.post("/console/sign-out", data={"csrf": csrf_of(app)})
    assert app.get("/console/runs", follow_redirects=False).status_code == 303


def _incidents(platform, n, tag):
    at = platform.clock.now()
    with platform.db.session() as s:
        for i in range(n):
            inc = Incident(
                title=f"{tag} checkout slow {i}" if i % 2 else f"{tag} disk full {i}",
                status="open" if i % 3 else "resolved",
                severity="critical" if i % 2 else "warning",
                origin_service="payments" if i % 2 else "storage",
                services=["payments", "web"] if i % 2 else ["storage"],
                grouping=[],
                opened_at=at,
                updated_at=at,
            )
            s.add(inc)
            s.flush()
            s.add(
                Event(
                    source="test",
                    fingerprint=f"{tag}{i}",
                    name="<b>bold</b>",
                    service=inc.origin_service,
                    annotations={"summary": "<script>alert(1)</script>"},
                    starts_at=at,
                    first_seen=at,
                    last_seen=at,
                    incident_id=inc.id,
                )
            )


def test_incident_list_facets_search_and_pages(app, platform):
    _incidents(platform, 120, "listed")
    sign_in(app, "tess")
    page = app.get("/console/incidents?severity=critical&q=listed checkout")
    rows = re.findall(r'<td><a href="/console/incidents/(\d+)">#', page.text)
    assert len(rows) == 50 and "disk full" not in page.text
    assert "critical (60)" in page.text  # counts under the other filters
    older = re.search(r"before=(\d+)", page.text).group(1)
    rest = app.get(
        f"/console/incidents?severity=critical&q=listed checkout&before={older}&partial=1"
    )
    assert rest.text.count("<tr>") == 10
    by_service = app.get("/console/incidents?service=web&partial=1")
    assert "disk full" not in by_service.text and "checkout slow" in by_service.text
    one = app.get(f"/console/incidents/{rows[0]}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in one.text and "<script>alert" not in one.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in one.text


def test_split_merge_and_origin_go_through_commands(app, platform):
    _incidents(platform, 3, "fixed")
    sign_in(app, "tess")
    csrf = csrf_of(app)
    with platform.db.session() as s:
        query = select(Incident).where(Incident.title.like("fixed%")).order_by(Incident.id)
        first, second, _ = [i.id for i in s.scalars(query)]
    no_reason = app.post(f"/console/incidents/{first}/merge", data={"csrf": csrf, "others": second})
    assert no_reason.status_code == 409 and "give a reason" in no_reason.text
    merged = app.post(
        f"/console/incidents/{first}/merge",
        data={"csrf": csrf, "others": second, "reason": "same outage"},
        follow_redirects=False,
    )
    assert merged.status_code == 303
    origin = app.post(
        f"/console/incidents/{first}/origin",
        data={"csrf": csrf, "service": "storage", "reason": "I checked"},
        follow_redirects=False,
    )
    assert origin.status_code == 303
    with platform.db.session() as s:
        assert s.get(Incident, second).merged_into == first
        assert s.get(Incident, first).origin_set_by == "tess"
    page = app.get(f"/console/incidents/{first}")
    assert "incident.merged" in page.text or "incident.origin" in page.text


# --- KPIs, tickets and trust (the service desk and learning pages) -----------------------


def test_the_kpi_page_draws_its_charts_on_the_server(app, platform):
    sign_in(app, "vic")
    page = app.get("/console/kpis?since=30d&bucket=week")
    assert page.status_code == 200
    for chart in ("volumes", "resolved", "times", "split", "judged", "reasons"):
        assert f'id="chart-{chart}"' in page.text
    assert "<svg" in page.text and "<script>" not in page.text.split("<main>")[1]
    assert app.get("/console/kpis?since=yesterday").status_code == 422


def _hostile_ticket(platform):
    return platform.desk.file(
        "pat@example.com", "<script>alert(1)</script> VPN is down", "cannot reach the vpn"
    )


def test_the_ticket_queue_filters_and_escapes(app, platform):
    ticket = _hostile_ticket(platform)
    sign_in(app, "vic")
    queue = app.get("/console/tickets")
    assert f"/console/tickets/{ticket.id}" in queue.text
    assert "&lt;script&gt;alert(1)" in queue.text and "<script>alert(1)" not in queue.text
    assert f'/tickets/{ticket.id}"' not in app.get("/console/tickets?status=closed").text
    assert f'/tickets/{ticket.id}"' in app.get("/console/tickets?q=vpn&status=").text
    assert f'/tickets/{ticket.id}"' not in app.get("/console/tickets?q=printer").text


def test_a_technician_sets_reverts_and_comments_and_history_names_them(app, platform):
    ticket = _hostile_ticket(platform)
    sign_in(app, "tess")
    csrf = csrf_of(app)
    base = f"/console/tickets/{ticket.id}"
    posted = app.post(
        f"{base}/changes",
        data={"csrf": csrf, "field": "assignee", "value": "tess"},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    shown = platform.desk.show(ticket.id)
    assert shown["assignee"] == "tess"
    change = next(c for c in shown["history"] if c["field"] == "assignee")
    assert change["by"] == {"name": "tess", "kind": "human", "version": None}
    page = app.get(base)
    assert f'id="change-{change["id"]}"' in page.text and "&lt;script&gt;" in page.text
    app.post(f"{base}/changes/{change['id']}/revert", data={"csrf": csrf})
    assert platform.desk.show(ticket.id)["assignee"] is None
    again = app.post(f"{base}/changes/{change['id']}/revert", data={"csrf": csrf})
    assert again.status_code == 409 and "already reverted" in again.text
    app.post(f"{base}/comments", data={"csrf": csrf, "body": "<b>looking</b>", "public": "1"})
    assert [c["body"] for c in platform.desk.show(ticket.id)["comments"]] == ["<b>looking</b>"]
    assert "&lt;b&gt;looking&lt;/b&gt;" in app.get(base).text


def test_a_viewer_cannot_change_a_ticket(app, platform):
    ticket = _hostile_ticket(platform)
    sign_in(app, "vic")
    page = app.get(f"/console/tickets/{ticket.id}")
    assert "Revert" not in page.text and 'id="comment"' not in page.text
    refused = app.post(
        f"/console/tickets/{ticket.id}/changes",
        data={"csrf": csrf_of(app), "field": "assignee", "value": "vic"},
    )
    assert refused.status_code == 403
    assert platform.desk.show(ticket.id)["assignee"] is None


def _recommended(platform):
    from baton.store.models import TrustMove

    runbook = next(iter(platform.config.catalogue))
    with platform.db.session() as s:
        move = TrustMove(
            runbook_id=runbook.id,
            scope="env:prod",
            kind="promote",
            status="recommended",
            from_tier="approve",
            to_tier="auto",
            reason="clean record",
            evidence={"agreed": 40, "judged": 40, "wilson_lower": 0.91},
            created_at=platform.clock.now(),
        )
        s.add(move)
        s.flush()
        return move.id


def test_a_lead_declines_a_promotion_with_a_reason_and_others_cannot(app, platform):
    move_id = _recommended(platform)
    sign_in(app, "tess")
    page = app.get("/console/runbooks")
    assert f'id="move-{move_id}"' in page.text and "waits for a lead" in page.text
    url = f"/console/trust/moves/{move_id}/decline"
    assert app.post(url, data={"csrf": csrf_of(app), "reason": "no"}).status_code == 403
    sign_in(app, "lee")
    csrf = csrf_of(app)
    assert "give a reason" in app.post(url, data={"csrf": csrf, "reason": " "}).text
    done = app.post(url, data={"csrf": csrf, "reason": "not before the freeze"})
    assert done.status_code == 200  # followed back to the runbooks page
    with platform.db.session() as s:
        from baton.store.models import TrustMove

        move = s.get(TrustMove, move_id)
        assert (move.status, move.decided_by) == ("declined", "lee")
        assert move.decision_reason == "not before the freeze"
    assert "lee: not before the freeze" in app.get("/console/runbooks").text


def test_a_viewer_cannot_propose_the_copilots_fix(app, platform):
    sign_in(app, "vic")
    refused = app.post(
        "/console/incidents/1/copilot/fix", data={"csrf": csrf_of(app), "reason": "try"}
    )
    assert refused.status_code == 403
    assert "lacks the &#39;operate&#39; permission" in refused.text
