"""The service desk's commands: what people, mail, chat and the scheduler do to tickets.

One object so every door (API, CLI, SMTP listener, IMAP poll, chat) files, updates and
answers tickets through the same steps, each in one transaction with its audit records.
Directory and code delivery are injectable: tests hand in a real throwaway slapd and a
recording mailer; production builds them from settings.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from baton.act.secrets import resolve
from baton.kernel.audit import Actor, append
from baton.kernel.clock import Clock
from baton.kernel.enums import TicketStatus as S
from baton.kernel.enums import Tier
from baton.kernel.errors import Invalid
from baton.runtime.config import LiveConfig
from baton.runtime.notify import Message, chat_reply, send_mail
from baton.runtime.pipeline import Observer
from baton.runtime.scheduler import Job
from baton.runtime.settings import Settings
from baton.runtime.triage_models import learn_from_change, record_predictions, trained_predictor
from baton.sense.normalize import EventIn
from baton.servicedesk import (
    burst,
    chat,
    fulfil,
    knowledge,
    lifecycle,
    mail,
    options,
    selfservice,
    sla,
)
from baton.servicedesk import tickets as desk
from baton.servicedesk.directory import Directory
from baton.servicedesk.tickets import Predictor, keyword_predictions
from baton.store.db import Database
from baton.store.models import SelfServiceRequest, Ticket

Raised = Callable[[list[Any]], int]
Ingest = Callable[[list[EventIn]], dict[str, int]]  # sense + correlate (Drain.ingest)


def _secret(name: str | None) -> str:
    return resolve([name])[f"secret.{name}"] if name else ""


class Desk:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        config: LiveConfig,
        observer: Observer | None = None,
        raised: Raised | None = None,
        ingest: Ingest | None = None,
    ) -> None:
        self.settings, self.db, self.clock, self.config = settings, db, clock, config
        self.observer, self.raised, self.ingest = observer, raised, ingest
        # trained models (baton triage train --name category|priority|group) where they exist
        self.predict: Predictor = trained_predictor(keyword_predictions)
        self.directory: Directory | None = None
        self.send_code: selfservice.SendCode = self._mail_code

    # --- filing ------------------------------------------------------------------------
    def file(
        self,
        reporter: str,
        subject: str,
        body: str,
        channel: str = "api",
        external_ref: str | None = None,
    ) -> Ticket:
        at = self.clock.now()
        with self.db.session() as s:
            ticket = desk.file_ticket(
                s,
                reporter=reporter,
                subject=subject,
                body=body,
                graph=self.config.graph(s),
                at=at,
                channel=channel,
                external_ref=external_ref,
                predict=self.predict,
                triaged=record_predictions,
            )
            draft = knowledge.draft_answer(s, ticket, self.settings.kb_path, at, desk.CLASSIFIER)
            auto = draft is not None and self._answer_alone(s, ticket, draft, at)
            seen = self._burst(s, ticket, at)
            route = ticket.channel, ticket.reporter, ticket.external_ref or "", ticket.subject
        if auto and draft is not None:
            self._send_back(knowledge.draft_dict(draft), desk.CLASSIFIER, *route)
        if seen is not None and self.ingest is not None:
            self.ingest([seen.event])  # its own transaction, like any alert
            with self.db.session() as s:
                burst.link_to_event(s, seen, self.clock.now())
                ticket = lifecycle.get(s, ticket.id)
        if self.observer is not None:
            self.observer(
                "ticket",
                {
                    "ticket": ticket.id,
                    "subject": ticket.subject,
                    "category": ticket.category,
                    "incident": ticket.incident_id,
                },
            )
        return ticket

    def _burst(self, s: Session, ticket: Ticket, at: datetime) -> burst.Burst | None:
        cfg = self.settings
        if not cfg.desk_burst_size or self.ingest is None:
            return None
        kinds = desk.CATEGORIES.get(ticket.category or "", ((), ()))[1]
        return burst.detect(
            s,
            ticket,
            self.config.graph(s),
            kinds,
            at,
            size=cfg.desk_burst_size,
            window=timedelta(seconds=cfg.desk_burst_window_s),
            overlap=cfg.desk_burst_overlap,
        )

    def _follow_up(self, ticket_id: int, author: str, body: str) -> Ticket:
        """A requester's further message: a comment, reopening a resolved ticket."""
        at = self.clock.now()
        person = Actor(author, "human")
        with self.db.session() as s:
            ticket = lifecycle.get(s, ticket_id)
            lifecycle.comment(s, ticket, person, body or "(empty message)", at)
            if ticket.status in (S.RESOLVED, S.CLOSED) or ticket.status == S.WAITING:
                lifecycle.move(s, ticket, S.IN_PROGRESS, person, at)
            return ticket

    def receive_mail(self, raw: bytes) -> Ticket:
        """One inbound message: a reply to a known ticket, or a new ticket."""
        msg = mail.parse(raw)
        with self.db.session() as s:
            known = None
            if msg.ticket_id is not None and s.get(Ticket, msg.ticket_id) is not None:
                known = msg.ticket_id
            for ref in msg.refs:
                found = desk.by_ref(s, f"mail:{ref}")
                known = found.id if found else known
        if known is not None:
            return self._follow_up(known, msg.reporter, msg.body)
        ref = f"mail:{msg.message_id}" if msg.message_id else None
        return self.file(msg.reporter, msg.subject, msg.body, "email", ref)

    def chat(self, message: chat.ChatMessage, channel: str = "chat") -> dict[str, Any]:
        """File or update the conversation's ticket; answer with what may help."""
        with self.db.session() as s:
            existing = desk.by_ref(s, message.conversation)
        if existing is not None:
            ticket = self._follow_up(existing.id, message.user, message.text)
        else:
            first_line = message.text.strip().splitlines()[0] if message.text.strip() else ""
            ticket = self.file(
                message.user, first_line[:120], message.text, channel, message.conversation
            )
        with self.db.session() as s:
            found = knowledge.matching_articles(lifecycle.get(s, ticket.id), self.settings.kb_path)
        item = chat.intent(message.text)
        return {
            "ticket": ticket.id,
            "status": ticket.status,
            "articles": found,
            "self_service": (
                {
                    "item": item,
                    "title": selfservice.CATALOGUE[item].title,
                    "start": "/api/v1/desk/selfservice",
                }
                if item
                else None
            ),
            "text": _reply_text(ticket.id, found, item),
        }

    # --- a person's changes -----------------------------------------------------------
    def update(self, ticket_id: int, field: str, value: str | None, actor: Actor) -> Ticket:
        """A person's change; on a field a trained model covers it is also a correction."""
        at = self.clock.now()
        with self.db.session() as s:
            ticket = lifecycle.get(s, ticket_id)
            if lifecycle.set_field(s, ticket, field, value, actor, at) is not None:
                learn_from_change(s, ticket, field, value, actor, at)
            return ticket

    def revert(self, change_id: int, actor: Actor) -> None:
        """Undo a change; a person undoing a model's value to an earlier one corrects it."""
        at = self.clock.now()
        with self.db.session() as s:
            undo = lifecycle.revert(s, change_id, actor, at)
            if undo is not None:
                ticket = lifecycle.get(s, undo.ticket_id)
                learn_from_change(s, ticket, undo.field, undo.new, actor, at)

    def correct(
        self,
        model: str,
        subject: str,
        fields: dict[str, str],
        value: str,
        actor: Actor,
        prediction_id: int | None = None,
    ) -> dict[str, Any]:
        """A technician's value for anything a model predicted (a ticket or not); kept for
        the next `baton triage retrain`."""
        from baton.triage import registry

        with self.db.session() as s:
            row = registry.correct(
                s,
                model,
                subject,
                fields,
                value,
                by=actor,
                at=self.clock.now(),
                prediction_id=prediction_id,
            )
            return {
                "id": row.id,
                "model": row.model_name,
                "subject": row.subject,
                "predicted": row.predicted,
                "value": row.value,
                "prediction": row.prediction_id,
            }

    def comment(self, ticket_id: int, actor: Actor, body: str, public: bool = True) -> None:
        with self.db.session() as s:
            lifecycle.comment(s, lifecycle.get(s, ticket_id), actor, body, self.clock.now(), public)

    def link(self, ticket_id: int, incident_id: int | None, actor: Actor) -> None:
        with self.db.session() as s:
            desk.link_incident(s, lifecycle.get(s, ticket_id), incident_id, actor, self.clock.now())

    def answer(self, draft_id: int, approve: bool, actor: Actor) -> dict[str, Any]:
        """An agent's decision on a suggested answer; an approved one goes back the way
        the ticket came (`_send_back`)."""
        with self.db.session() as s:
            draft = knowledge.decide(s, draft_id, approve, actor, self.clock.now())
            ticket = lifecycle.get(s, draft.ticket_id)
            out = knowledge.draft_dict(draft)
            route = ticket.channel, ticket.reporter, ticket.external_ref or "", ticket.subject
        return self._send_back(out, actor, *route) if approve else out

    def _answer_alone(self, s: Session, ticket: Ticket, draft: Any, at: datetime) -> bool:
        """Whether the policy lets this category's answers go without a technician."""
        category = ticket.category or ""
        if self.config.policy.answers.get(category) != "auto":
            return False
        rule = f"policy answers.{category}: auto"
        knowledge.send_by_policy(s, draft, desk.CLASSIFIER, at, rule)
        return True

    def _send_back(
        self, out: dict[str, Any], actor: Actor, channel: str, to: str, ref: str, subject: str
    ) -> dict[str, Any]:
        """A sent answer goes back the way its ticket came: mailed to an email requester,
        posted into the chat conversation (Slack thread or the generic chat's reply URL);
        after the commit (a slow relay holds no transaction), and the delivery audited."""
        if channel == "email" and self.settings.smtp_host:
            title = f"Re: [#{out['ticket']}] {subject}"
            sent, said = send_mail(
                self.settings, to, Message(f"ticket:{out['ticket']}", title, out["body"])
            )
            self._delivered(actor, out, "answer.mailed", sent, said)
            out["mailed"] = sent
        elif channel in ("chat", "slack") and ref:
            token = _secret(self.settings.slack_bot_token_secret)
            posted = chat_reply(self.settings, ref, out["ticket"], out["body"], token)
            if posted is not None:
                self._delivered(actor, out, "answer.posted", *posted)
                out["posted"] = posted[0]
        return out

    def _delivered(
        self, actor: Actor, answer: dict[str, Any], action: str, sent: bool, said: str
    ) -> None:
        with self.db.session() as s:
            append(
                s,
                actor=actor,
                action=action,
                subject=f"ticket:{answer['ticket']}",
                at=self.clock.now(),
                decision="delivered" if sent else "failed",
                outcome=said,
            )

    def set_option(self, field: str, value: str, enabled: bool, sla_minutes: int | None) -> None:
        with self.db.session() as s:
            options.set_option(s, field, value, enabled, sla_minutes)

    # --- reading ----------------------------------------------------------------------
    def show(self, ticket_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            ticket = lifecycle.get(s, ticket_id)
            return {
                **desk.to_dict(ticket),
                "history": [lifecycle.change_dict(c) for c in lifecycle.history(s, ticket_id)],
                "comments": [lifecycle.comment_dict(c) for c in lifecycle.comments(s, ticket_id)],
                "answers": [knowledge.draft_dict(d) for d in knowledge.pending(s, ticket_id)],
                "knowledge": knowledge.suggest(s, ticket, self.settings.kb_path),
            }

    def options(self) -> list[dict[str, Any]]:
        with self.db.session() as s:
            return [
                {
                    "field": o.field,
                    "value": o.value,
                    "enabled": o.enabled,
                    "sla_minutes": o.sla_minutes,
                }
                for o in options.listing(s)
            ]

    # --- self-service -----------------------------------------------------------------
    def _directory(self) -> Directory:
        if self.directory is None:
            cfg = self.settings
            if not cfg.ldap_url:
                raise Invalid("self-service needs a directory: set BATON_LDAP_URL", "item")
            self.directory = Directory(
                cfg.ldap_url,
                cfg.ldap_base_dn,
                cfg.ldap_bind_dn,
                _secret(cfg.ldap_password_secret),
                cfg.ldap_user_attr,
                quota_attr=cfg.ldap_quota_attr,
                quota_class=cfg.ldap_quota_class,
                software_base=cfg.ldap_software_base,
            )
        return self.directory

    def _mail_code(self, address: str, code: str) -> None:
        text = f"Your Baton service desk code is {code}. It expires in 10 minutes."
        send_mail(self.settings, address, Message("selfservice", "Your one-time code", text))

    def start_selfservice(
        self,
        item: str,
        username: str,
        params: dict[str, Any] | None = None,
        ticket_id: int | None = None,
    ) -> dict[str, Any]:
        with self.db.session() as s:
            ticket = lifecycle.get(s, ticket_id) if ticket_id else None
            req, said = selfservice.start(
                s,
                item,
                username,
                self._directory(),
                self.send_code,
                self.clock.now(),
                params,
                ticket,
            )
            return {"request": req.id, "message": said}

    def verify_selfservice(
        self, request_id: int, code: str, new_password: str | None = None
    ) -> dict[str, Any]:
        with self.db.session() as s:
            req = selfservice.verify(
                s,
                request_id,
                code,
                self._directory(),
                self.clock.now(),
                new_password,
                ceiling=self._catalogue_ceiling(s, request_id),
            )
            return selfservice.to_dict(req)

    def _catalogue_ceiling(self, s: Session, request_id: int) -> Tier | None:
        """The policy's `runbooks.<id>.autonomy.default` for a fulfilment runbook, if set."""
        req = s.get(SelfServiceRequest, request_id)
        rid = fulfil.RUNBOOK_IDS.get(req.item) if req is not None else None
        rule = self.config.policy.runbooks.get(rid) if rid else None
        name = rule.autonomy.get("default") if rule else None
        return Tier.parse(name) if name else None

    def approve_selfservice(self, request_id: int, actor: Actor) -> dict[str, Any]:
        with self.db.session() as s:
            directory = self.directory or (self._directory() if self.settings.ldap_url else None)
            req = selfservice.approve(s, request_id, actor, self.clock.now(), directory)
            return selfservice.to_dict(req)

    # --- scheduler jobs ---------------------------------------------------------------
    def jobs(self) -> list[Job]:
        return [
            Job("ticket SLA", "servicedesk", self.check_sla),
            Job("ticket mailbox", "servicedesk", self.poll_mailbox),
        ]

    def check_sla(self) -> int:
        with self.db.session() as s:
            raised = sla.breaches(s, self.clock.now())
        if self.raised is not None:
            self.raised(raised)
        return len(raised)

    def smtp_listener(self) -> Any:
        """The inbound SMTP listener (not started), or None when none is configured."""
        if not self.settings.desk_smtp_listen:
            return None
        host, _, port = self.settings.desk_smtp_listen.rpartition(":")
        return mail.smtp_listener(self.receive_mail, host.strip("[]"), int(port))

    def poll_mailbox(self) -> int:
        cfg = self.settings
        if not cfg.imap_host or not cfg.imap_username:
            return 0
        return mail.poll_imap(
            self.receive_mail,
            cfg.imap_host,
            cfg.imap_port,
            cfg.imap_username,
            _secret(cfg.imap_password_secret),
            use_ssl=cfg.imap_ssl,
        )


def _reply_text(ticket_id: int, articles: list[dict[str, Any]], item: str | None) -> str:
    lines = [f"Thanks, this is ticket #{ticket_id}."]
    if item:
        lines.append(f"I can help with that myself: {selfservice.CATALOGUE[item].title}.")
    for a in articles:
        lines.append(f"This may answer it: {a['title']} (kb:{a['slug']})")
    return "\n".join(lines)
