"""Tickets by email: IMAP polling of a real Dovecot mailbox, and the SMTP listener."""

from __future__ import annotations

import imaplib
import shutil
import smtplib
from email.message import EmailMessage

import pytest

from baton.servicedesk import mail
from baton.servicedesk.mail import smtp_listener
from tests.servicedesk.services import free_port, start_dovecot

USER, PASSWORD = "desk", "desk-mailbox-pw"


def _message(subject: str, body: str, sender="carol@example.org", **headers) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = f"Carol <{sender}>", "desk@example.org", subject
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    return bytes(m)


@pytest.fixture(scope="module")
def imap_port():
    port, proc, home = start_dovecot(USER, PASSWORD)
    yield port
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(home, ignore_errors=True)


def _append(port: int, raw: bytes) -> None:
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login(USER, PASSWORD)
    client.append("INBOX", None, None, raw)
    client.logout()


def test_imap_poll_files_unseen_mail_once_and_threads_replies(shared, imap_port):
    first = _message(
        "Printer on floor 3 is jammed", "It shows error E5.", Message_ID="<m1@example.org>"
    )
    _append(imap_port, first)
    deliver = shared.desk.receive_mail
    assert mail.poll_imap(deliver, "127.0.0.1", imap_port, USER, PASSWORD) == 1
    assert mail.poll_imap(deliver, "127.0.0.1", imap_port, USER, PASSWORD) == 0  # seen now
    reply = _message(
        "Re: Printer on floor 3 is jammed",
        "Still jammed.",
        In_Reply_To="<m1@example.org>",
        Message_ID="<m2@example.org>",
    )
    _append(imap_port, reply)
    assert mail.poll_imap(deliver, "127.0.0.1", imap_port, USER, PASSWORD) == 1
    with shared.db.session() as s:
        from baton.servicedesk.tickets import by_ref

        ticket_id = by_ref(s, "mail:<m1@example.org>").id
    shown = shared.desk.show(ticket_id)
    assert shown["channel"] == "email" and shown["reporter"] == "carol@example.org"
    assert shown["comments"][-1]["body"] == "Still jammed."


def test_smtp_listener_files_a_ticket_and_a_tag_reply_comments(shared):
    port = free_port()
    listener = smtp_listener(shared.desk.receive_mail, "127.0.0.1", port)
    listener.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(_email("Cannot open the HR portal"))
        ticket = shared.desk.show(_latest(shared))
        assert ticket["subject"] == "Cannot open the HR portal" and ticket["channel"] == "email"
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(_email(f"Re: [#{ticket['id']}] portal", "works now, thanks"))
        assert shared.desk.show(ticket["id"])["comments"][-1]["body"] == "works now, thanks"
    finally:
        listener.stop()


def _email(subject: str, body: str = "it says 502") -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "dan@example.org", "desk@example.org", subject
    m.set_content(body)
    return m


def _latest(shared) -> int:
    from baton.servicedesk.tickets import recent

    with shared.db.session() as s:
        return recent(s, 1)[0].id


def test_html_only_mail_is_reduced_to_text_without_script():
    m = EmailMessage()
    m["From"], m["Subject"] = "eve@example.org", "x"
    m.set_content("<p>Hello <b>desk</b></p><script>alert(1)</script>", subtype="html")
    parsed = mail.parse(bytes(m))
    assert "alert" not in parsed.body and "Hello" in parsed.body and "<" not in parsed.body


def test_a_broken_message_still_parses():
    parsed = mail.parse(b"\xff\xfe garbage without headers")
    assert parsed.reporter == "unknown@invalid" and parsed.ticket_id is None


def test_an_approved_answer_to_mailed_ticket_is_mailed_back(shared, monkeypatch):
    from aiosmtpd.controller import Controller

    from baton.kernel.audit import Actor
    from baton.servicedesk import knowledge

    got: list[bytes] = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            got.append(envelope.content)
            return "250 OK"

    port = free_port()
    relay = Controller(Keep(), hostname="127.0.0.1", port=port)
    relay.start()
    try:
        monkeypatch.setattr(shared.settings, "smtp_host", "127.0.0.1")
        monkeypatch.setattr(shared.settings, "smtp_port", port)
        knowledge.write_article(
            shared.settings.kb_path,
            "badge-reset",
            "Door badge stopped working",
            "Hold the badge to the reader at reception for 5 s.",
        )
        ticket = shared.desk.receive_mail(_message("my door badge stopped working", "help"))
        [draft] = shared.desk.show(ticket.id)["answers"]
        assert not got  # nothing leaves before a person approves
        result = shared.desk.answer(draft["id"], True, Actor("tia", "human"))
        assert result["mailed"] is True
        assert len(got) == 1 and b"carol@example.org" in got[0] and b"[#" in got[0]
    finally:
        relay.stop()
