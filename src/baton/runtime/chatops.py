"""Approval messages to Slack, posted by themselves when an approval is raised.

The message (blocks with buttons bound to the exact action) is written to the outbox in
the same transaction as the approval, so a crash between the two loses neither; the
outbox delivers it later, at least once, with Slack's Web API `chat.postMessage` under
the bot token (the `slackapp:` channel kind in runtime/notify.py). A message is built
when the approval is raised: its buttons expire with the approval (or after
`chat.BUTTON_TTL`), and a person who changes the params makes them refuse, as any
button would.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from baton.act import secrets
from baton.govern import chat
from baton.kernel.outbox import enqueue
from baton.runtime.notify import SLACK_APP
from baton.runtime.settings import Settings

KIND = "chat.approval"


def configured(settings: Settings) -> bool:
    """Slack is configured for approvals: a signing secret, a bot token and a channel."""
    return bool(
        settings.slack_signing_secret and settings.slack_bot_token_secret and settings.slack_channel
    )


def signing_key(settings: Settings) -> str | None:
    """The signing secret's value by its name, or None when it is not set."""
    name = settings.slack_signing_secret
    try:
        return secrets.resolve([name])[f"secret.{name}"] if name else None
    except KeyError:
        return None


def announce(session: Session, settings: Settings, approval_id: int, at: datetime) -> bool:
    """Put the approval's chat message in the outbox (inside the caller's transaction);
    False when Slack is not configured or its signing secret is missing."""
    if not configured(settings):
        return False
    key = signing_key(settings)
    if not key:
        return False
    message = chat.approval_message(session, approval_id, key, at)
    return enqueue(
        session,
        key=f"chat-approval:{approval_id}",
        kind=KIND,
        channel=f"{SLACK_APP}:{settings.slack_channel}",
        subject=f"approval:{approval_id}",
        title=f"Approval {approval_id}",
        text=message["text"],
        data={"blocks": message["blocks"]},
        at=at,
    )
