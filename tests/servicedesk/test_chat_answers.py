"""An approved answer goes back into the chat it came from: the generic chat's reply URL
or the Slack thread (chat.postMessage with the bot token); a rejected one goes nowhere."""

from __future__ import annotations

import pytest

from baton.kernel.audit import Actor, records
from baton.servicedesk import chat, knowledge

TIA = Actor("tia", "human")


@pytest.fixture
def replies(shared, http_peer, monkeypatch):
    """What the generic chat's reply URL is sent."""
    url, seen = http_peer
    update = {"desk_chat_reply_url": f"{url}/reply"}
    monkeypatch.setattr(shared.desk, "settings", shared.settings.model_copy(update=update))
    return seen


def _draft(shared, conversation: str, channel: str) -> dict:
    knowledge.write_article(
        shared.settings.kb_path, "printer-toner", "Printer toner", "Toner sits in room 2."
    )
    message = chat.ChatMessage(conversation, "bo", "where is the printer toner kept")
    ticket = shared.desk.chat(message, channel)["ticket"]
    [draft] = shared.desk.show(ticket)["answers"]
    return draft


def test_an_approved_answer_is_posted_to_the_generic_chat(shared, replies):
    seen = replies
    draft = _draft(shared, "web:c-1", "chat")
    out = shared.desk.answer(draft["id"], True, TIA)
    assert out["posted"] is True
    [(path, _, body)] = seen
    assert path == "/reply" and body["conversation"] == "web:c-1"
    assert body["ticket"] == draft["ticket"] and "room 2" in body["text"]
    with shared.db.session() as s:
        [rec] = [
            r
            for r in records(s, subject=f"ticket:{draft['ticket']}")
            if r.action == "answer.posted"
        ]
        assert rec.decision == "delivered"


def test_slack_answers_go_to_the_thread_with_the_bot_token(shared, http_peer, monkeypatch):
    url, seen = http_peer
    monkeypatch.setenv("BATON_SECRET_SLACKBOT", "xoxb-test")
    monkeypatch.setattr(
        shared.desk,
        "settings",
        shared.settings.model_copy(
            update={"slack_bot_token_secret": "SLACKBOT", "slack_api_url": f"{url}/api/"}
        ),
    )
    rejected = _draft(shared, "slack:C9:1700000000.000200", "slack")
    assert "posted" not in shared.desk.answer(rejected["id"], False, TIA)
    draft = _draft(shared, "slack:C9:1700000000.000300", "slack")
    out = shared.desk.answer(draft["id"], True, TIA)
    assert out["posted"] is False  # the peer's reply is not Slack's {"ok": true}
    [(path, auth, body)] = seen
    assert path == "/api/chat.postMessage" and auth == "Bearer xoxb-test"
    assert body["channel"] == "C9" and body["thread_ts"] == "1700000000.000300"


def test_the_policy_may_let_one_categorys_answers_go_alone(shared, replies, monkeypatch):
    seen = replies
    policy = shared.config.policy.model_copy(update={"answers": {"email": "auto"}})
    monkeypatch.setattr(shared.config, "policy", policy)
    knowledge.write_article(
        shared.settings.kb_path, "mail-signature", "Email signature", "Outlook: File, Options."
    )
    message = chat.ChatMessage("web:c-9", "bo", "how do I change my email signature in outlook")
    ticket = shared.desk.chat(message)["ticket"]
    shown = shared.desk.show(ticket)
    assert shown["category"] == "email" and shown["answers"] == []  # none left pending
    assert "Options" in shown["comments"][-1]["body"]
    [(_, _, body)] = seen
    assert body["conversation"] == "web:c-9"
    with shared.db.session() as s:
        [rec] = [
            r for r in records(s, subject=f"ticket:{ticket}") if r.action == "answer.auto_sent"
        ]
        assert rec.rationale == "policy answers.email: auto" and rec.actor_kind == "ai"
    other = _draft(shared, "web:c-10", "chat")  # another category still waits
    assert other["status"] == "pending"
