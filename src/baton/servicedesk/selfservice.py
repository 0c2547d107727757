"""The self-service catalogue: password reset, account unlock, group access, disk quota
and software requests, each behind an identity check and the autonomy policy.

Identity first: a one-time code goes to the address the *directory* holds for the
account (never one the requester types), and only a correct code within its lifetime
unlocks the action. Answers never say whether an account exists: an unknown name gets
the same reply as a known one, and its request can simply never be verified. Wrong codes
are counted per request (and requests per name per hour), every step is audited, and
the action then runs only as far as the policy's tier allows — a paused scope or an
item whose ceiling is `approve` waits for a person. Disk quota and software requests are
carried out by their fulfilment runbooks (`servicedesk.fulfil`) on the directory, once
allowed or approved; a run that fails its check is rolled back and left to a person.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from baton.govern import killswitch
from baton.govern.policy import PolicyInputs, decide
from baton.kernel.audit import Actor, append
from baton.kernel.enums import TicketStatus as S
from baton.kernel.enums import Tier
from baton.kernel.errors import Invalid, NotFound, Refused
from baton.servicedesk import fulfil, lifecycle
from baton.servicedesk.directory import Account, Directory
from baton.store.models import SelfServiceRequest, Ticket

AGENT = Actor("baton.selfservice", "ai", "catalogue/1")
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
MAX_PER_HOUR = 3  # requests per user name
MIN_PASSWORD = 12
SENT = "if the account exists, a code was sent to its registered address"


@dataclass(frozen=True)
class Item:
    name: str
    title: str
    ceiling: Tier  # how far it may go on its own once identity is verified
    category: str
    group: str


CATALOGUE = {
    i.name: i
    for i in (
        Item("password_reset", "Reset my password", Tier.AUTO, "access", "identity"),
        Item("account_unlock", "Unlock my account", Tier.AUTO, "access", "identity"),
        Item("group_access", "Access to a group", Tier.APPROVE, "access", "identity"),
        Item("disk_quota", "More disk quota", Tier.APPROVE, "storage", "storage"),
        Item("software_request", "Install software", Tier.APPROVE, "application", "applications"),
    )
}
# a software request names what it wants: plain words, checked before anything is sent
_SOFTWARE = re.compile(r"^[\w .+@-]{1,128}$")
SendCode = Callable[[str, str], None]  # (address, code)
SecondFactor = Callable[[Account, str], bool]  # pluggable MFA hook: (account, answer)


def _digest(request_id: int, code: str) -> str:
    return hashlib.sha256(f"{request_id}:{code}".encode()).hexdigest()


def _audit(s: Session, req: SelfServiceRequest, action: str, at: datetime, **kw: Any) -> None:
    append(s, actor=AGENT, action=f"selfservice.{action}", subject=f"request:{req.id}", at=at, **kw)


def start(
    s: Session,
    item: str,
    username: str,
    directory: Directory,
    send_code: SendCode,
    at: datetime,
    params: dict[str, Any] | None = None,
    ticket: Ticket | None = None,
) -> tuple[SelfServiceRequest, str]:
    """Open a request and send its code; the reply is the same for any user name."""
    if item not in CATALOGUE:
        raise Invalid(f"item must be one of {sorted(CATALOGUE)}", "item")
    username = username.strip()
    if not username or len(username) > 128:
        raise Invalid("a user name of 1-128 characters", "username")
    wanted = str((params or {}).get("software", "")).strip()
    if item == "software_request" and not _SOFTWARE.match(wanted):
        raise Invalid("params.software: 1-128 letters, digits, spaces or .+@-_", "software")
    if item == "disk_quota":
        fulfil.increase_gb(params or {})
    recent = s.scalar(
        select(func.count(SelfServiceRequest.id)).where(
            SelfServiceRequest.username == username,
            SelfServiceRequest.created_at > at - timedelta(hours=1),
        )
    )
    req = SelfServiceRequest(
        item=item,
        username=username,
        status="verifying",
        params=params or {},
        created_at=at,
        updated_at=at,
        ticket_id=ticket.id if ticket else None,
    )
    s.add(req)
    s.flush()
    if (recent or 0) >= MAX_PER_HOUR:
        req.status = "refused"
        _audit(s, req, "rate_limited", at, inputs={"username": username}, decision="refused")
        return req, SENT  # same words: the limit tells nothing about the account either
    account = directory.find(username)
    sent_to = None
    if account is not None and account.mail:
        code = f"{secrets.randbelow(10**6):06d}"
        req.code_hash, req.code_expires_at = _digest(req.id, code), at + CODE_TTL
        send_code(account.mail, code)
        sent_to = account.mail.split("@")[-1]
    _audit(
        s,
        req,
        "code_sent" if sent_to else "code_not_sent",
        at,
        inputs={"item": item, "username": username, "mail_domain": sent_to},
        decision="verifying",
        rationale=None if sent_to else "no such account, or it has no registered address",
    )
    return req, SENT


def _request(s: Session, request_id: int) -> SelfServiceRequest:
    req = s.get(SelfServiceRequest, request_id)
    if req is None:
        raise NotFound(f"no self-service request {request_id}")
    return req


def verify(
    s: Session,
    request_id: int,
    code: str,
    directory: Directory,
    at: datetime,
    new_password: str | None = None,
    second_factor: SecondFactor | None = None,
    factor_answer: str = "",
    ceiling: Tier | None = None,
) -> SelfServiceRequest:
    """Check the code (and the second factor if one is plugged in), then act as far as
    the policy allows. A wrong code says only that it was not accepted. `ceiling`: what
    the policy file sets for the item's runbook, in place of the catalogue's default."""
    req = _request(s, request_id)
    if req.status != "verifying":
        raise Refused(f"request {request_id} is {req.status}")
    item = CATALOGUE[req.item]
    if item.name == "password_reset" and len(new_password or "") < MIN_PASSWORD:
        raise Invalid(f"the new password needs at least {MIN_PASSWORD} characters", "new_password")
    req.attempts += 1
    req.updated_at = at
    given = _digest(req.id, code.strip())
    good = (
        req.code_hash is not None
        and req.code_expires_at is not None
        and at <= req.code_expires_at
        and hmac.compare_digest(given, req.code_hash)
    )
    account = directory.find(req.username) if good else None
    if good and second_factor is not None:
        good = account is not None and second_factor(account, factor_answer)
    if not good or account is None:
        spent = req.attempts >= MAX_ATTEMPTS
        req.status = "refused" if spent else "verifying"
        _audit(s, req, "code_rejected", at, inputs={"attempt": req.attempts}, decision=req.status)
        s.commit()  # the attempt counts even though the caller is refused
        raise Refused("code not accepted" + ("; request closed" if spent else ""))
    req.code_hash = None  # one time
    _audit(s, req, "identity_verified", at, inputs={"attempt": req.attempts}, decision="verified")
    tier = decide(
        PolicyInputs(
            runbook_ceiling=item.ceiling if ceiling is None else ceiling,
            confidence=1.0,
            paused=killswitch.paused_scope(s, f"selfservice.{item.name}", None),
        )
    )
    if tier.tier < Tier.AUTO:
        req.status = "awaiting_approval"
        _audit(s, req, "held", at, decision=tier.tier.label, rationale="; ".join(tier.reasons))
        return req
    _act(s, req, account, directory, at, new_password)
    return req


def _act(
    s: Session,
    req: SelfServiceRequest,
    account: Account,
    directory: Directory,
    at: datetime,
    new_password: str | None,
) -> None:
    if req.item == "password_reset":
        directory.reset_password(account, new_password or "")
        directory.unlock(account)
        outcome = "password reset"
    elif req.item == "account_unlock":
        outcome = "unlocked" if directory.unlock(account) else "was not locked"
    elif req.item in fulfil.RUNBOOKS:
        _fulfil(s, req, account, directory, AGENT, at)
        return
    else:
        outcome = "no automatic action for this item"
    req.status = "done"
    req.updated_at = at
    _audit(s, req, "done", at, inputs={"item": req.item}, decision=outcome)
    _close_ticket(s, req, at, outcome)


def _fulfil(
    s: Session,
    req: SelfServiceRequest,
    account: Account,
    directory: Directory,
    actor: Actor,
    at: datetime,
) -> fulfil.Run:
    """Run the item's fulfilment runbook; done closes the ticket with its transcript, a
    failure (rolled back) leaves the ticket open with the transcript for a technician."""
    run = fulfil.RUNBOOKS[req.item](directory, account, dict(req.params))
    req.status, req.updated_at = ("done" if run.ok else "failed"), at
    append(
        s,
        actor=actor,
        action="selfservice.fulfilled" if run.ok else "selfservice.failed",
        subject=f"request:{req.id}",
        at=at,
        inputs={"item": req.item, "params": req.params, "runbook": run.runbook},
        decision=run.outcome,
        rationale=run.transcript(),
    )
    if run.ok:
        _close_ticket(s, req, at, f"{run.outcome}. {run.transcript()}")
    elif req.ticket_id is not None:
        ticket = lifecycle.get(s, req.ticket_id)
        note = f"Self-service {req.item} not carried out: {run.outcome}. {run.transcript()}"
        lifecycle.comment(s, ticket, AGENT, note, at, public=False)
    return run


def approve(
    s: Session,
    request_id: int,
    approver: Actor,
    at: datetime,
    directory: Directory | None = None,
) -> SelfServiceRequest:
    """A person approves a held request. Group access: only an owner of the group *in the
    directory* may, and the account is then added to it; otherwise `params.owner`, when
    given, is the one who may. Its ticket is then resolved with the transcript."""
    req = _request(s, request_id)
    if req.status != "awaiting_approval":
        raise Refused(f"request {request_id} is {req.status}, not awaiting approval")
    if approver.kind != "human":
        raise Refused("a person approves catalogue requests")
    outcome = f"approved by {approver.name}"
    if req.item == "group_access":
        outcome = _grant_group(req, approver, directory)
    else:
        owner = req.params.get("owner")
        if owner and owner != approver.name:
            raise Refused(f"only the owner ({owner}) approves this request")
    account = _runnable(s, req, directory) if req.item in fulfil.RUNBOOKS else None
    if account is None:
        req.status, req.updated_at = "done", at
    append(
        s,
        actor=approver,
        action="selfservice.approved",
        subject=f"request:{req.id}",
        at=at,
        inputs={"item": req.item, "params": req.params},
        decision="approved; runbook started" if account else outcome,
    )
    if account is not None and directory is not None:
        _fulfil(s, req, account, directory, approver, at)
    else:
        _close_ticket(s, req, at, outcome)
    return req


def _runnable(s: Session, req: SelfServiceRequest, directory: Directory | None) -> Account:
    """The account an approved runbook acts on — unless the kill switch paused the item
    since it was held, or the account is gone."""
    paused = killswitch.paused_scope(s, f"selfservice.{req.item}", None)
    if paused:
        raise Refused(f"paused by the kill switch ({paused}); approve again once resumed")
    account = directory.find(req.username) if directory is not None else None
    if account is None:
        raise Refused("no such account in the directory")
    return account


def _grant_group(req: SelfServiceRequest, approver: Actor, directory: Directory | None) -> str:
    if directory is None:
        raise Refused("group access needs the directory")
    found = directory.group(str(req.params.get("group", "")))
    account = directory.find(req.username)
    if found is None or account is None:
        raise Refused("no such group or account in the directory")
    dn, owners, _ = found
    if approver.name not in directory.owner_names(owners):
        raise Refused("only an owner of the group approves access to it")
    added = directory.add_member(dn, account)
    return f"added to {dn} by {approver.name}" if added else f"already in {dn}"


def _close_ticket(s: Session, req: SelfServiceRequest, at: datetime, outcome: str) -> None:
    """A resolved request resolves its ticket with the transcript of what happened."""
    if req.ticket_id is None:
        return
    ticket = lifecycle.get(s, req.ticket_id)
    transcript = (
        f"Self-service {CATALOGUE[req.item].title.lower()} for {req.username}: identity "
        f"verified by one-time code after {req.attempts} attempt(s); {outcome}."
    )
    lifecycle.comment(s, ticket, AGENT, transcript, at, public=True)
    if ticket.status in lifecycle.OPEN:
        lifecycle.move(s, ticket, S.RESOLVED, AGENT, at)


def deflected(s: Session) -> int:
    """Requests the desk resolved without a technician (deflected tickets)."""
    return int(
        s.scalar(
            select(func.count(SelfServiceRequest.id)).where(
                SelfServiceRequest.status == "done",
                SelfServiceRequest.item.in_(("password_reset", "account_unlock")),
            )
        )
        or 0
    )


def to_dict(r: SelfServiceRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "item": r.item,
        "username": r.username,
        "status": r.status,
        "attempts": r.attempts,
        "ticket": r.ticket_id,
    }
