"""The service desk over HTTP: tickets and their history, answers awaiting an agent,
field options, knowledge articles, self-service and chat intake.

Filing a ticket stays `POST /api/v1/tickets` (signals). Every change here goes through
the platform's desk commands, as the person whose token it is.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from baton.api.deps import (
    actor_of,
    parse_json,
    parsed,
    platform,
    require,
    session,
    slack_signing_key,
    verified_slack,
)
from baton.api.errors import ApiError
from baton.api.params import Id, RowId
from baton.govern.rbac import Permission, Principal
from baton.runtime.platform import Platform
from baton.servicedesk import chat, knowledge
from baton.servicedesk import tickets as tickets_
from baton.servicedesk.tickets import to_dict as ticket_dict

router = APIRouter(prefix="/api/v1", tags=["service desk"])
READ = Depends(require(Permission.READ))
OPERATE = Depends(require(Permission.OPERATE))
INGEST = Depends(require(Permission.INGEST))
GOVERN = Depends(require(Permission.GOVERN))
SLACK_EVENTS = "/desk/slack/events"  # public: Slack signs instead (see authn)


@router.get("/tickets")
def tickets(
    limit: int = Query(100, ge=1, le=1000), _: Principal = READ, s: Session = Depends(session)
) -> list[dict[str, Any]]:
    return [ticket_dict(t) for t in tickets_.recent(s, limit)]


@router.get("/tickets/{ticket_id}")
def ticket(ticket_id: Id, _: Principal = READ, p: Platform = Depends(platform)) -> dict[str, Any]:
    return p.desk.show(ticket_id)


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str = Field(pattern=r"^(category|priority|group|assignee|service|status)$")
    value: str | None = Field(default=None, max_length=128)


@router.post("/tickets/{ticket_id}/changes", summary="Change a field or the status")
def change(
    ticket_id: Id,
    who: Principal = OPERATE,
    body: ChangeIn = Depends(parsed(ChangeIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    p.desk.update(ticket_id, body.field, body.value, actor_of(who))
    return p.desk.show(ticket_id)


@router.post("/tickets/changes/{change_id}/revert", summary="Undo a change (a model's too)")
def revert(
    change_id: Id, who: Principal = OPERATE, p: Platform = Depends(platform)
) -> dict[str, str]:
    p.desk.revert(change_id, actor_of(who))
    return {"reverted": str(change_id)}


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=20000)
    public: bool = True


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=128)
    subject: str = Field(min_length=1, max_length=128)  # e.g. ticket:42
    fields: dict[str, str] = Field(default_factory=dict)  # the model's text columns
    value: str = Field(min_length=1, max_length=256)
    prediction: int | None = None


@router.post(
    "/triage/corrections",
    status_code=201,
    summary="Correct a triage model; `baton triage retrain` learns from it",
)
def correct(
    who: Principal = OPERATE,
    body: CorrectionIn = Depends(parsed(CorrectionIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.commands.correct_triage(
        body.model, body.subject, body.fields, body.value, actor_of(who), body.prediction
    )


@router.post("/tickets/{ticket_id}/comments", status_code=201)
def comment(
    ticket_id: Id,
    who: Principal = OPERATE,
    body: CommentIn = Depends(parsed(CommentIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    p.desk.comment(ticket_id, actor_of(who), body.body, body.public)
    return p.desk.show(ticket_id)


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incident: RowId | None = None  # null unlinks


@router.post("/tickets/{ticket_id}/link", summary="Link the ticket to an incident")
def link(
    ticket_id: Id,
    who: Principal = OPERATE,
    body: LinkIn = Depends(parsed(LinkIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    p.desk.link(ticket_id, body.incident, actor_of(who))
    return p.desk.show(ticket_id)


@router.post("/desk/answers/{draft_id}/approve", summary="Send a suggested answer")
def approve_answer(
    draft_id: Id, who: Principal = OPERATE, p: Platform = Depends(platform)
) -> dict[str, Any]:
    return p.desk.answer(draft_id, True, actor_of(who))


@router.post("/desk/answers/{draft_id}/reject")
def reject_answer(
    draft_id: Id, who: Principal = OPERATE, p: Platform = Depends(platform)
) -> dict[str, Any]:
    return p.desk.answer(draft_id, False, actor_of(who))


@router.get("/desk/options")
def options(_: Principal = READ, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    return p.desk.options()


class OptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str = Field(pattern=r"^(category|priority|group)$")
    value: str = Field(min_length=1, max_length=64)
    enabled: bool = True
    sla_minutes: int | None = Field(default=None, ge=1, le=525600)


@router.put("/desk/options", summary="Add, enable or disable a field value")
def set_option(
    _: Principal = GOVERN,
    body: OptionIn = Depends(parsed(OptionIn)),
    p: Platform = Depends(platform),
) -> list[dict[str, Any]]:
    p.desk.set_option(body.field, body.value, body.enabled, body.sla_minutes)
    return p.desk.options()


@router.get("/kb")
def articles(_: Principal = READ, p: Platform = Depends(platform)) -> list[dict[str, Any]]:
    return [a.to_dict() for a in knowledge.articles(p.settings.kb_path)]


@router.get("/kb/{slug}")
def article(slug: str, _: Principal = READ, p: Platform = Depends(platform)) -> dict[str, Any]:
    return knowledge.article(p.settings.kb_path, slug).to_dict()


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=256)
    body: str = Field(max_length=200_000)


@router.put("/kb/{slug}")
def write_article(
    slug: str,
    _: Principal = OPERATE,
    body: ArticleIn = Depends(parsed(ArticleIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return knowledge.write_article(p.settings.kb_path, slug, body.title, body.body).to_dict()


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str = Field(min_length=1, max_length=32)
    username: str = Field(min_length=1, max_length=128)
    ticket: RowId | None = None
    params: dict[str, str | int] = Field(default_factory=dict, max_length=20)


@router.post("/desk/selfservice", status_code=202, summary="Start a catalogue request")
def start_selfservice(
    _: Principal = INGEST, body: StartIn = Depends(parsed(StartIn)), p: Platform = Depends(platform)
) -> dict[str, Any]:
    return p.desk.start_selfservice(body.item, body.username, dict(body.params), body.ticket)


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=16)
    new_password: str | None = Field(default=None, max_length=256)


@router.post("/desk/selfservice/{request_id}/verify", summary="Prove identity; then act")
def verify_selfservice(
    request_id: Id,
    _: Principal = INGEST,
    body: VerifyIn = Depends(parsed(VerifyIn)),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    return p.desk.verify_selfservice(request_id, body.code, body.new_password)


@router.post("/desk/selfservice/{request_id}/approve")
def approve_selfservice(
    request_id: Id, who: Principal = OPERATE, p: Platform = Depends(platform)
) -> dict[str, Any]:
    return p.desk.approve_selfservice(request_id, actor_of(who))


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation: str = Field(min_length=1, max_length=200)
    user: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=20000)


@router.post("/desk/chat", summary="Generic chat webhook: file or update, get suggestions")
def chat_message(
    _: Principal = INGEST, body: ChatIn = Depends(parsed(ChatIn)), p: Platform = Depends(platform)
) -> dict[str, Any]:
    message = chat.ChatMessage(f"chat:{body.conversation}", body.user, body.text)
    return p.desk.chat(message)


SLACK_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "A Slack Events API envelope (url_verification or event_callback)",
    }
}


@router.post(
    SLACK_EVENTS,
    summary="Slack Events API (signed by Slack, no bearer token)",
    openapi_extra=SLACK_BODY,
)
async def slack_events(request: Request, p: Platform = Depends(platform)) -> dict[str, Any]:
    key = slack_signing_key(p)
    raw = await request.body()
    verified_slack(request, raw, key, p.clock.now().timestamp() if p.clock else time.time())
    payload = parse_json(raw)
    if not isinstance(payload, dict):
        raise ApiError(400, "bad_request", "expected a JSON object")
    if payload.get("type") == "url_verification":
        return {"challenge": str(payload.get("challenge", ""))[:200]}
    message = chat.from_slack(payload)
    if message is None:
        return {"ok": True, "ignored": True}
    return {"ok": True, **p.desk.chat(message, "slack")}
