"""Self-service against a real OpenLDAP: identity by one-time code to the directory's
address, then reset or unlock; wrong codes limited; injection characters escaped."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from ldap3 import Connection, Server

from baton.kernel.audit import Actor
from baton.kernel.errors import Invalid, Refused
from baton.servicedesk import chat
from baton.servicedesk.directory import Directory
from baton.store.models import AuditRecord
from tests.servicedesk.services import ADMIN, ADMIN_PW, BASE


@pytest.fixture
def desk(shared, ldap_url):
    sent: list[tuple[str, str]] = []
    shared.desk.directory = Directory(ldap_url, BASE, ADMIN, ADMIN_PW)
    shared.desk.send_code = lambda address, code: sent.append((address, code))
    shared.desk.sent = sent
    return shared.desk


def _lock(url: str, who: str) -> None:
    with Connection(Server(url), ADMIN, ADMIN_PW, auto_bind=True) as conn:
        conn.modify(
            f"uid={who},ou=people,{BASE}",
            {"pwdAccountLockedTime": [("MODIFY_REPLACE", ["000001010000Z"])]},
        )


def test_password_reset_after_the_code_from_the_directory_address(desk, shared):
    ticket = desk.file("alice@example.org", "forgot my password", "please reset it")
    started = desk.start_selfservice("password_reset", "alice", ticket_id=ticket.id)
    [(address, code)] = desk.sent
    assert address == "alice@example.org"  # the directory's, not one the requester gave
    with pytest.raises(Invalid):
        desk.verify_selfservice(started["request"], code, "short")
    done = desk.verify_selfservice(started["request"], code, "a-new-long-password-1")
    assert done["status"] == "done"
    d = desk.directory
    alice = d.find("alice")
    assert d.check_password(alice, "a-new-long-password-1")
    assert not d.check_password(alice, "alice-old-password")
    shown = desk.show(ticket.id)
    assert shown["status"] == "resolved" and "identity verified" in shown["comments"][-1]["body"]
    with pytest.raises(Refused):  # one time
        desk.verify_selfservice(started["request"], code, "another-long-password")


def test_unlock_clears_the_lockout_on_the_real_directory(desk, ldap_url):
    _lock(ldap_url, "bob")
    bob = desk.directory.find("bob")
    assert bob.locked and not desk.directory.check_password(bob, "bob-old-password")
    started = desk.start_selfservice("account_unlock", "bob")
    code = desk.sent[-1][1]
    assert desk.verify_selfservice(started["request"], code)["status"] == "done"
    bob = desk.directory.find("bob")
    assert not bob.locked and desk.directory.check_password(bob, "bob-old-password")


def test_wrong_codes_are_limited_and_unknown_accounts_look_the_same(desk, shared):
    unknown = desk.start_selfservice("account_unlock", "nobody-here")
    known = desk.start_selfservice("account_unlock", "alice")
    assert unknown["message"] == known["message"]
    assert len([a for a, _ in desk.sent if a == "alice@example.org"]) >= 1
    for _ in range(4):
        with pytest.raises(Refused, match=r"^code not accepted$"):
            desk.verify_selfservice(known["request"], "000000")
    with pytest.raises(Refused, match="request closed"):
        desk.verify_selfservice(known["request"], "000000")
    real = desk.sent[-1][1]
    with pytest.raises(Refused):  # closed: even the right code does nothing now
        desk.verify_selfservice(known["request"], real)
    with pytest.raises(Refused, match=r"^code not accepted$"):  # same words, no account
        desk.verify_selfservice(unknown["request"], "123456")
    with shared.db.session() as s:
        actions = {
            r.action for r in s.query(AuditRecord).filter(AuditRecord.subject.like("request:%"))
        }
    assert {
        "selfservice.code_sent",
        "selfservice.code_not_sent",
        "selfservice.code_rejected",
    } <= actions


def test_ldap_injection_in_user_names_finds_nobody(desk):
    d = desk.directory
    for name in ("*", "al*", "alice)(uid=*", "*)(|(mail=*", "alice\\", "bob\x00"):
        assert d.find(name) is None, name
    before = len(desk.sent)
    desk.start_selfservice("password_reset", "*")
    assert len(desk.sent) == before  # no code went anywhere


def test_requests_per_name_are_rate_limited(desk):
    for _ in range(3):
        desk.start_selfservice("account_unlock", "ratelimited-user")
    fourth = desk.start_selfservice("account_unlock", "ratelimited-user")
    with pytest.raises(Refused):
        desk.verify_selfservice(fourth["request"], "000000")


def test_chat_recognises_a_software_request():
    assert chat.intent("could you install the drawing software Inkscape for me") == (
        "software_request"
    )
    assert chat.intent("my printer is jammed") is None


def test_a_code_is_six_digits(desk):
    desk.start_selfservice("account_unlock", "bob")
    assert re.fullmatch(r"\d{6}", desk.sent[-1][1])


def test_group_access_is_granted_only_by_the_groups_owner_in_the_directory(desk, shared):
    shared.clock.advance(timedelta(hours=1))  # past the per-name hourly limit of the others
    d = desk.directory
    for name in ("*", "fin*", "finance)(cn=*", "*)(objectClass=*"):
        assert d.group(name) is None, name  # escaped: wildcards and filters find nothing
    sneaky = desk.start_selfservice("group_access", "bob", {"group": "finance)(cn=*"})
    held = desk.verify_selfservice(sneaky["request"], desk.sent[-1][1])
    assert held["status"] == "awaiting_approval"  # the policy's ceiling for group access
    with pytest.raises(Refused, match="no such group"):
        desk.approve_selfservice(sneaky["request"], Actor("bob", "human"))
    ticket = desk.file("alice@example.org", "access to the finance share", "please add me")
    asked = desk.start_selfservice("group_access", "alice", {"group": "finance"}, ticket.id)
    desk.verify_selfservice(asked["request"], desk.sent[-1][1])
    with pytest.raises(Refused, match="owner"):
        desk.approve_selfservice(asked["request"], Actor("alice", "human"))  # not her own
    assert desk.approve_selfservice(asked["request"], Actor("bob", "human"))["status"] == "done"
    _, _, members = d.group("finance")
    assert any(m.startswith("uid=alice,") for m in members)
    assert desk.show(ticket.id)["status"] == "resolved"
