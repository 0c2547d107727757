"""Slack-compatible interactivity: approval buttons clicked in chat.

Slack signs every request (``v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")``); a bad
signature, or a timestamp outside the replay window, is 401 before the payload is read.
The clicking Slack user is mapped to a Baton user and the click goes through
`Commands.approve`/`reject`, where four-eyes and the audit apply as at any other door.
Slack wants a 200 for every verified request, so refusals are said in the reply text.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from baton.act import secrets
from baton.api.deps import platform, require, slack_signing_key, verified_slack
from baton.api.errors import ApiError
from baton.api.params import Id
from baton.govern import chat, oncall
from baton.govern.rbac import Permission, Principal
from baton.kernel.audit import Actor, append
from baton.kernel.errors import Invalid, NotFound, Refused
from baton.runtime.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["chat"])
READ = Depends(require(Permission.READ))
OPERATE = Depends(require(Permission.OPERATE))
SLACK_PATH = "/slack/actions"  # under /api/v1; public in api/authn.py
SLASH_COMMANDS = "/slack/commands"  # likewise


def _spend(p: Platform, value: str, slack_user: str) -> None:
    with p.db.session() as s:
        chat.spend(s, value, slack_user, p.clock.now())


def _refused(p: Platform, slack_user: str, what: str, exc: Exception, at: Any) -> str:
    with p.db.session() as s:
        append(
            s,
            actor=Actor(f"slack:{slack_user}", "human"),
            action="chat.refused",
            subject=f"slack:{slack_user}"[:128],
            at=at,
            inputs={"action": what},
            decision="refused",
            rationale=str(exc),
        )
    return f"refused: {exc}"


def _click(p: Platform, key: str, slack_user: str, action: str, value: str) -> str:
    at = p.clock.now()
    try:
        with p.db.session() as s:
            approval_id = chat.check_button(s, value, key, slack_user, at)
            who = chat.person(s, slack_user, p.config.settings.slack_users)
        actor = Actor(who.name, "human")
        reason = f"{action} from Slack ({slack_user})"
        if action == "approve":
            execution = p.commands.approve(approval_id, actor, reason)
            _spend(p, value, slack_user)
            queued = f"; execution {execution.id} queued" if execution else "; waiting for more"
            return f"approved by {who.name}{queued}"
        if action == "reject":
            p.commands.reject(approval_id, actor, reason)
            _spend(p, value, slack_user)
            return f"rejected by {who.name}"
        raise Refused(f"unknown action {action!r}")
    except (Refused, NotFound) as exc:
        return _refused(p, slack_user, action, exc, at)


def _on_call_line(o: oncall.OnCall) -> str:
    until = f" until {o.until.isoformat()}" if o.until else ""
    who = o.user or "nobody"
    return f"{o.service}: {who} ({o.rotation or 'no rotation'}, {o.source}){until}"


def _slash(p: Platform, slack_user: str, text: str) -> str:
    """Run one `/baton` command as the mapped Baton user, whose role is checked for
    that command; refusals (an unknown user, too little role, bad usage) are audited."""
    at = p.clock.now()
    verb = text.split(None, 1)[0].lower() if text.strip() else ""
    try:
        command = chat.parse_slash(text)
        need, doing = chat.SLASH_NEEDS[command.verb]
        with p.db.session() as s:
            who = chat.person(s, slack_user, p.config.settings.slack_users, need, doing)
        actor = Actor(who.name, "human")
        if command.verb == "oncall":
            with p.db.session() as s:
                holders = (
                    [oncall.who_is_on_call(s, command.target, at)]
                    if command.target
                    else oncall.everyone_on_call(s, at)
                )
            return "\n".join(_on_call_line(o) for o in holders) or "no rotation is set up"
        if command.verb == "pause":
            reason = f"{command.text} (from Slack, {slack_user})"
            p.commands.pause("service", command.target, actor, reason)
            return f"automation paused on {command.target} by {who.name}: {command.text}"
        answer = p.commands.ask(command.incident, command.text, actor, offline=True)
        cited = ", ".join(answer["evidence"]) or "nothing gathered (unsupported)"
        return f"{answer['answer']}\nevidence: {cited}"
    except (Refused, NotFound, Invalid) as exc:
        return _refused(p, slack_user, f"slash:{verb}"[:64], exc, at)


def _reply(p: Platform, url: str, text: str) -> None:
    """Update the message through its response_url, only under the configured prefix
    (never a URL of the sender's choosing elsewhere)."""
    if not url or not url.startswith(p.config.settings.slack_response_prefix):
        return
    with contextlib.suppress(httpx.HTTPError):  # the click counted; the update is a courtesy
        httpx.post(url, json={"replace_original": False, "text": text}, timeout=5.0)


@router.post(SLACK_PATH, include_in_schema=False)
async def slack_actions(request: Request, p: Platform = Depends(platform)) -> dict[str, Any]:
    key = slack_signing_key(p)
    body = await request.body()
    verified_slack(request, body, key, time.time())
    try:
        payload = orjson.loads(parse_qs(body.decode())["payload"][0])
        slack_user = str(payload["user"]["id"])
        [action] = payload["actions"][:1]
        action_id, value = str(action["action_id"]), str(action["value"])
    except (KeyError, ValueError, TypeError, IndexError, orjson.JSONDecodeError):
        raise ApiError(400, "bad_request", "not a Slack block_actions payload") from None
    if payload.get("type") != "block_actions":
        raise ApiError(400, "bad_request", "only block_actions are handled")
    text = await run_in_threadpool(_click, p, key, slack_user, action_id, value)
    await run_in_threadpool(_reply, p, str(payload.get("response_url") or ""), text)
    return {"response_type": "ephemeral", "text": text}


@router.post(SLASH_COMMANDS, include_in_schema=False)
async def slack_commands(request: Request, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Slack's slash commands: a form-encoded POST signed like every Slack request."""
    key = slack_signing_key(p)
    body = await request.body()
    verified_slack(request, body, key, time.time())
    form = parse_qs(body.decode(errors="replace"))
    slack_user = (form.get("user_id") or [""])[0]
    if not slack_user:
        raise ApiError(400, "bad_request", "not a Slack slash command (no user_id)")
    text = await run_in_threadpool(_slash, p, slack_user, (form.get("text") or [""])[0])
    return {"response_type": "ephemeral", "text": text}


@router.get(
    "/approvals/{approval_id}/chat-message",
    summary="A Slack message for this approval, with buttons bound to what would run",
)
def chat_message(
    approval_id: Id, _: Principal = READ, p: Platform = Depends(platform)
) -> dict[str, Any]:
    if not p.settings.slack_signing_secret:
        raise ApiError(404, "not_found", "chat approvals are not configured")
    key = slack_signing_key(p)
    with p.db.session() as s:
        return chat.approval_message(s, approval_id, key, p.clock.now())


@router.post(
    "/approvals/{approval_id}/chat-post",
    summary="Post this approval's message to the configured Slack channel (chat.postMessage)",
)
def chat_post(
    approval_id: Id, _: Principal = OPERATE, p: Platform = Depends(platform)
) -> dict[str, Any]:
    settings = p.config.settings  # live: a changed channel applies without a restart
    if not (settings.slack_signing_secret and settings.slack_bot_token_secret):
        raise ApiError(404, "not_found", "posting approvals to chat is not configured")
    if not settings.slack_channel:
        raise ApiError(422, "invalid", "no slack_channel is set")
    key = slack_signing_key(p)
    try:
        token = secrets.resolve([settings.slack_bot_token_secret])[
            f"secret.{settings.slack_bot_token_secret}"
        ]
    except KeyError:
        raise ApiError(503, "unavailable", "the Slack bot token is not set") from None
    with p.db.session() as s:
        posted = chat.post_approval(
            s,
            approval_id,
            api_url=settings.slack_api_url,
            bot_token=token,
            channel=settings.slack_channel,
            key=key,
            at=p.clock.now(),
        )
    if posted.error:
        raise ApiError(502, "bad_gateway", f"Slack did not take the message: {posted.error}")
    return {"channel": posted.channel, "ts": posted.ts}
