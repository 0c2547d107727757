"""Approvals from a Slack-compatible app: signed requests, bound single-use buttons,
mapped people, four-eyes, and the reply to a local response_url server."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
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
    yield p, TestClient(create_app(p)), tokens, incident
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
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()) - age)
    sig = "v0=" + hmac.new(key.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return client.post(
        "/api/v1/slack/actions",
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
