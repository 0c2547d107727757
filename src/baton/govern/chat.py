"""Approvals from chat (a Slack-compatible app): the message with its buttons, and what
a click must prove before it counts.

A button's value names the approval and is bound to exactly what would run: an HMAC,
under the app's signing secret, of the runbook, its version, the params, the target, an
expiry and a nonce. A click on a button whose action has changed since (params edited,
another version) or that has expired is refused; each person can use a nonce once, and
no more people than the approval needs (the ledger keeps the uses). The value carries no
secret. The clicking Slack user must map to a Baton user whose role may operate;
four-eyes is checked again by `flows.approve`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.govern.flows import params_of, proposal_of
from baton.govern.rbac import Permission, Principal, allows, parse_role
from baton.kernel.audit import Actor, append
from baton.kernel.errors import NotFound, Refused
from baton.store.models import Approval, AuditRecord, Incident, User

BUTTON_TTL = timedelta(hours=4)
POST_TIMEOUT_S = 5.0
POSTER = Actor("baton.chat", "system", "slack-post/1")
ACTIONS = ("approve", "reject")


def _digest(key: str, approval_id: int, what: str, expires: int, nonce: str) -> str:
    msg = f"{approval_id}|{what}|{expires}|{nonce}".encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()[:32]


def bound_action(session: Session, approval: Approval) -> str:
    """What approving would run, canonically: runbook@version, params, target."""
    proposal = proposal_of(session, approval)
    incident = session.get(Incident, proposal.incident_id) if proposal.incident_id else None
    params = json.dumps(params_of(session, approval), sort_keys=True, separators=(",", ":"))
    target = incident.origin_service if incident else None
    return f"{proposal.runbook_id}@{proposal.runbook_version}|{params}|{target}"


def button_value(session: Session, approval: Approval, key: str, at: datetime) -> str:
    expires = int((at + BUTTON_TTL).timestamp())
    if approval.expires_at is not None:
        expires = min(expires, int(approval.expires_at.timestamp()))
    nonce = secrets.token_hex(8)
    digest = _digest(key, approval.id, bound_action(session, approval), expires, nonce)
    return f"{approval.id}.{expires}.{nonce}.{digest}"


def approval_message(session: Session, approval_id: int, key: str, at: datetime) -> dict[str, Any]:
    """A Slack message (blocks) asking for this approval, with bound buttons."""
    approval = session.get(Approval, approval_id)
    if approval is None:
        raise NotFound(f"no approval {approval_id}")
    proposal = proposal_of(session, approval)
    value = button_value(session, approval, key, at)
    text = (
        f"Approval {approval.id}: run *{proposal.runbook_id}* with "
        f"`{json.dumps(params_of(session, approval), sort_keys=True)}` "
        f"(confidence {proposal.confidence}) — {proposal.rationale[:300]}"
    )
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "actions",
                "block_id": f"approval-{approval.id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": name,
                        "text": {"type": "plain_text", "text": name.title()},
                        "style": "primary" if name == "approve" else "danger",
                        "value": value,
                    }
                    for name in ACTIONS
                ],
            },
        ],
    }


def check_button(session: Session, value: str, key: str, slack_user: str, at: datetime) -> int:
    """The approval a clicked button is for, once it proves it is still bound to what
    would run, unexpired, not used before by this person nor by as many people as the
    approval needs; else Refused. `spend` records the use once the click counted."""
    try:
        raw_id, raw_expires, nonce, digest = value.split(".")
        approval_id, expires = int(raw_id), int(raw_expires)
    except ValueError:
        raise Refused("malformed button") from None
    approval = session.get(Approval, approval_id)
    if approval is None:
        raise NotFound(f"no approval {approval_id}")
    want = _digest(key, approval_id, bound_action(session, approval), expires, nonce)
    if not hmac.compare_digest(want, digest):
        raise Refused("this button no longer matches what would run; ask for a fresh message")
    if at.timestamp() > expires:
        raise Refused("this button has expired")
    if session.scalar(
        select(AuditRecord.seq).where(AuditRecord.subject == _use(value, slack_user)).limit(1)
    ):
        raise Refused("this button was already used by you")
    spent = session.scalars(
        select(AuditRecord.subject).where(AuditRecord.subject.startswith(f"chat-nonce:{nonce}:"))
    ).all()
    if len(set(spent)) >= max(1, approval.required_approvals):
        raise Refused("this button has been used by as many people as the approval needs")
    return approval_id


def _use(value: str, slack_user: str) -> str:
    return f"chat-nonce:{value.split('.')[2]}:{slack_user}"[:128]


def spend(session: Session, value: str, slack_user: str, at: datetime) -> None:
    """Record that `slack_user` used the button, once the click counted: a nonce serves
    one person once, and as many people as the approval needs (four-eyes asks for more
    than one approver, each with their own click on the same message), never more. A
    click that was refused (the requester, a viewer) spends nothing."""
    append(
        session,
        actor=Actor(f"slack:{slack_user}", "human"),
        action="chat.button_used",
        subject=_use(value, slack_user),
        at=at,
        inputs={"approval": int(value.split(".")[0])},
        decision="accepted",
    )


def person(
    session: Session,
    slack_user: str,
    mapping: dict[str, str],
    need: Permission = Permission.OPERATE,
    doing: str = "approve",
) -> Principal:
    """The Baton user a Slack user is, whose role must grant `need`; else Refused."""
    name = mapping.get(slack_user)
    if not name:
        raise Refused(f"Slack user {slack_user} is not mapped to a Baton user")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise Refused(f"Baton user {name} does not exist")
    role = parse_role(user.role)
    if not allows(role, need):
        raise Refused(f"{name} ({role}) may not {doing}")
    return Principal(name, role)


# --- slash commands ----------------------------------------------------------------------
SLASH_USAGE = (
    "usage: `/baton oncall [service]`, `/baton pause <service> <reason>`, "
    "`/baton ask <incident-id> <question>`"
)
# what each command needs of the mapped Baton user's role, and what it is called then
SLASH_NEEDS: dict[str, tuple[Permission, str]] = {
    "oncall": (Permission.READ, "see who is on call"),
    "ask": (Permission.READ, "ask the copilot"),
    "pause": (Permission.OPERATE, "pause automation"),
}


@dataclass(frozen=True)
class Slash:
    """One parsed `/baton ...` command: the verb, what it is about, the free text."""

    verb: str
    target: str | None
    text: str

    @property
    def incident(self) -> int:
        return int(self.target or 0)


def parse_slash(text: str) -> Slash:
    """`oncall [service]`, `pause <service> <reason>`, `ask <incident-id> <question>`;
    Refused with the usage for anything else. The text is the sender's words: it names
    a verb from a fixed set and is never run or read as an instruction."""
    words = text.split(None, 2)
    verb = words[0].lower() if words else ""
    target = words[1] if len(words) > 1 else None
    rest = words[2].strip() if len(words) > 2 else ""
    if verb == "oncall" and len(words) <= 2:
        return Slash(verb, target, "")
    if verb == "pause" and target and rest:
        return Slash(verb, target, rest)
    if verb == "ask" and target and target.isdigit() and rest:
        return Slash(verb, target, rest)
    raise Refused(SLASH_USAGE)


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str
    error: str | None = None  # Slack's error code when it did not take the message


def post_message(
    api_url: str, bot_token: str, body: dict[str, Any], client: httpx.Client | None = None
) -> tuple[dict[str, Any], str | None]:
    """Slack's Web API `chat.postMessage` (JSON body, bot token as Bearer): Slack's answer
    and its error code, None when it took the message. Slack answers 200 with
    ``{"ok": false, "error": ...}`` on failure, so `ok` is what counts."""
    url = api_url.rstrip("/") + "/chat.postMessage"
    headers = {"Authorization": f"Bearer {bot_token}"}
    try:
        if client is None:
            response = httpx.post(url, json=body, headers=headers, timeout=POST_TIMEOUT_S)
        else:
            response = client.post(url, json=body, headers=headers)
        answer = response.json() if response.status_code == 200 else {}
        if not isinstance(answer, dict):
            answer = {}
    except (httpx.HTTPError, ValueError) as exc:
        return {}, type(exc).__name__
    return answer, None if answer.get("ok") is True else str(
        answer.get("error") or response.status_code
    )


def post_approval(
    session: Session,
    approval_id: int,
    *,
    api_url: str,
    bot_token: str,
    channel: str,
    key: str,
    at: datetime,
    client: httpx.Client | None = None,
) -> Posted:
    """Post the approval's message, buttons bound, with Slack's Web API method
    `chat.postMessage`; a failure comes back with Slack's error code (it is in the
    ledger, so it is not raised here). The
    token goes in the header only, never the body, the ledger or a button."""
    message = approval_message(session, approval_id, key, at)
    body = {"channel": channel, "text": message["text"], "blocks": message["blocks"]}
    answer, error = post_message(api_url, bot_token, body, client)
    append(
        session,
        actor=POSTER,
        action="chat.posted" if error is None else "chat.post_failed",
        subject=f"approval:{approval_id}",
        at=at,
        inputs={"channel": channel, "api": api_url, "error": error, "ts": answer.get("ts")},
        decision="delivered" if error is None else "failed",
    )
    return Posted(str(answer.get("channel") or channel), str(answer.get("ts") or ""), error)
