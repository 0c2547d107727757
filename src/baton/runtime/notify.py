"""Delivering escalation messages: generic JSON webhooks and Slack-compatible webhooks.

Runs on the task backend, outside any database transaction; every attempt is audited
with its outcome. Email and richer routing come with the notifications work.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from baton.govern.audit import Actor, append
from baton.govern.escalation import Notice
from baton.store.db import Database

NOTIFIER = Actor("baton.notify", "system", "webhook/1")
TIMEOUT_S = 5.0


def channel_url(channel: str) -> str:
    """The webhook URL behind a channel name, from BATON_CHANNEL_<NAME>.

    URLs of chat webhooks are secrets (the path is the credential), so policies, the
    audit ledger and the API only ever hold the name.
    """
    kind, _, name = channel.partition(":")
    if kind not in ("webhook", "slack") or not name:
        raise ValueError(f"cannot deliver to {channel!r}: use webhook:NAME or slack:NAME")
    variable = "BATON_CHANNEL_" + name.upper().replace("-", "_")
    url = os.environ.get(variable, "")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"channel {channel!r} has no URL: set {variable}")
    return url


def _slack_safe(text: str) -> str:
    """Slack treats <...> as links and mentions (<!channel>); ours is plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(notice: Notice) -> tuple[str, dict[str, Any]]:
    """(url, JSON body) for a channel, or ValueError for a channel we cannot deliver."""
    url = channel_url(notice.channel)
    if notice.channel.startswith("slack:"):
        return url, {"text": _slack_safe(notice.text)}
    return url, {"escalation": notice.escalation_id, "text": notice.text}


def deliver(db: Database, notice: Notice, at: Any) -> bool:
    """Send one notice; record in the audit ledger whether it arrived."""
    try:
        url, body = payload(notice)
        response = httpx.post(url, json=body, timeout=TIMEOUT_S)
        ok, detail = response.is_success, f"HTTP {response.status_code}"
    except (ValueError, httpx.HTTPError) as exc:
        ok, detail = False, type(exc).__name__ + (f": {exc}" if isinstance(exc, ValueError) else "")
    with db.session() as s:
        append(
            s,
            actor=NOTIFIER,
            action="escalation.delivery",
            subject=f"escalation:{notice.escalation_id}",
            at=at,
            inputs={"channel": notice.channel.split(":", 1)[0]},
            decision="delivered" if ok else "failed",
            rationale=detail,
        )
    return ok
