"""Approvals from a Slack-compatible app: signed requests, bound single-use buttons,
mapped people, four-eyes, and the reply to a local response_url server."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from baton.api.app import create_app
from baton.govern.rbac import create_token
from baton.kernel.audit import Actor
from baton.kernel.clock import SimulatedClock
from baton.kernel.errors import Refused
from baton.store.models import Approval, AuditRecord
from tests.conftest import ROOT, START
from tests.triage.conftest import make_platform, open_incident

KEY = "slack-signing-secret-for-tests"
PEOPLE = {"U1": "tia", "U2": "lee", "U3": "vic"}


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    """One platform for the module (it takes seconds to start), its people and incident."""
    os.environ["BATON_SECRET_SLACK_TEST"] = KEY  # the signing secret, by name
    clock = SimulatedClock(START)
    p = make_platform(
        tmp_path_factory.mktemp("chat"),
        ROOT / "runbooks",
        clock,
        slack_signing_secret="SLACK_TEST",
        slack_users=PEOPLE,
    )
    with p.db.session() as s:
        tokens = {
            n: create_token(s, name=n, role=r, at=clock.now())[1]
            for n, r in (("tia", "technician"), ("lee", "lead"), ("vic", "viewer"))
        }
    incident = open_incident(p, clock)
    client = TestClient(create_app(p))
    client.app.state.tokens = tokens
    yield p, client, tokens, incident
    p.close()


@pytest.fixture
def chat(estate, http_peer):
    """A fresh approval (tia proposed the copilot's fix) and its chat message; replies
    may go to the local peer only."""
    p, client, tokens, incident = estate
    url, seen = http_peer
    saved = p.config.settings
    p.config.settings = saved.model_copy(update={"slack_response_prefix": url})
    result = p.commands.propose_fix(incident, Actor("tia", "human"), "copilot says so")
    assert result["approval"], result
    message = client.get(
        f"/api/v1/approvals/{result['approval']}/chat-message",
        headers={"Authorization": f"Bearer {tokens['vic']}"},
    ).json()
    yield p, client, message, result["approval"], url, seen
    p.config.settings = saved


def click(client, message, user, action="approve", response_url="", key=KEY, age=0, value=None):
    button = next(e for e in message["blocks"][1]["elements"] if e["action_id"] == action)
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": action, "value": value or button["value"]}],
        "response_url": response_url,
    }
    return signed(client, "/api/v1/slack/actions", {"payload": json.dumps(payload)}, key, age)


def signed(client, path, form, key=KEY, age=0):
    """A form-encoded POST signed as Slack signs (`v0:{timestamp}:{body}`)."""
    body = urlencode(form).encode()
    ts = str(int(time.time()) - age)
    sig = "v0=" + hmac.new(key.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return client.post(
        path,
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig,
        },
    )


def _status(p, approval_id):
    with p.db.session() as s:
        return s.get(Approval, approval_id).status


def test_a_second_person_approves_from_chat_and_the_requester_cannot(chat):
    p, client, message, approval_id, url, seen = chat
    assert KEY not in json.dumps(message)  # no secret in a button
    own = click(client, message, "U1", response_url=f"{url}/hook")
    assert own.status_code == 200 and own.json()["text"].startswith("refused")
    assert _status(p, approval_id) == "pending"  # four-eyes: tia asked for it
    viewer = click(client, message, "U3")
    assert "may not approve" in viewer.json()["text"]
    stranger = click(client, message, "U9")
    assert "not mapped" in stranger.json()["text"]
    ok = click(client, message, "U2", response_url=f"{url}/hook")
    assert ok.json()["text"].startswith("approved by lee")
    assert _status(p, approval_id) == "approved"
    assert [path for path, _, _ in seen] == ["/hook", "/hook"]
    assert "approved by lee" in seen[-1][2]["text"]
    again = click(client, message, "U2")
    assert "already used" in again.json()["text"]
    with p.db.session() as s:
        actions = [r.action for r in s.scalars(select(AuditRecord))]
    assert "approval.approved" in actions or any(a.startswith("approval.") for a in actions)
    assert actions.count("chat.refused") >= 4


def test_signature_and_replay_window_are_checked(chat):
    p, client, message, approval_id, _, _ = chat
    assert click(client, message, "U2", key="wrong").status_code == 401
    assert click(client, message, "U2", age=301).status_code == 401
    assert _status(p, approval_id) == "pending"


def test_a_button_no_longer_bound_to_what_would_run_is_refused(chat):
    p, client, message, approval_id, _, _ = chat
    button = message["blocks"][1]["elements"][0]["value"]
    forged = button[:-1] + ("0" if button[-1] != "0" else "1")
    assert "no longer matches" in click(client, message, "U2", value=forged).json()["text"]
    with p.db.session() as s:  # a person changed the params since the message was sent
        s.get(Approval, approval_id).params = {"service": "checkout-api"}
    assert "no longer matches" in click(client, message, "U2").json()["text"]
    assert _status(p, approval_id) == "pending"


def test_a_reply_url_outside_the_prefix_is_never_called(chat):
    p, client, message, approval_id, _, seen = chat
    click(client, message, "U2", action="reject", response_url="http://169.254.169.254/x")
    assert seen == [] and _status(p, approval_id) == "rejected"


def test_a_nonce_serves_no_more_people_than_the_approval_needs(chat):
    from baton.govern import chat as govern_chat

    p, client, message, approval_id, _, _ = chat
    value = message["blocks"][1]["elements"][0]["value"]
    with p.db.session() as s:  # someone else's click on this message already counted
        govern_chat.spend(s, value, "U7", p.clock.now())
    assert "as many people" in click(client, message, "U2").json()["text"]
    assert _status(p, approval_id) == "pending"
    with p.db.session() as s:  # four-eyes asking for two approvers: a second may click
        s.get(Approval, approval_id).required_approvals = 2
    assert click(client, message, "U2").json()["text"].startswith("approved by lee")
    with p.db.session() as s, pytest.raises(Refused, match="as many people"):
        govern_chat.check_button(s, value, KEY, "U3", p.clock.now())


BOT = "xoxb-test-bot-token"


class _SlackApi(BaseHTTPRequestHandler):
    """A local peer speaking Slack's Web API method chat.postMessage: 200 always, `ok`
    false with an error code for a wrong token or an unknown method."""

    posts: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.path.endswith("/chat.postMessage"):
            answer = {"ok": False, "error": "unknown_method"}
        elif self.headers.get("Authorization") != f"Bearer {BOT}":
            answer = {"ok": False, "error": "invalid_auth"}
        else:
            _SlackApi.posts.append(body)
            answer = {"ok": True, "channel": "C0123", "ts": "1700000000.000100"}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_the_approval_message_is_posted_with_chat_post_message(chat, monkeypatch):
    p, client, _, approval_id, _, _ = chat
    server = HTTPServer(("127.0.0.1", 0), _SlackApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}/api/"
    saved = p.config.settings
    lead = {"Authorization": f"Bearer {client.app.state.tokens['lee']}"}
    try:
        monkeypatch.setenv("BATON_SECRET_SLACK_BOT", BOT)
        p.config.settings = saved.model_copy(
            update={
                "slack_api_url": api,
                "slack_bot_token_secret": "SLACK_BOT",
                "slack_channel": "#ops-approvals",
            }
        )
        _SlackApi.posts = []
        ok = client.post(f"/api/v1/approvals/{approval_id}/chat-post", headers=lead)
        assert ok.status_code == 200 and ok.json() == {
            "channel": "C0123",
            "ts": "1700000000.000100",
        }
        [posted] = _SlackApi.posts
        assert posted["channel"] == "#ops-approvals"
        assert [e["action_id"] for e in posted["blocks"][1]["elements"]] == ["approve", "reject"]
        assert BOT not in json.dumps(posted) and KEY not in json.dumps(posted)
        monkeypatch.setenv("BATON_SECRET_SLACK_BOT", "xoxb-wrong")
        bad = client.post(f"/api/v1/approvals/{approval_id}/chat-post", headers=lead)
        assert bad.status_code == 502 and "invalid_auth" in bad.text
        with p.db.session() as s:
            records = s.scalars(
                select(AuditRecord).where(AuditRecord.subject == f"approval:{approval_id}")
            ).all()
            kinds = [r.action for r in records if r.action.startswith("chat.post")]
        assert kinds == ["chat.posted", "chat.post_failed"]
        assert BOT not in json.dumps([r.inputs for r in records])
    finally:
        p.config.settings = saved
        server.shutdown()


# --- slash commands ------------------------------------------------------------------------
def slash(client, user, text, key=KEY, age=0):
    """Slack's slash-command request: form-encoded, signed like every Slack request."""
    form = {
        "command": "/baton",
        "text": text,
        "user_id": user,
        "team_id": "T1",
        "channel_id": "C1",
        "response_url": "https://hooks.slack.com/commands/x",
    }
    return signed(client, "/api/v1/slack/commands", form, key, age)


def _refusals(p):
    with p.db.session() as s:
        return [
            r.inputs.get("action")
            for r in s.scalars(select(AuditRecord).where(AuditRecord.action == "chat.refused"))
        ]


def test_slash_oncall_names_who_holds_the_pager(estate):
    from baton.govern import oncall

    p, client, _, _ = estate
    with p.db.session() as s:
        rotation = oncall.RotationIn(
            name="shop", services=["checkout-api"], members=["tia", "lee"], start=START
        )
        oncall.put_rotation(s, rotation, Actor("lee", "human"), p.clock.now())
    one = slash(client, "U3", "oncall checkout-api").json()  # a viewer may read
    assert one["response_type"] == "ephemeral" and one["text"].startswith("checkout-api: tia")
    every = slash(client, "U3", "oncall").json()["text"]
    assert "checkout-api: tia (shop, rotation)" in every
    assert slash(client, "U2", "oncall", key="wrong").status_code == 401
    assert slash(client, "U2", "oncall", age=301).status_code == 401


def test_slash_pause_needs_a_mapped_user_who_may_operate(estate):
    from baton.govern import killswitch

    p, client, _, _ = estate
    before = len(_refusals(p))
    viewer = slash(client, "U3", "pause web deploy looks bad").json()["text"]
    assert viewer.startswith("refused") and "may not pause automation" in viewer
    stranger = slash(client, "U9", "pause web deploy looks bad").json()["text"]
    assert "not mapped" in stranger
    usage = slash(client, "U1", "pause web").json()["text"]  # no reason given
    assert usage.startswith("refused: usage")
    with p.db.session() as s:
        assert "service:web" not in killswitch.active(s)
    assert _refusals(p)[before:] == ["slash:pause"] * 3
    ok = slash(client, "U1", "pause web the deploy looks bad").json()["text"]
    assert ok == "automation paused on web by tia: the deploy looks bad"
    with p.db.session() as s:
        assert "service:web" in killswitch.active(s)
        record = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "automation.paused")
        ).all()[-1]
        assert record.actor == "tia" and "from Slack, U1" in record.rationale
        killswitch.resume(s, "service", "web", Actor("lee", "human"), "test over", p.clock.now())


def test_slash_ask_answers_offline_with_evidence(estate):
    p, client, _, incident = estate
    text = slash(client, "U3", f"ask {incident} who owns this?").json()["text"]
    assert "evidence: owner:" in text
    with p.db.session() as s:
        record = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "copilot.answered")
        ).all()[-1]
        assert record.inputs["asked_by"] == "vic" and record.actor == "baton.copilot"
    missing = slash(client, "U3", "ask 99999 what changed?").json()["text"]
    assert missing.startswith("refused") and "99999" in missing
    assert slash(client, "U3", "rollback everything").json()["text"].startswith("refused: usage")


# --- the approval message posts itself, through the outbox -------------------------------
def test_a_raised_approval_is_posted_to_slack_through_the_outbox(estate, monkeypatch):
    from datetime import timedelta

    from baton.store.models import OutboxMessage

    p, client, _, incident = estate
    server = HTTPServer(("127.0.0.1", 0), _SlackApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    saved = p.config.settings
    monkeypatch.setenv("BATON_SECRET_SLACK_BOT", "xoxb-not-yet-right")
    try:
        p.config.settings = saved.model_copy(
            update={
                "slack_api_url": f"http://127.0.0.1:{server.server_address[1]}/api/",
                "slack_bot_token_secret": "SLACK_BOT",
                "slack_channel": "#ops-approvals",
            }
        )
        _SlackApi.posts = []
        result = p.commands.propose_fix(incident, Actor("tia", "human"), "copilot says so")
        approval_id = result["approval"]
        with p.db.session() as s:  # written with the approval, before anything was sent
            [queued] = s.scalars(
                select(OutboxMessage).where(OutboxMessage.key == f"chat-approval:{approval_id}")
            ).all()
            assert queued.status == "pending" and queued.channel == "slackapp:#ops-approvals"
        assert p.dispatch.deliver_outbox() == 0 and _SlackApi.posts == []  # invalid_auth
        with p.db.session() as s:
            retry = s.get(OutboxMessage, queued.id)
            assert retry.status == "pending" and "invalid_auth" in retry.last_error
        monkeypatch.setenv("BATON_SECRET_SLACK_BOT", BOT)
        p.clock.advance(timedelta(seconds=10))  # past the first back-off
        assert p.dispatch.deliver_outbox() == 1
        [posted] = _SlackApi.posts
        assert posted["channel"] == "#ops-approvals" and f"Approval {approval_id}" in posted["text"]
        assert BOT not in json.dumps(posted) and KEY not in json.dumps(posted)
        assert p.dispatch.deliver_outbox() == 0 and len(_SlackApi.posts) == 1  # delivered once
        ok = click(client, posted, "U2")  # the posted buttons work like any other
        assert ok.json()["text"].startswith("approved by lee"), ok.json()
        assert _status(p, approval_id) == "approved"
    finally:
        p.config.settings = saved
        server.shutdown()


def test_no_message_is_queued_when_slack_is_not_configured(estate):
    from baton.store.models import OutboxMessage

    p, _, _, incident = estate
    result = p.commands.propose_fix(incident, Actor("tia", "human"), "copilot says so")
    with p.db.session() as s:
        key = f"chat-approval:{result['approval']}"
        assert s.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) is None
