"""Delivering messages to channels: Slack-compatible webhooks, generic JSON webhooks and
email over SMTP.

A channel is `KIND:NAME`; its address comes from BATON_CHANNEL_<NAME> at delivery time
(a webhook URL, whose path is the credential, or comma-separated mail recipients), so
policies, the routing file, the audit ledger and the API only ever hold the name. SMTP
credentials come from settings and a named secret. Runs on the task backend, outside any
database transaction; every attempt is audited with its outcome.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx

from baton.act.secrets import resolve
from baton.govern.chat import post_message
from baton.kernel.audit import Actor, append
from baton.runtime.settings import Settings
from baton.store.db import Database

NOTIFIER = Actor("baton.notify", "system", "channels/2")
TIMEOUT_S = 5.0
KINDS = ("slack", "webhook", "email")
SLACK_APP = "slackapp"  # `slackapp:CHANNEL`: the Slack app's Web API, not a webhook
_ADDRESS = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")
MAX_LISTED = 20  # incidents written out in one message; the rest are counted


@dataclass(frozen=True)
class Message:
    """One thing to say, in the forms the kinds of channel want."""

    subject: str  # what the audit record is about, e.g. "escalation:3"
    title: str  # one line: the email subject
    text: str  # plain text: Slack and the email body
    data: dict[str, Any] = field(default_factory=dict)  # the generic webhook's JSON body


class ChannelError(ValueError):
    """A channel that cannot be delivered to as configured."""


def channel_address(channel: str) -> tuple[str, str]:
    """(kind, address) of a channel, from BATON_CHANNEL_<NAME>."""
    kind, _, name = channel.partition(":")
    if kind not in KINDS or not name:
        raise ChannelError(f"cannot deliver to {channel!r}: use slack:, webhook: or email:NAME")
    variable = "BATON_CHANNEL_" + name.upper().replace("-", "_")
    address = os.environ.get(variable, "").strip()
    if kind == "email":
        recipients = [a.strip() for a in address.split(",") if a.strip()]
        if not recipients or not all(_ADDRESS.fullmatch(a) for a in recipients):
            raise ChannelError(f"channel {channel!r} needs mail addresses: set {variable}")
        return kind, ",".join(recipients)
    if not address.startswith(("http://", "https://")):
        raise ChannelError(f"channel {channel!r} has no URL: set {variable}")
    return kind, address


def _slack_safe(text: str) -> str:
    """Slack treats <...> as links and mentions (<!channel>); ours is plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _post(url: str, body: dict[str, Any], key: str | None = None) -> tuple[bool, str]:
    headers = {"Idempotency-Key": key} if key else {}
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:  # its message may carry the URL: say only what failed
        return False, type(exc).__name__
    return response.is_success, f"HTTP {response.status_code}"


def _mail(
    settings: Settings, recipients: str, message: Message, key: str | None = None
) -> tuple[bool, str]:
    if not settings.smtp_host:
        raise ChannelError("email channels need BATON_SMTP_HOST")
    mail = EmailMessage()
    subject = " ".join(message.title.split())[:200]  # headers hold no line breaks
    mail["From"], mail["To"], mail["Subject"] = settings.smtp_from, recipients, subject
    if key:  # the same key on every attempt: a mail filter can drop repeats
        mail["X-Baton-Idempotency-Key"] = key
    mail.set_content(message.text)
    password = None
    if settings.smtp_password_secret:
        password = resolve([settings.smtp_password_secret])[
            f"secret.{settings.smtp_password_secret}"
        ]
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, password or "")
            refused = smtp.send_message(mail)
    except smtplib.SMTPResponseException as exc:  # the code says enough; no server text
        return False, f"SMTP {exc.smtp_code} ({type(exc).__name__})"
    except (smtplib.SMTPException, OSError) as exc:
        return False, type(exc).__name__
    if refused:
        return False, f"SMTP refused {len(refused)} of {len(recipients.split(','))} recipient(s)"
    return True, "SMTP accepted"


def chat_reply(
    settings: Settings, conversation: str, ticket: int, text: str, token: str = ""
) -> tuple[bool, str] | None:
    """Post an approved answer back into the conversation a ticket came from: the Slack
    thread (with the bot token) or the generic chat's reply URL; None when the
    conversation's kind has nowhere configured to go."""
    if conversation.startswith("slack:"):
        _, channel, ts = conversation.split(":", 2)
        if not token:
            return None
        body = {"channel": channel, "thread_ts": ts, "text": _slack_safe(text)}
        _, error = post_message(settings.slack_api_url, token, body)
        return error is None, error or "ok"
    if not settings.desk_chat_reply_url:
        return None
    return _post(
        settings.desk_chat_reply_url,
        {"conversation": conversation, "ticket": ticket, "text": text},
    )


def _slack_app(settings: Settings, channel: str, message: Message) -> tuple[bool, str]:
    """Post with Slack's Web API (`chat.postMessage`, the bot token from the named
    secret as Bearer): the only way a message with buttons (blocks) reaches Slack."""
    name = settings.slack_bot_token_secret
    if not name or not channel:
        raise ChannelError("slack app messages need BATON_SLACK_BOT_TOKEN_SECRET and a channel")
    token = resolve([name])[f"secret.{name}"]
    body = {"channel": channel, "text": message.text, "blocks": message.data.get("blocks", [])}
    _, error = post_message(settings.slack_api_url, token, body)
    return error is None, "Slack took it" if error is None else f"Slack: {error}"


def send_mail(settings: Settings, recipients: str, message: Message) -> tuple[bool, str]:
    """Mail one message to explicit recipients (the service desk's codes and replies)."""
    return _mail(settings, recipients, message)


def send(
    settings: Settings, channel: str, message: Message, key: str | None = None
) -> tuple[bool, str]:
    """Deliver one message on one channel: (arrived, what happened, without addresses).
    `key` goes out as an idempotency key (HTTP header, mail header) when given."""
    if channel.startswith(f"{SLACK_APP}:"):
        return _slack_app(settings, channel.partition(":")[2], message)
    kind, address = channel_address(channel)
    if kind == "email":
        return _mail(settings, address, message, key)
    if kind == "slack":
        return _post(address, {"text": _slack_safe(message.text)}, key)
    return _post(address, message.data, key)


def deliver(
    db: Database, settings: Settings, channel: str, message: Message, action: str, at: datetime
) -> bool:
    """Send one message and record in the audit ledger whether it arrived."""
    try:
        ok, detail = send(settings, channel, message)
    except (ChannelError, KeyError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a message that cannot be sent is a failed delivery, audited
        ok, detail = False, f"could not send: {type(exc).__name__}"
    with db.session() as s:
        append(
            s,
            actor=NOTIFIER,
            action=action,
            subject=message.subject,
            at=at,
            inputs={"channel": channel},
            decision="delivered" if ok else "failed",
            rationale=detail,
        )
    return ok


def group_message(notification: dict[str, Any]) -> Message:
    """A notification group's message: what fires or resolved, and under which labels."""
    incidents = notification["incidents"]
    status = notification["status"]
    firing = [i for i in incidents if i["status"] == "firing"]
    resolved = [i for i in incidents if i["status"] == "resolved"]
    labels = ", ".join(f"{k}={v}" for k, v in notification["labels"].items())
    head = f"[Baton] {status.upper()}"
    head += f":{len(firing)}" if status == "firing" else ""
    title = f"{head} {labels or notification['receiver']}"
    lines = [title]
    for name, items in (("Firing", firing), ("Resolved", resolved)):
        if items:
            lines.append(f"{name}:")
            lines += [
                f"- incident #{i['id']} [{i['severity']}] {i['title']}" for i in items[:MAX_LISTED]
            ]
            if len(items) > MAX_LISTED:
                lines.append(f"- … and {len(items) - MAX_LISTED} more")
    return Message(
        subject=f"notification-group:{notification['group']}",
        title=title[:200],
        text="\n".join(lines),
        data={
            "version": "1",
            "status": status,
            "receiver": notification["receiver"],
            "group_labels": notification["labels"],
            "incidents": incidents,
        },
    )
