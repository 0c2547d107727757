"""Disk quota and software requests carried out by their runbooks on a real OpenLDAP:
approved (or allowed) runs change the directory, are read back, and close the ticket
with the transcript; a failing run is rolled back and left open for a person."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ldap3 import BASE as LDAP_BASE
from ldap3 import Connection, Server

from baton.govern import killswitch
from baton.govern.config import PolicyConfig
from baton.kernel.audit import Actor
from baton.kernel.errors import Invalid, Refused
from baton.servicedesk.directory import Directory
from baton.store.models import AuditRecord
from tests.servicedesk.services import ADMIN, ADMIN_PW, BASE, SOFTWARE

ALICE = f"uid=alice,ou=people,{BASE}"
LEAD = Actor("lead", "human")


@pytest.fixture
def desk(shared, ldap_url):
    sent: list[tuple[str, str]] = []
    shared.clock.advance(timedelta(hours=1))  # each test starts past the hourly limit
    shared.desk.directory = Directory(
        ldap_url,
        BASE,
        ADMIN,
        ADMIN_PW,
        quota_attr="diskQuotaGB",
        quota_class="quotaAccount",
        software_base=SOFTWARE,
    )
    shared.desk.send_code = lambda address, code: sent.append((address, code))
    shared.desk.sent = sent
    return shared.desk


def _read(url: str, dn: str, attr: str) -> list[str]:
    """What the directory itself holds, read with a separate admin connection."""
    with Connection(Server(url), ADMIN, ADMIN_PW, auto_bind=True) as conn:
        conn.search(dn, "(objectClass=*)", LDAP_BASE, attributes=[attr])
        return [str(v) for v in conn.entries[0].entry_attributes_as_dict.get(attr, [])]


def _verified(desk, item: str, user: str, params: dict, ticket_id: int | None) -> int:
    started = desk.start_selfservice(item, user, params, ticket_id)
    held = desk.verify_selfservice(started["request"], desk.sent[-1][1])
    assert held["status"] == "awaiting_approval"  # ceiling `approve`: a person decides
    return started["request"]


def test_an_approved_quota_increase_changes_the_directory_and_closes_the_ticket(desk, ldap_url):
    assert _read(ldap_url, ALICE, "diskQuotaGB") == []
    ticket = desk.file("alice@example.org", "need more disk quota", "home is full")
    request = _verified(desk, "disk_quota", "alice", {"owner": "sam", "gb": 10}, ticket.id)
    assert _read(ldap_url, ALICE, "diskQuotaGB") == []  # nothing before the approval
    with pytest.raises(Refused):
        desk.approve_selfservice(request, Actor("tia", "human"))
    assert desk.approve_selfservice(request, Actor("sam", "human"))["status"] == "done"
    assert _read(ldap_url, ALICE, "diskQuotaGB") == ["10"]
    assert "quotaAccount" in _read(ldap_url, ALICE, "objectClass")  # the class it needs
    shown = desk.show(ticket.id)
    assert shown["status"] == "resolved"
    body = shown["comments"][-1]["body"]
    assert "disk quota not set -> 10 GB" in body and "verify: the directory now holds 10 GB" in body


def test_a_quota_increase_adds_to_what_the_account_already_has(desk, ldap_url):
    bob = f"uid=bob,ou=people,{BASE}"
    [before] = _read(ldap_url, bob, "diskQuotaGB")  # seeded at 20
    request = _verified(desk, "disk_quota", "bob", {"gb": "5"}, None)
    assert desk.approve_selfservice(request, Actor("tia", "human"))["status"] == "done"
    assert _read(ldap_url, bob, "diskQuotaGB") == [str(int(before) + 5)]


def test_a_quota_request_must_name_a_bounded_whole_number_before_a_code_is_sent(desk):
    before = len(desk.sent)
    for gb in ("0", "101", "10; rm -rf /", "2.5", None, "-3"):
        with pytest.raises(Invalid):
            desk.start_selfservice("disk_quota", "alice", {"gb": gb})
    assert len(desk.sent) == before


def test_a_failing_quota_run_is_rolled_back_and_left_to_a_technician(desk, ldap_url, shared):
    desk.directory.quota_class = None  # the account lacks the class: the server refuses
    alice = f"uid=alice,ou=people,{BASE}"
    with Connection(Server(ldap_url), ADMIN, ADMIN_PW, auto_bind=True) as conn:
        conn.modify(alice, {"diskQuotaGB": [("MODIFY_DELETE", [])]})
        conn.modify(alice, {"objectClass": [("MODIFY_DELETE", ["quotaAccount"])]})
    ticket = desk.file("alice@example.org", "quota", "more please")
    request = _verified(desk, "disk_quota", "alice", {"gb": 3}, ticket.id)
    assert desk.approve_selfservice(request, Actor("tia", "human"))["status"] == "failed"
    assert _read(ldap_url, alice, "diskQuotaGB") == []
    shown = desk.show(ticket.id)
    assert shown["status"] != "resolved"
    note = shown["comments"][-1]
    assert not note["public"] and "rolled back" in note["body"] and "failed:" in note["body"]
    with shared.db.session() as s:
        assert s.query(AuditRecord).filter_by(action="selfservice.failed").count() >= 1


def test_an_approved_software_request_entitles_the_account_in_the_directory(desk, ldap_url):
    group = f"cn=Inkscape 1.3,{SOFTWARE}"
    ticket = desk.file("alice@example.org", "please install software", "I need Inkscape")
    with pytest.raises(Invalid):  # nothing sent for a request that names nothing usable
        desk.start_selfservice("software_request", "alice", {"software": "x;rm -rf /"})
    request = _verified(desk, "software_request", "alice", {"software": "Inkscape 1.3"}, ticket.id)
    assert ALICE not in _read(ldap_url, group, "member")
    assert desk.approve_selfservice(request, Actor("tia", "human"))["status"] == "done"
    assert ALICE in _read(ldap_url, group, "member")
    shown = desk.show(ticket.id)
    assert shown["status"] == "resolved"
    assert f"add {ALICE} to {group}" in shown["comments"][-1]["body"]


def test_software_outside_the_catalogue_branch_changes_nothing(desk, ldap_url):
    finance = f"cn=finance,ou=groups,{BASE}"  # a real group, but not a software entitlement
    assert desk.directory.software("Inkscape*") is None  # escaped: no wildcard match
    for name in ("finance", "Inkscape"):
        ticket = desk.file("alice@example.org", "install", f"I need {name}")
        request = _verified(desk, "software_request", "alice", {"software": name}, ticket.id)
        assert desk.approve_selfservice(request, Actor("tia", "human"))["status"] == "failed"
        assert "not in the software catalogue" in desk.show(ticket.id)["comments"][-1]["body"]
    assert ALICE not in _read(ldap_url, finance, "member")


def test_a_kill_switch_pause_stops_an_approved_run(desk, ldap_url, shared):
    bob = f"uid=bob,ou=people,{BASE}"
    before = _read(ldap_url, bob, "diskQuotaGB")
    request = _verified(desk, "disk_quota", "bob", {"gb": 1}, None)
    with shared.db.session() as s:
        killswitch.pause(s, "runbook", "selfservice.disk_quota", LEAD, "freeze", shared.clock.now())
        s.commit()
    try:
        with pytest.raises(Refused, match="paused"):
            desk.approve_selfservice(request, Actor("tia", "human"))
        assert _read(ldap_url, bob, "diskQuotaGB") == before
    finally:
        with shared.db.session() as s:
            killswitch.resume(s, "runbook", "selfservice.disk_quota", LEAD, "", shared.clock.now())
            s.commit()


def test_a_policy_that_raises_the_runbook_to_auto_runs_it_after_the_code(desk, ldap_url):
    bob = f"uid=bob,ou=people,{BASE}"
    [before] = _read(ldap_url, bob, "diskQuotaGB")
    config = desk.config
    kept = config.policy
    config.policy = PolicyConfig.model_validate(
        {"runbooks": {"selfservice-disk-quota": {"autonomy": {"default": "auto"}}}}
    )
    try:
        started = desk.start_selfservice("disk_quota", "bob", {"gb": 2})
        done = desk.verify_selfservice(started["request"], desk.sent[-1][1])
    finally:
        config.policy = kept
    assert done["status"] == "done"  # no person in the loop: the policy allowed it
    assert _read(ldap_url, bob, "diskQuotaGB") == [str(int(before) + 2)]
