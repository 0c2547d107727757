"""Tickets by email: an inbound SMTP listener (aiosmtpd) and IMAP polling of a mailbox.

Both hand raw RFC 5322 bytes to one `deliver` callable, so a message is a ticket the
same way whichever door it came through. A reply — `[#N]` in the subject, or an
In-Reply-To/References naming a ticket's Message-ID — becomes a comment on that ticket
instead of a new one.
"""

from __future__ import annotations

import contextlib
import html
import imaplib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from typing import Any

log = logging.getLogger("baton.servicedesk.mail")

MAX_MESSAGE = 10 * 1024 * 1024
TICKET_TAG = re.compile(r"\[#(\d{1,12})\]")
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.I | re.S)


@dataclass(frozen=True)
class Inbound:
    reporter: str
    subject: str
    body: str
    message_id: str | None
    refs: tuple[str, ...]  # In-Reply-To and References, oldest first
    ticket_id: int | None  # from a [#N] tag in the subject


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset: keep what decodes
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        content = html.unescape(_TAGS.sub(" ", content))
    return content.strip()


def parse(raw: bytes) -> Inbound:
    """What a ticket needs from one message; headers are taken as text, never trusted."""
    message = BytesParser(policy=policy.default).parsebytes(raw[:MAX_MESSAGE])
    assert isinstance(message, EmailMessage)
    reporter = parseaddr(str(message.get("From", "")))[1] or "unknown@invalid"
    subject = " ".join(str(message.get("Subject", "")).split())
    refs = tuple(
        r
        for header in ("References", "In-Reply-To")
        for r in re.findall(r"<[^<>\s]+>", str(message.get(header, "")))
    )
    tag = TICKET_TAG.search(subject)
    return Inbound(
        reporter=reporter[:128],
        subject=subject[:512],
        body=_text(message),
        message_id=(str(message.get("Message-ID", "")).strip() or None),
        refs=refs,
        ticket_id=int(tag.group(1)) if tag else None,
    )


Deliver = Callable[[bytes], Any]


class SmtpHandler:
    """aiosmtpd handler: every accepted message goes to `deliver`; a failure is a 451 so
    the sending relay keeps it and retries."""

    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        try:
            self.deliver(bytes(envelope.original_content or envelope.content))
        except Exception:
            log.exception("inbound mail not filed")
            return "451 Requested action aborted: error in processing"
        return "250 Message accepted for delivery"


def smtp_listener(deliver: Deliver, host: str, port: int) -> Any:
    """A started-on-demand aiosmtpd Controller (call .start()/.stop())."""
    from aiosmtpd.controller import Controller

    return Controller(SmtpHandler(deliver), hostname=host, port=port, data_size_limit=MAX_MESSAGE)


def poll_imap(
    deliver: Deliver,
    host: str,
    port: int,
    user: str,
    password: str,
    *,
    use_ssl: bool = False,
    mailbox: str = "INBOX",
    limit: int = 100,
) -> int:
    """File every unseen message of the mailbox, marking each seen only once delivered:
    a crash mid-batch leaves the rest for the next poll."""
    client = imaplib.IMAP4_SSL(host, port) if use_ssl else imaplib.IMAP4(host, port)
    done = 0
    try:
        client.login(user, password)
        client.select(mailbox)
        _, found = client.uid("SEARCH", None, "UNSEEN")
        for uid in (found[0] or b"").split()[:limit]:
            _, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in data if isinstance(item, tuple)), None)
            if raw is None:
                continue
            deliver(bytes(raw))
            client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
            done += 1
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()
    return done
