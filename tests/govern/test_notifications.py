"""Incident notifications: the routing tree, Alertmanager's group timing on a simulated
clock, durable groups across a restart, and delivery to real local HTTP and SMTP servers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from baton.govern.routes import NotificationConfig, load_routing, routing_from
from baton.runtime.notify import Message, send
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from baton.store.models import AuditRecord, NotificationGroup
from tests.helpers import free_port

# The root route both test configs share: by severity, Alertmanager-style timings.
ROOT = {
    "receiver": "ops",
    "group_by": ["severity"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "1h",
}
CONFIG = {
    "receivers": [
        {"name": "ops", "channels": ["webhook:ops-hook"]},
        {"name": "dba", "channels": ["slack:dba-chat"]},
        {"name": "mail", "channels": ["email:oncall"]},
    ],
    "route": {
        **ROOT,
        "routes": [
            {"matchers": ['service=~"db-.*"'], "receiver": "dba", "continue": True},
            {"matchers": ["severity=critical", "team!=web"], "receiver": "mail"},
            {"matchers": ['service!~"db-.*"'], "group_by": ["service"], "group_wait": 10},
        ],
    },
}


def _routing(config=CONFIG):
    return routing_from(NotificationConfig.model_validate(config))


def _receivers(routing, **labels):
    return [(r.receiver, r.id) for r in routing.root.match(labels)]


def test_routes_match_with_every_operator_continue_and_the_default():
    routing = _routing()
    # =~ matches and continues; the next sibling (critical, team not web) matches too
    assert _receivers(routing, service="db-main", severity="critical") == [
        ("dba", "route.0"),
        ("mail", "route.1"),
    ]
    # != fails (team=web), !~ matches a non-db service
    assert _receivers(routing, service="web", severity="critical", team="web") == [
        ("ops", "route.2")
    ]
    # db-* but warning: dba (continue), then nothing else → only dba
    assert _receivers(routing, service="db-main", severity="warning") == [("dba", "route.0")]
    # regexes match the whole value: "xdb-1" is not db-*, so the last route takes it
    assert _receivers(routing, service="xdb-1", severity="info") == [("ops", "route.2")]


def test_children_inherit_what_they_do_not_set():
    routing = _routing()
    dba, last = routing.root.find("route.0"), routing.root.find("route.2")
    assert dba.group_by == ("severity",) and dba.group_wait == timedelta(seconds=30)
    assert last.group_by == ("service",) and last.group_wait == timedelta(seconds=10)
    assert last.group_interval == timedelta(minutes=5)
    assert last.repeat_interval == timedelta(hours=1)
    assert last.group_labels({"service": "web", "severity": "x"}) == {"service": "web"}


def test_a_tree_with_no_children_routes_everything_to_the_default():
    routing = _routing(
        {"receivers": [{"name": "ops", "channels": ["slack:a"]}], "route": {"receiver": "ops"}}
    )
    assert _receivers(routing, service="anything") == [("ops", "route")]
    assert routing.root.group_wait == timedelta(seconds=30)  # Alertmanager's defaults


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c["route"]["routes"][1].update(receiver="nobody"), "route.routes.1.receiver"),
        (lambda c: c["route"]["routes"][0].update(matchers=["service=~(unclosed"]), "matchers.0"),
        (lambda c: c["route"]["routes"][0].update(matchers=["no operator"]), "matchers.0"),
        (lambda c: c["route"].update(group_wait="soon"), "route.group_wait"),
        (lambda c: c["route"].update(repeat_interval=5), "route.repeat_interval"),
        (lambda c: c["receivers"][0].update(channels=["irc:ops"]), "receivers.0.channels.0"),
        (lambda c: c["route"]["routes"][2].update(colour="red"), "route.routes.2.colour"),
        (lambda c: c["route"].pop("receiver"), "route.receiver"),
        (lambda c: c["receivers"].append({"name": "ops", "channels": ["slack:x"]}), "'ops'"),
    ],
)
def test_bad_config_names_the_file_and_field(tmp_path, change, field):
    config = yaml.safe_load(yaml.safe_dump(CONFIG))
    change(config)
    path = tmp_path / "notifications.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError) as err:
        load_routing(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_runbooks_validate_checks_the_notifications_file(runbooks_dir):
    from typer.testing import CliRunner

    from baton.cli import app

    runner = CliRunner()
    (runbooks_dir / "notifications.yaml").write_text(yaml.safe_dump(CONFIG))
    assert runner.invoke(app, ["runbooks", "validate", str(runbooks_dir)]).exit_code == 0
    (runbooks_dir / "notifications.yaml").write_text("route: {receiver: ops}\n")
    bad = runner.invoke(app, ["runbooks", "validate", str(runbooks_dir)])
    assert bad.exit_code == 2 and "notifications.yaml: receivers: Field required" in bad.output


# --- the dispatcher, step by step on a simulated clock --------------------------------


def _start(settings: Settings, clock, config) -> Platform:
    (settings.runbooks_path / "notifications.yaml").write_text(yaml.safe_dump(config))
    return Platform(settings, clock).start()


def _alert(p: Platform, name: str, service: str, status: str = "firing", severity="critical"):
    p.drain.ingest_generic(
        [
            {
                "name": name,
                "service": service,
                "severity": severity,
                "status": status,
                "labels": {"team": "core"},
            }
        ]
    )


def _tick(p: Platform, clock, seconds: float) -> int:
    clock.advance(seconds)
    sent = p.scheduler.tick().notifications
    p.backend.drain(5)
    return sent


HOOK_ONLY = {
    "receivers": [{"name": "ops", "channels": ["webhook:ops-hook", "slack:ops-chat"]}],
    "route": ROOT,
}


@pytest.fixture
def hooked(http_peer, monkeypatch):
    base, seen = http_peer
    monkeypatch.setenv("BATON_CHANNEL_OPS_HOOK", f"{base}/hook")
    monkeypatch.setenv("BATON_CHANNEL_OPS_CHAT", f"{base}/slack")
    return base, seen


def _hooks(seen):
    return [body for path, _, body in seen if path == "/hook"]


def test_group_wait_interval_repeat_and_resolved(settings, clock, hooked):
    base, seen = hooked
    p = _start(settings, clock, HOOK_ONLY)
    try:
        _alert(p, "DiskFull", "billing")
        assert _tick(p, clock, 29) == 0  # still inside group_wait
        assert _tick(p, clock, 1) == 1  # group_wait over: the first notification
        first = _hooks(seen)[-1]
        assert first["status"] == "firing" and first["group_labels"] == {"severity": "critical"}
        assert [i["service"] for i in first["incidents"]] == ["billing"]

        _alert(p, "HighLatency", "search")  # a second incident joins the same group
        assert _tick(p, clock, 60) == 0  # batched: waits for the group_interval
        assert _tick(p, clock, 240) == 1  # 5 min after the first flush
        assert sorted(i["service"] for i in _hooks(seen)[-1]["incidents"]) == [
            "billing",
            "search",
        ]
        for _ in range(11):  # unchanged and firing: quiet until repeat_interval
            assert _tick(p, clock, 300) == 0
        assert _tick(p, clock, 300) == 1  # 60 min after the last one: repeated
        assert len(_hooks(seen)) == 3

        _alert(p, "DiskFull", "billing", status="resolved")
        assert _tick(p, clock, 300) == 1
        partly = _hooks(seen)[-1]
        assert partly["status"] == "firing"
        assert {i["service"]: i["status"] for i in partly["incidents"]} == {
            "billing": "resolved",
            "search": "firing",
        }
        assert _tick(p, clock, 300) == 0  # the resolved one was said once and is gone

        _alert(p, "HighLatency", "search", status="resolved")
        assert _tick(p, clock, 300) == 1
        done = _hooks(seen)[-1]
        assert done["status"] == "resolved"
        assert [i["service"] for i in done["incidents"]] == ["search"]
        with p.db.session() as s:
            assert s.scalar(select(NotificationGroup.id)) is None  # the group ended
        slack = [body for path, _, body in seen if path == "/slack"]
        assert len(slack) == len(_hooks(seen)) == 5
        assert slack[0]["text"].startswith("[Baton] FIRING:1 severity=critical")
        assert "RESOLVED" in slack[-1]["text"] and "search" in slack[-1]["text"]
        with p.db.session() as s:
            records = list(
                s.scalars(select(AuditRecord).where(AuditRecord.action == "notification.delivery"))
            )
        assert len(records) == 10 and {r.decision for r in records} == {"delivered"}
        assert {r.inputs["channel"] for r in records} == {"webhook:ops-hook", "slack:ops-chat"}
        assert not any(base in str(r.inputs) + str(r.rationale) for r in records)
    finally:
        p.close()


def test_an_incident_that_spreads_is_news_at_the_next_interval(settings, clock, hooked):
    from baton.correlate.topology import ServiceDef

    _, seen = hooked
    p = _start(settings, clock, HOOK_ONLY)
    try:
        p.config.declare_services([ServiceDef("db"), ServiceDef("api", depends_on=("db",))])
        _alert(p, "DiskFull", "db")
        assert _tick(p, clock, 30) == 1
        _alert(p, "Errors", "api")  # downstream: joins the same incident
        assert _tick(p, clock, 300) == 1
        (incident,) = _hooks(seen)[-1]["incidents"]
        assert sorted(incident["services"]) == ["api", "db"]
    finally:
        p.close()


def test_resolved_before_group_wait_says_nothing(settings, clock, hooked):
    _, seen = hooked
    p = _start(settings, clock, HOOK_ONLY)
    try:
        _alert(p, "Blip", "billing")
        clock.advance(5)
        _alert(p, "Blip", "billing", status="resolved")
        assert _tick(p, clock, 60) == 0
        assert seen == []
    finally:
        p.close()


def test_a_failed_delivery_is_audited_and_said_again_next_interval(
    settings, clock, hooked, monkeypatch
):
    base, seen = hooked
    config = {**HOOK_ONLY, "receivers": [{"name": "ops", "channels": ["webhook:ops-hook"]}]}
    monkeypatch.setenv("BATON_CHANNEL_OPS_HOOK", f"{base}/fail")
    p = _start(settings, clock, config)
    try:
        _alert(p, "DiskFull", "billing")
        assert _tick(p, clock, 30) == 1
        monkeypatch.setenv("BATON_CHANNEL_OPS_HOOK", f"{base}/hook")
        assert _tick(p, clock, 300) == 1  # nothing changed, but it never arrived
        assert _tick(p, clock, 300) == 0
        assert [path for path, _, _ in seen] == ["/fail", "/hook"]
        with p.db.session() as s:
            outcomes = [
                (r.decision, r.rationale)
                for r in s.scalars(
                    select(AuditRecord).where(AuditRecord.action == "notification.delivery")
                )
            ]
        assert outcomes == [("failed", "HTTP 500"), ("delivered", "HTTP 200")]
    finally:
        p.close()


def test_a_restart_keeps_pending_groups_and_does_not_resend(settings, clock, hooked):
    _, seen = hooked
    p = _start(settings, clock, HOOK_ONLY)
    _alert(p, "DiskFull", "billing")
    assert _tick(p, clock, 30) == 1
    _alert(p, "Overload", "search", severity="warning")  # a new group, still in group_wait
    p.close()

    again = Platform(settings, clock).start()
    try:
        assert _tick(again, clock, 20) == 0  # the critical group was already said
        assert _tick(again, clock, 10) == 1  # the warning group kept its group_wait
        assert [b["group_labels"]["severity"] for b in _hooks(seen)] == ["critical", "warning"]
    finally:
        again.close()


# --- email over a real local SMTP server ---------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def smtp_server():
    """(port, inbox, logins) of an aiosmtpd server accepting AUTH for baton/s3cret."""
    inbox, logins = _Inbox(), []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data.login)
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"baton", b"s3cret"))

    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield port, inbox, logins
    controller.stop()


def test_email_is_sent_over_smtp_with_credentials_from_a_secret(smtp_server, monkeypatch, tmp_path):
    port, inbox, logins = smtp_server
    monkeypatch.setenv("BATON_CHANNEL_ONCALL", "ana@example.org, ops@example.org")
    monkeypatch.setenv("BATON_SECRET_SMTP_PASSWORD", "s3cret")
    settings = Settings(
        home=tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="baton@example.org",
        smtp_username="baton",
        smtp_password_secret="SMTP_PASSWORD",
    )
    message = Message("notification-group:1", "[Baton] FIRING:1", "incident #1 on db")
    assert send(settings, "email:oncall", message) == (True, "SMTP accepted")
    sender, recipients, content = inbox.messages[0]
    assert sender == "baton@example.org"
    assert recipients == ["ana@example.org", "ops@example.org"]
    assert "Subject: [Baton] FIRING:1" in content and "incident #1 on db" in content
    assert logins == [b"baton"]

    monkeypatch.setenv("BATON_SECRET_SMTP_PASSWORD", "wrong")
    ok, detail = send(settings, "email:oncall", message)
    assert not ok and detail.startswith("SMTP") and "wrong" not in detail  # 535, or hung up
    assert len(inbox.messages) == 1


def test_incident_notifications_by_email_through_the_platform(
    smtp_server, monkeypatch, runbooks_dir, db_url, tmp_path, clock
):
    port, inbox, _ = smtp_server
    monkeypatch.setenv("BATON_CHANNEL_ONCALL", "ana@example.org")
    settings = Settings(
        home=tmp_path,
        database_url=db_url,
        runbooks_dir=runbooks_dir,
        smtp_host="127.0.0.1",
        smtp_port=port,
    )
    config = {
        "receivers": [{"name": "mail", "channels": ["email:oncall"]}],
        "route": {"receiver": "mail", "group_wait": 0},
    }
    p = _start(settings, clock, config)
    try:
        _alert(p, "DiskFull", "billing")
        assert _tick(p, clock, 1) == 1
        assert len(inbox.messages) == 1
        assert "DiskFull on billing" in inbox.messages[0][2]
        with p.db.session() as s:
            record = s.scalar(
                select(AuditRecord).where(AuditRecord.action == "notification.delivery")
            )
        assert (record.decision, record.inputs) == ("delivered", {"channel": "email:oncall"})
        assert "ana@example.org" not in str(record.inputs) + str(record.rationale)
    finally:
        p.close()


def test_an_email_channel_without_addresses_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.delenv("BATON_CHANNEL_NOBODY", raising=False)
    with pytest.raises(ValueError, match="BATON_CHANNEL_NOBODY"):
        send(Settings(home=tmp_path, smtp_host="x"), "email:nobody", Message("s", "t", "x"))
