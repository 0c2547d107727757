"""Chat intake: a Slack-compatible Events API endpoint and a generic webhook.

A conversation (Slack channel + thread, or the webhook's conversation id) is one
ticket: its first message files it, later ones are comments. The reply offers the
knowledge articles that may answer it and, when the text asks for something the
catalogue does, the self-service item to start — which still goes through the identity
check; nothing said in a chat can skip it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from baton.kernel.errors import Invalid

INTENTS = (
    ("password_reset", re.compile(r"\b(reset|forgot|forgotten|change)\b.*\bpassword\b", re.I)),
    ("account_unlock", re.compile(r"\b(locked( out)?|unlock)\b", re.I)),
    ("group_access", re.compile(r"\baccess to\b|\badd me to\b", re.I)),
    ("disk_quota", re.compile(r"\b(quota|disk (is )?full|out of (disk )?space)\b", re.I)),
    (
        "software_request",
        re.compile(r"\b(install|need|request)\b.*\b(software|program|app|licen[cs]e)\b", re.I),
    ),
)


@dataclass(frozen=True)
class ChatMessage:
    conversation: str  # e.g. "slack:C123:1700000000.000100"
    user: str
    text: str


def intent(text: str) -> str | None:
    """The catalogue item the text asks for, if any (first match in catalogue order)."""
    return next((name for name, pattern in INTENTS if pattern.search(text)), None)


def from_slack(payload: dict[str, object]) -> ChatMessage | None:
    """A person's message from an `event_callback`; None for anything to ignore (bots,
    edits, joins, our own messages)."""
    event = payload.get("event")
    if payload.get("type") != "event_callback" or not isinstance(event, dict):
        return None
    if event.get("type") not in ("message", "app_mention") or event.get("subtype"):
        return None
    if event.get("bot_id"):
        return None
    text, user = event.get("text"), event.get("user")
    channel, ts = event.get("channel"), event.get("thread_ts") or event.get("ts")
    if not all(isinstance(v, str) and v for v in (text, user, channel, ts)):
        raise Invalid("a Slack message needs text, user, channel and ts", "event")
    return ChatMessage(f"slack:{channel}:{ts}", f"slack:{user}", str(text))
