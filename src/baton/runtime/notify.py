"""Delivering escalation messages: generic JSON webhooks and Slack-compatible webhooks.

Runs on the task backend, outside any database transaction; every attempt is audited
with its outcome. Email and richer routing come with the notifications work.
"""

from __future__ import annotations

from typing import Any

import httpx

from baton.govern.audit import Actor, append
from baton.govern.escalation import Notice
from baton.store.db import Database

NOTIFIER = Actor("baton.notify", "system", "webhook/1")
TIMEOUT_S = 5.0


def payload(notice: Notice) -> tuple[str, dict[str, Any]]:
    """(url, JSON body) for a channel, or ValueError for a channel we cannot deliver."""
    kind, _, url = notice.channel.partition(":")
    if kind not in ("webhook", "slack") or not url.startswith(("http://", "https://")):
        raise ValueError(f"cannot deliver to {notice.channel!r}: use webhook:URL or slack:URL")
    if kind == "slack":
        return url, {"text": notice.text}
    return url, {"escalation": notice.escalation_id, "text": notice.text}


def deliver(db: Database, notice: Notice, at: Any) -> bool:
    """Send one notice; record in the audit ledger whether it arrived."""
    try:
        url, body = payload(notice)
        response = httpx.post(url, json=body, timeout=TIMEOUT_S)
        ok, detail = response.is_success, f"HTTP {response.status_code}"
    except (ValueError, httpx.HTTPError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
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
