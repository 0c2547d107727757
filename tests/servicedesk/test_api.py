"""The desk over HTTP: tickets, changes by a person, answers, KB, chat and Slack."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest
from fastapi.testclient import TestClient

from baton.api.app import create_app
from baton.govern.rbac import create_token


@pytest.fixture(scope="module")
def api(shared):
    with shared.db.session() as s:
        tech = create_token(s, name="tia", role="technician", at=shared.clock.now())[1]
        viewer = create_token(s, name="vic", role="viewer", at=shared.clock.now())[1]
    app = create_app(shared)
    return (
        TestClient(app, headers={"Authorization": f"Bearer {tech}"}),
        TestClient(app, headers={"Authorization": f"Bearer {viewer}"}),
        TestClient(app),
    )


def test_file_change_comment_and_history_by_a_person(api):
    tech, viewer, _ = api
    made = tech.post(
        "/api/v1/tickets",
        json={"reporter": "ann", "subject": "VPN down", "body": "<script>x</script>"},
    )
    assert made.status_code == 201
    tid = made.json()["id"]
    r = tech.post(f"/api/v1/tickets/{tid}/changes", json={"field": "priority", "value": "low"})
    assert r.status_code == 200 and r.json()["priority"] == "low"
    assert r.json()["history"][-1]["by"] == {"name": "tia", "kind": "human", "version": None}
    bad = tech.post(f"/api/v1/tickets/{tid}/changes", json={"field": "category", "value": "zzz"})
    assert bad.status_code == 422
    assert viewer.post(f"/api/v1/tickets/{tid}/comments", json={"body": "hi"}).status_code == 403
    r = tech.post(f"/api/v1/tickets/{tid}/comments", json={"body": "on it", "public": False})
    assert r.status_code == 201 and r.json()["comments"][-1]["body"] == "on it"
    assert viewer.get(f"/api/v1/tickets/{tid}").json()["body"] == "<script>x</script>"  # JSON
    moved = tech.post(f"/api/v1/tickets/{tid}/changes", json={"field": "status", "value": "closed"})
    assert moved.status_code == 200
    again = tech.post(
        f"/api/v1/tickets/{tid}/changes", json={"field": "status", "value": "waiting"}
    )
    assert again.status_code == 409
    assert tech.get("/api/v1/tickets/999999").status_code == 404


def test_kb_and_answer_approval_over_http(api):
    tech, viewer, _ = api
    put = tech.put(
        "/api/v1/kb/wifi-guest",
        json={"title": "Guest Wi-Fi password", "body": "The guest wifi code is at reception."},
    )
    assert put.status_code == 200
    assert viewer.get("/api/v1/kb/wifi-guest").json()["title"] == "Guest Wi-Fi password"
    tid = tech.post(
        "/api/v1/tickets",
        json={
            "reporter": "bo",
            "subject": "guest wifi code?",
            "body": "what is the guest wifi code",
        },
    ).json()["id"]
    [draft] = viewer.get(f"/api/v1/tickets/{tid}").json()["answers"]
    assert viewer.post(f"/api/v1/desk/answers/{draft['id']}/approve").status_code == 403
    sent = tech.post(f"/api/v1/desk/answers/{draft['id']}/approve")
    assert sent.status_code == 200 and sent.json()["status"] == "sent"
    assert tech.post(f"/api/v1/desk/answers/{draft['id']}/approve").status_code == 409


def test_generic_chat_files_then_comments_and_offers_self_service(api):
    tech, _, _ = api
    first = tech.post(
        "/api/v1/desk/chat",
        json={"conversation": "c1", "user": "zoe", "text": "I forgot my password"},
    )
    assert first.status_code == 200
    body = first.json()
    assert body["self_service"]["item"] == "password_reset"
    again = tech.post(
        "/api/v1/desk/chat", json={"conversation": "c1", "user": "zoe", "text": "still stuck"}
    )
    assert again.json()["ticket"] == body["ticket"]
    shown = tech.get(f"/api/v1/tickets/{body['ticket']}").json()
    assert shown["channel"] == "chat" and shown["comments"][-1]["body"] == "still stuck"


def _signed(shared, payload: dict, key: str = "slack-key") -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(payload)
    ts = str(int(shared.clock.now().timestamp()))
    sig = (
        "v0="
        + hmac.new(key.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    )
    return raw, {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/json",
    }


def test_slack_events_need_slacks_signature(api, shared, monkeypatch):
    _, _, anonymous = api
    url = "/api/v1/desk/slack/events"
    assert anonymous.post(url, json={"type": "url_verification"}).status_code == 401  # off
    monkeypatch.setattr(shared.settings, "slack_signing_secret", "SLACK_DESK")
    monkeypatch.setenv("BATON_SECRET_SLACK_DESK", "slack-key")
    raw, headers = _signed(shared, {"type": "url_verification", "challenge": "abc"})
    assert anonymous.post(url, content=raw, headers=headers).json() == {"challenge": "abc"}
    raw, headers = _signed(shared, {"type": "url_verification"}, key="wrong")
    assert anonymous.post(url, content=raw, headers=headers).status_code == 401
    event = {
        "type": "event_callback",
        "event": {
            "type": "message",
            "user": "U1",
            "channel": "C9",
            "ts": "1700000000.1",
            "text": "my account is locked out",
        },
    }
    raw, headers = _signed(shared, event)
    r = anonymous.post(url, content=raw, headers=headers)
    assert r.status_code == 200 and r.json()["self_service"]["item"] == "account_unlock"
    bot = {"type": "event_callback", "event": {**event["event"], "bot_id": "B1"}}
    raw, headers = _signed(shared, bot)
    assert anonymous.post(url, content=raw, headers=headers).json()["ignored"] is True


def test_triage_corrections_over_http(api):
    tech, viewer, _ = api
    body = {"model": "nosuch", "subject": "ticket:1", "fields": {"body": "x"}, "value": "email"}
    assert viewer.post("/api/v1/triage/corrections", json=body).status_code == 403
    assert tech.post("/api/v1/triage/corrections", json=body).status_code == 404  # no model
    assert tech.post("/api/v1/triage/corrections", json={**body, "value": ""}).status_code == 422
