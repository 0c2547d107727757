"""API behaviour: auth on every route, the RBAC matrix, errors, ingest and reads."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from baton.api.app import create_app
from baton.govern.rbac import GRANTS, Permission, Role, create_token

R, ING, OPS, G, A = (
    Permission.READ,
    Permission.INGEST,
    Permission.OPERATE,
    Permission.GOVERN,
    Permission.ADMIN,
)
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/api/v1/desk/slack/events")}
# Written by hand on purpose: a new route must be added here with the permission it needs.
EXPECTED: dict[tuple[str, str], Permission] = {
    ("GET", "/metrics"): R,
    ("POST", "/api/v2/alerts"): ING,
    ("POST", "/api/v1/events"): ING,
    ("POST", "/api/v1/ingest/{source}"): ING,
    ("POST", "/v2/enqueue"): ING,
    ("POST", "/api/v1/tickets"): ING,
    ("POST", "/api/v1/write"): ING,
    ("POST", "/api/v1/metrics"): ING,
    ("POST", "/api/v1/logs"): ING,
    ("GET", "/api/v1/incidents"): R,
    ("GET", "/api/v1/incidents/{incident_id}"): R,
    ("GET", "/api/v1/incidents/{incident_id}/investigation"): R,
    ("GET", "/api/v1/tickets/{ticket_id}/investigation"): R,
    ("POST", "/api/v1/incidents/{incident_id}/ask"): R,
    ("POST", "/api/v1/incidents/{incident_id}/copilot-fix"): OPS,
    ("GET", "/api/v1/approvals/{approval_id}/chat-message"): R,
    ("POST", "/api/v1/approvals/{approval_id}/chat-post"): OPS,
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): OPS,
    ("POST", "/api/v1/incidents/{incident_id}/merge"): OPS,
    ("POST", "/api/v1/incidents/{incident_id}/split"): OPS,
    ("POST", "/api/v1/incidents/{incident_id}/origin"): OPS,
    ("GET", "/api/v1/correlation/feedback"): R,
    ("GET", "/api/v1/silences"): R,
    ("POST", "/api/v1/silences"): OPS,
    ("DELETE", "/api/v1/silences/{silence_id}"): OPS,
    ("GET", "/api/v1/maintenance"): R,
    ("POST", "/api/v1/maintenance"): OPS,
    ("DELETE", "/api/v1/maintenance/{window_id}"): OPS,
    ("GET", "/api/v1/events"): R,
    ("GET", "/api/v1/tickets"): R,
    ("GET", "/api/v1/tickets/{ticket_id}"): R,
    ("POST", "/api/v1/tickets/{ticket_id}/changes"): OPS,
    ("POST", "/api/v1/tickets/{ticket_id}/comments"): OPS,
    ("POST", "/api/v1/tickets/{ticket_id}/link"): OPS,
    ("POST", "/api/v1/tickets/changes/{change_id}/revert"): OPS,
    ("POST", "/api/v1/triage/corrections"): OPS,
    ("POST", "/api/v1/desk/answers/{draft_id}/approve"): OPS,
    ("POST", "/api/v1/desk/answers/{draft_id}/reject"): OPS,
    ("GET", "/api/v1/desk/options"): R,
    ("PUT", "/api/v1/desk/options"): G,
    ("GET", "/api/v1/kb"): R,
    ("GET", "/api/v1/kb/{slug}"): R,
    ("PUT", "/api/v1/kb/{slug}"): OPS,
    ("POST", "/api/v1/desk/selfservice"): ING,
    ("POST", "/api/v1/desk/selfservice/{request_id}/verify"): ING,
    ("POST", "/api/v1/desk/selfservice/{request_id}/approve"): OPS,
    ("POST", "/api/v1/desk/chat"): ING,
    ("GET", "/api/v1/runbooks"): R,
    ("GET", "/api/v1/runbooks/schema"): R,
    ("GET", "/api/v1/runbooks/{runbook_id}"): R,
    ("POST", "/api/v1/runbooks/reload"): G,
    ("POST", "/api/v1/runbooks/{runbook_id}/dry-run"): OPS,
    ("POST", "/api/v1/runbooks/{runbook_id}/executions"): OPS,
    ("POST", "/api/v1/runbooks/{runbook_id}/breaker/close"): G,
    ("GET", "/api/v1/proposals"): R,
    ("GET", "/api/v1/decisions"): R,
    ("GET", "/api/v1/executions"): R,
    ("GET", "/api/v1/executions/{execution_id}"): R,
    ("GET", "/api/v1/executions/{execution_id}/logs"): R,
    ("GET", "/api/v1/approvals"): R,
    ("POST", "/api/v1/approvals/{approval_id}/approve"): OPS,
    ("POST", "/api/v1/approvals/{approval_id}/reject"): OPS,
    ("GET", "/api/v1/automation"): R,
    ("POST", "/api/v1/automation/pause"): OPS,
    ("POST", "/api/v1/automation/resume"): G,
    ("POST", "/api/v1/executions/{execution_id}/veto"): OPS,
    ("POST", "/api/v1/executions/{execution_id}/cancel"): OPS,
    ("POST", "/api/v1/executions/{execution_id}/rollback"): OPS,
    ("GET", "/api/v1/overrides"): R,
    ("GET", "/api/v1/oncall/{service}"): R,
    ("PUT", "/api/v1/oncall/rotations"): G,
    ("PUT", "/api/v1/oncall/escalation-policies"): G,
    ("POST", "/api/v1/oncall/swaps"): OPS,
    ("GET", "/api/v1/escalations"): R,
    ("POST", "/api/v1/escalations/{escalation_id}/acknowledge"): OPS,
    ("GET", "/api/v1/policy"): R,
    ("GET", "/api/v1/policy/tiers"): R,
    ("PUT", "/api/v1/policy"): G,
    ("GET", "/api/v1/services"): R,
    ("PUT", "/api/v1/services"): A,
    ("GET", "/api/v1/kpis"): R,
    ("GET", "/api/v1/trust"): R,
    ("GET", "/api/v1/trust/moves"): R,
    ("POST", "/api/v1/trust/review"): G,
    ("POST", "/api/v1/trust/moves/{move_id}/accept"): G,
    ("POST", "/api/v1/trust/moves/{move_id}/decline"): G,
    ("GET", "/api/v1/shadow"): R,
    ("GET", "/api/v1/reviews/weekly"): R,
    ("GET", "/api/v1/incidents/{incident_id}/timeline"): R,
    ("GET", "/api/v1/incidents/{incident_id}/review"): R,
    ("PUT", "/api/v1/incidents/{incident_id}/review"): OPS,
    ("GET", "/api/v1/incidents/{incident_id}/review/lessons/{lesson}/diff"): R,
    ("POST", "/api/v1/incidents/{incident_id}/review/lessons/{lesson}/apply"): G,
    ("POST", "/api/v1/replay/policy"): G,
    ("GET", "/api/v1/audit"): G,
    ("GET", "/api/v1/audit/verify"): G,
    ("GET", "/api/v1/tokens"): A,
    ("POST", "/api/v1/tokens"): A,
    ("DELETE", "/api/v1/tokens/{token_id}"): A,
}


@pytest.fixture
def client(platform):
    return TestClient(create_app(platform))


@pytest.fixture
def tokens(platform):
    out = {}
    with platform.db.session() as s:
        for role in Role:
            _, secret = create_token(
                s, name=f"user-{role.value}", role=role.value, at=platform.clock.now()
            )
            out[role] = secret
    return out


def _routes(app):
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            yield method.upper(), path


def _url(path):
    return (
        path.replace("{incident_id}", "999")
        .replace("{execution_id}", "999")
        .replace("{approval_id}", "999")
        .replace("{ticket_id}", "999")
        .replace("{token_id}", "999")
        .replace("{move_id}", "999")
        .replace("{lesson}", "0")
        .replace("{runbook_id}", "nope")
        .replace("{escalation_id}", "999")
        .replace("{silence_id}", "999")
        .replace("{window_id}", "999")
        .replace("{service}", "web")
        .replace("{source}", "grafana")
        .replace("{ticket_id}", "999")
        .replace("{change_id}", "999")
        .replace("{draft_id}", "999")
        .replace("{request_id}", "999")
        .replace("{slug}", "nope")
    )


def test_every_route_is_in_the_matrix(client):
    routes = set(_routes(client.app))
    assert routes - PUBLIC == set(EXPECTED), "update EXPECTED for new or removed routes"


def test_rbac_matrix(client, tokens):
    for method, path in EXPECTED:
        url = _url(path)
        anon = client.request(method, url)
        assert anon.status_code == 401, (method, path)
        assert anon.json()["error"]["code"] == "unauthorized"
        bad = client.request(method, url, headers={"Authorization": "Bearer bt_not-a-token"})
        assert bad.status_code == 401, (method, path)
        for role, secret in tokens.items():
            resp = client.request(
                method,
                url,
                headers={"Authorization": f"Bearer {secret}"},
                json={} if method in ("POST", "PUT") else None,
            )
            allowed = EXPECTED[(method, path)] in GRANTS[role]
            if allowed:
                assert resp.status_code not in (401, 403), (method, path, role, resp.text)
            else:
                assert resp.status_code == 403, (method, path, role, resp.text)
                assert "lacks" in resp.json()["error"]["message"]


def test_public_health_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["runbooks"] >= 7


def auth(tokens, role):
    return {"Authorization": f"Bearer {tokens[role]}"}


def test_revoked_token_is_refused(client, tokens):
    admin = auth(tokens, Role.ADMIN)
    made = client.post("/api/v1/tokens", json={"name": "temp", "role": "viewer"}, headers=admin)
    assert made.status_code == 201
    temp = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/api/v1/incidents", headers=temp).status_code == 200
    assert client.delete(f"/api/v1/tokens/{made.json()['id']}", headers=admin).status_code == 200
    assert client.get("/api/v1/incidents", headers=temp).status_code == 401
    listed = client.get("/api/v1/tokens", headers=admin).json()
    assert all("token" not in row and "token_hash" not in row for row in listed)


def test_unknown_role_is_a_clear_422(client, tokens):
    resp = client.post(
        "/api/v1/tokens", json={"name": "x", "role": "wizard"}, headers=auth(tokens, Role.ADMIN)
    )
    assert resp.status_code == 422 and "unknown role 'wizard'" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    "body, field",
    [
        (b"{not json", "malformed JSON"),
        (b"", "empty body"),
        (b'{"alerts": 5}', "alerts: Expected `array`"),
        (b'[{"labels": {}}]', "alerts[0].labels"),
        (b'[{"labels": {"service": "x"}}]', "alertname"),
        (b'[{"labels": {"alertname": 7}}]', "alerts[0].labels.alertname"),
        (b'[{"labels": {"alertname": "A"}, "startsAt": "yesterday"}]', "alerts[0].startsAt"),
    ],
)
def test_bad_alert_batches_are_rejected_whole(client, tokens, platform, body, field):
    good = b'{"labels": {"alertname": "Good", "service": "s"}}'
    payload = body if not body.startswith(b"[") else body[:-1] + b"," + good + b"]"
    resp = client.post("/api/v2/alerts", content=payload, headers=auth(tokens, Role.INGEST))
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["error"]["message"]
    events = client.get("/api/v1/events", headers=auth(tokens, Role.VIEWER)).json()
    assert events == []  # nothing of a rejected batch is stored


def test_oversized_body_is_413(client, tokens, platform):
    platform.settings.max_body_bytes = 2048
    big = b'[{"labels": {"alertname": "A", "x": "' + b"y" * 4096 + b'"}}]'
    resp = client.post("/api/v2/alerts", content=big, headers=auth(tokens, Role.INGEST))
    assert resp.status_code == 413


def test_alerts_flow_into_incidents_and_metrics(client, tokens, platform):
    from baton.correlate.topology import ServiceDef

    platform.config.declare_services(
        [ServiceDef("db", kind="database"), ServiceDef("api", kind="api", depends_on=("db",))]
    )
    batch = [
        {"labels": {"alertname": "HighErrorRate", "service": "api", "severity": "critical"}},
        {"labels": {"alertname": "DBConnectionsExhausted", "service": "db"}},
    ]
    resp = client.post("/api/v2/alerts", json=batch, headers=auth(tokens, Role.INGEST))
    assert resp.status_code == 200 and resp.json()["accepted"] == 2
    assert platform.drain.process_inbox() == 1  # acknowledged first, correlated after
    incidents = client.get("/api/v1/incidents", headers=auth(tokens, Role.VIEWER)).json()
    assert len(incidents) == 1
    assert incidents[0]["origin_service"] == "db"
    assert set(incidents[0]["services"]) == {"api", "db"}
    detail = client.get(
        f"/api/v1/incidents/{incidents[0]['id']}", headers=auth(tokens, Role.VIEWER)
    ).json()
    assert len(detail["events"]) == 2
    metrics = client.get("/metrics", headers=auth(tokens, Role.VIEWER)).text
    assert 'baton_events_received_total{source="alertmanager"}' in metrics
    # without a sandbox attached, the starter (sandbox) runbooks can only be observed
    platform.clock.advance(120)
    platform.scheduler.tick()
    decisions = client.get("/api/v1/decisions", headers=auth(tokens, Role.VIEWER)).json()
    assert decisions and decisions[0]["tier"] == "observe"
    assert "sandbox target" in decisions[0]["reasons"][0]


def test_generic_events_and_tickets(client, tokens):
    resp = client.post(
        "/api/v1/events",
        headers=auth(tokens, Role.INGEST),
        json={"events": [{"name": "BackupFailed", "service": "backup", "severity": "error"}]},
    )
    assert resp.status_code == 200
    bad = client.post(
        "/api/v1/events",
        headers=auth(tokens, Role.INGEST),
        json={"events": [{"name": "X", "bogus": 1}]},
    )
    assert bad.status_code == 400 and "events[0].bogus" in bad.json()["error"]["message"]
    ticket = client.post(
        "/api/v1/tickets",
        headers=auth(tokens, Role.TECHNICIAN),
        json={"reporter": "maria", "subject": "Outlook won't send", "body": "mail stuck in outbox"},
    )
    assert ticket.status_code == 201 and ticket.json()["category"] == "email"


def test_kill_switch_roles(client, tokens):
    body = {"scope": "all", "reason": "drill"}
    assert client.post(
        "/api/v1/automation/pause", json=body, headers=auth(tokens, Role.TECHNICIAN)
    ).json()["paused"] == ["all"]
    assert (
        client.post(
            "/api/v1/automation/resume", json=body, headers=auth(tokens, Role.TECHNICIAN)
        ).status_code
        == 403
    )
    assert (
        client.post("/api/v1/automation/resume", json=body, headers=auth(tokens, Role.LEAD)).json()[
            "paused"
        ]
        == []
    )
    bad = client.post(
        "/api/v1/automation/pause",
        json={"scope": "runbook", "reason": "x"},
        headers=auth(tokens, Role.LEAD),
    )
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tickets",
        "/api/v1/approvals/1/approve",
        "/api/v1/automation/pause",
        "/api/v2/alerts",
    ],
)
def test_anonymous_garbage_gets_401_not_a_parse_error(client, path):
    resp = client.post(path, content=b"{garbage")
    assert resp.status_code == 401


def test_body_limit_applies_to_every_route_and_to_chunked_bodies(client, tokens, platform):
    platform.settings.max_body_bytes = 2048
    ticket = {"reporter": "a", "subject": "b", "body": "x" * 19000}
    resp = client.post("/api/v1/tickets", json=ticket, headers=auth(tokens, Role.TECHNICIAN))
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"

    def chunks():
        for _ in range(10):
            yield b"x" * 1024

    chunked = client.post("/api/v2/alerts", content=chunks(), headers=auth(tokens, Role.INGEST))
    assert chunked.status_code == 413


def test_unexpected_errors_keep_the_json_shape(platform, tokens, monkeypatch):
    client = TestClient(create_app(platform), raise_server_exceptions=False)

    def boom(*_a, **_k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr("baton.api.routers.learning.kpis", boom)
    resp = client.get("/api/v1/kpis", headers=auth(tokens, Role.VIEWER))
    assert resp.status_code == 500
    assert resp.json() == {
        "error": {"code": "internal", "message": "internal error; see the server log"}
    }


def test_dry_run_renders_or_names_the_bad_param(client, tokens):
    url = "/api/v1/runbooks/rollback-deploy/dry-run"
    ok = client.post(
        url, json={"params": {"service": "checkout-api"}}, headers=auth(tokens, Role.TECHNICIAN)
    )
    assert ok.status_code == 200
    assert ok.json()["dry_run"]["steps"][0]["with"] == {
        "remediation": "rollback",
        "service": "checkout-api",
    }
    bad = client.post(
        url, json={"params": {"service": "-rf"}}, headers=auth(tokens, Role.TECHNICIAN)
    )
    assert bad.status_code == 422 and "param 'service'" in bad.json()["error"]["message"]
    unknown = client.post(
        url, json={"params": {"sevrice": "x"}}, headers=auth(tokens, Role.TECHNICIAN)
    )
    assert unknown.status_code == 422 and "sevrice" in unknown.json()["error"]["message"]


def test_docs_pages_work_air_gapped(client):
    """/docs and /redoc load only what Baton serves itself (no CDN, no web fonts)."""
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""", html.text)
        found = [u for pair in urls for u in pair if u]
        assert found, page
        for url in found:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            assert client.get(url).status_code == 200, url
        assert "http://" not in html.text and "https://" not in html.text, page
