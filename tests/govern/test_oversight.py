"""Humans hold the baton: veto, cancel, roll back, kill switch mid-run, policy edits,
approvals with changed params, on-call and escalation (delivered to a real HTTP server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from baton.api.app import create_app
from baton.govern import oncall
from baton.govern.flows import ApprovalError
from baton.govern.rbac import create_token
from baton.harness.demo import Demo, DemoPlan
from baton.kernel.audit import Actor
from baton.kernel.errors import Refused
from baton.learn.kpis import track_record
from baton.store.models import Approval, AuditRecord, Escalation, Override
from tests.helpers import actions, executions, pending, queue, rows, run_until

ALICE, BOB = Actor("alice", "human"), Actor("bob", "human")


def test_veto_in_the_window_then_baton_proposes_again_later(demo):
    demo.run_for(5, humans=False)
    demo.inject("traffic_surge")
    assert run_until(demo, lambda: executions(demo))
    first = executions(demo)[0]
    assert first.status == "queued" and first.not_before > demo.clock.now()  # veto window
    vetoed = demo.platform.commands.override(
        first.id, "veto", "bad_timing", "deploy in progress", ALICE
    )
    assert vetoed.status == "vetoed"
    demo.run_for(5, humans=False)
    assert len(executions(demo)) == 1  # held off for retriage_after_veto_s
    assert run_until(demo, lambda: any(e.verified for e in executions(demo)), minutes=30)
    with demo.platform.db.session() as s:
        override = s.scalars(select(Override)).one()
    assert (override.kind, override.category, override.actor) == ("veto", "bad_timing", "alice")
    with pytest.raises(Refused, match="only a queued"):
        demo.platform.commands.override(first.id, "veto", "other", "again", ALICE)


def test_roll_back_a_finished_execution(demo):
    demo.run_for(5, humans=False)
    demo.inject("traffic_surge")
    assert run_until(demo, lambda: any(e.verified for e in executions(demo)))
    done = next(e for e in executions(demo) if e.verified)
    replicas = demo.estate.service_state(done.params["service"])["replicas"]
    with demo.platform.db.session() as s:
        before = track_record(s, done.runbook_id)
    demo.platform.commands.override(done.id, "rollback", "risk_too_high", "costs too much", BOB)
    demo.platform.backend.drain(5)
    after = next(e for e in executions(demo) if e.id == done.id)
    assert after.status == "rolled_back"
    with demo.platform.db.session() as s:  # the run now counts as rolled back, not twice
        record = track_record(s, done.runbook_id)
    assert (record["runs"], record["succeeded"]) == (before["runs"], before["succeeded"] - 1)
    assert demo.estate.service_state(done.params["service"])["replicas"] == replicas - 1
    with pytest.raises(Refused, match=r"not reversible|only a succeeded"):
        demo.platform.commands.override(done.id, "rollback", "other", "twice", BOB)


def test_override_needs_a_known_category_and_a_person(demo):
    from baton.govern.overrides import OverrideError

    with pytest.raises(OverrideError, match="unknown category"):
        demo.platform.commands.override(1, "veto", "because", "x", ALICE)
    with pytest.raises(OverrideError, match="reason"):
        demo.platform.commands.override(1, "veto", "other", "  ", ALICE)
    demo.run_for(5, humans=False)
    demo.inject("traffic_surge")
    assert run_until(demo, lambda: executions(demo))
    with pytest.raises(OverrideError, match="only a person"):
        demo.platform.commands.override(
            executions(demo)[0].id, "veto", "other", "I am a bot", Actor("some-bot", "ai")
        )
    assert executions(demo)[0].status == "queued"  # refused whole: nothing was vetoed


@pytest.fixture
def three_step_settings(settings, runbooks_dir):
    """A scale-out runbook with three steps, so a pause can land between them."""
    text = (runbooks_dir / "scale-out.yaml").read_text()
    step = (
        "  - name: Add a replica to {{ service }}\n    action: sandbox\n"
        '    with: {remediation: scale_out, service: "{{ service }}"}\n'
    )
    text = text.replace(step, step * 3)
    (runbooks_dir / "scale-out.yaml").write_text(text)
    (runbooks_dir / "policy.yaml").write_text("veto_window_s: 0\n")
    return settings


def test_kill_switch_stops_a_running_execution_before_its_next_step(three_step_settings):
    demo = Demo(three_step_settings, DemoPlan(seed=3))
    try:
        original = demo.target.remediate
        calls = []

        def pausing_remediate(action, service, **params):
            calls.append(action)
            if len(calls) == 1:  # while step 1 runs, a technician hits the kill switch
                demo.platform.commands.pause("all", None, ALICE, "something looks wrong")
            return original(action, service, **params)

        demo.target.remediate = pausing_remediate
        demo.run_for(5, humans=False)
        demo.inject("traffic_surge")
        assert run_until(
            demo, lambda: any(e.status in ("cancelled", "rolled_back") for e in executions(demo))
        )
        execution = executions(demo)[0]
        steps = [st for st in execution.steps if st.phase == "step"]
        assert len(steps) == 1 and calls.count("scale_out") == 2  # 1 step + its rollback
        assert "stopped before step" in (execution.summary or "")
        assert "execution.escalated" in actions(demo)
    finally:
        demo.close()


def test_policy_edits_are_audited_and_applied(demo, settings):
    platform = demo.platform
    with platform.db.session() as s:
        _, lead = create_token(s, name="lee", role="lead", at=platform.clock.now())
        _, tech = create_token(s, name="tia", role="technician", at=platform.clock.now())
    client = TestClient(create_app(platform))
    new = {"runbooks": {"rollback-deploy": {"autonomy": {"default": "auto"}}}, "veto_window_s": 0}
    denied = client.put("/api/v1/policy", json=new, headers={"Authorization": f"Bearer {tech}"})
    assert denied.status_code == 403
    bad = client.put(
        "/api/v1/policy",
        json={"services": {"web": "yolo"}},
        headers={"Authorization": f"Bearer {lead}"},
    )
    assert bad.status_code == 422 and "services.web" in bad.json()["error"]["message"]
    ok = client.put("/api/v1/policy", json=new, headers={"Authorization": f"Bearer {lead}"})
    assert ok.status_code == 200 and "+runbooks:" in ok.json()["diff"]
    assert "rollback-deploy" in (settings.runbooks_path / "policy.yaml").read_text()
    with platform.db.session() as s:
        change = s.scalars(select(AuditRecord).where(AuditRecord.action == "policy.changed")).one()
    assert change.actor == "lee" and "+runbooks:" in change.inputs["diff"]
    # the people raised rollback-deploy to auto: a bad deploy is now fixed without approval
    demo.run_for(5, humans=False)
    demo.inject("bad_deploy")
    assert run_until(demo, lambda: any(e.verified for e in executions(demo)))
    with platform.db.session() as s:
        assert s.scalars(select(Approval)).all() == []


def test_approve_with_changed_params_validates_them(demo):
    demo.run_for(5, humans=False)
    demo.inject("bad_deploy")
    assert run_until(demo, lambda: pending(demo))
    approval_id = pending(demo)[0].id
    with pytest.raises(ApprovalError, match=r"modified params rejected.*service"):
        demo.platform.commands.approve(approval_id, ALICE, "try", params={"service": "x; rm -rf /"})
    execution = demo.platform.commands.approve(
        approval_id, ALICE, "the gateway, not the API", params={"service": "api-gateway"}
    )
    assert execution.params == {"service": "api-gateway"}
    assert "approval.params_modified" in actions(demo)


def test_approval_view_has_what_a_human_needs(demo):
    demo.run_for(5, humans=False)
    demo.inject("bad_deploy")
    with demo.platform.db.session() as s:
        _, viewer = create_token(s, name="vi", role="viewer", at=demo.clock.now())
    client = TestClient(create_app(demo.platform))
    headers = {"Authorization": f"Bearer {viewer}"}
    assert run_until(demo, lambda: client.get("/api/v1/approvals", headers=headers).json())
    view = client.get("/api/v1/approvals", headers=headers).json()[0]
    assert view["incident"]["origin_service"] == "checkout-api"
    assert view["runbook"]["risk"] == "medium" and "track_record" in view["runbook"]
    assert view["dry_run"]["steps"][0]["with"] == {
        "remediation": "rollback",
        "service": "checkout-api",
    }
    assert any(e["kind"] == "alert" for e in view["proposal"]["evidence"])


def test_who_is_on_call_follows_rotation_and_overrides(db_url, settings, clock):
    from baton.runtime.platform import Platform

    p = Platform(settings, clock).start()
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 09:00 hand-over
    with p.db.session() as s:
        oncall.put_rotation(
            s,
            oncall.RotationIn(
                name="web", services=["web-portal"], members=["ana", "ben", "cai"], start=start
            ),
            ALICE,
            clock.now(),
        )
        assert oncall.who_is_on_call(s, "web-portal", start + timedelta(days=2)).user == "ana"
        assert oncall.who_is_on_call(s, "web-portal", start + timedelta(days=8)).user == "ben"
        later = oncall.who_is_on_call(s, "web-portal", start + timedelta(days=21, hours=1))
        assert later.user == "ana" and later.until == start + timedelta(days=28)
        assert oncall.who_is_on_call(s, "web-portal", start - timedelta(hours=1)).user is None
        oncall.add_swap(
            s,
            oncall.ShiftSwapIn(
                rotation="web",
                user="dee",
                start=start + timedelta(days=9),
                end=start + timedelta(days=10),
            ),
            ALICE,
            clock.now(),
        )
        swap = oncall.who_is_on_call(s, "web-portal", start + timedelta(days=9, hours=2))
        assert (swap.user, swap.source) == ("dee", "swap")
        assert oncall.who_is_on_call(s, "vpn", start).source == "nobody"
    p.close()


def test_unacknowledged_incident_escalates_through_levels(demo, http_peer, monkeypatch):
    hook_server, received = http_peer
    monkeypatch.setenv("BATON_CHANNEL_OPS_CHAT", f"{hook_server}/slack")
    monkeypatch.setenv("BATON_CHANNEL_PAGER", f"{hook_server}/hook")
    p = demo.platform
    with p.db.session() as s:
        oncall.put_rotation(
            s,
            oncall.RotationIn(name="ops", services=["*"], members=["ana"], start=demo.clock.now()),
            ALICE,
            demo.clock.now(),
        )
        oncall.put_escalation_policy(
            s,
            oncall.EscalationPolicyIn(
                service="*",
                ack_timeout_s=300,
                levels=[
                    oncall.LevelIn(targets=["oncall"], delay_s=300, channels=["slack:ops-chat"]),
                    oncall.LevelIn(targets=["head-of-ops"], channels=["webhook:pager"]),
                ],
            ),
            ALICE,
            demo.clock.now(),
        )
    p.commands.pause(
        "all", None, ALICE, "watch only"
    )  # nobody may fix it, so it stays unacknowledged
    demo.run_for(5, humans=False)
    demo.inject("bad_deploy")

    def esc():
        return rows(demo, select(Escalation).order_by(Escalation.id))

    assert run_until(demo, esc, minutes=30)
    first = esc()[0]
    assert first.subject.startswith("incident:") and first.notified[0]["targets"] == ["ana"]
    assert run_until(demo, lambda: esc()[0].level == 1, minutes=10)
    p.backend.drain(5)
    paths = [path for path, _, _ in received]
    assert paths == ["/slack", "/hook"]
    assert "ana" in received[0][2]["text"] and "escalation" in received[1][2]
    assert "escalation.delivery" in actions(demo)
    with p.db.session() as s:
        from baton.govern.escalation import acknowledge

        acknowledge(s, first.id, BOB, demo.clock.now())
    demo.run_for(30, humans=False)
    assert len(esc()) == 1  # acknowledged: somebody has it, nobody is paged again
    assert esc()[0].status == "acknowledged" and esc()[0].level == 1
    text = " ".join(str(r.inputs) + str(r.rationale) for r in rows(demo, select(AuditRecord)))
    assert hook_server not in text  # webhook URLs are secrets: only channel names are kept


def test_expired_approval_and_failed_fix_escalate(demo):
    demo.run_for(5, humans=False)
    demo.inject("bad_deploy")
    assert run_until(demo, lambda: pending(demo))
    demo.clock.advance(timedelta(hours=2))
    demo.platform.scheduler.tick()
    with demo.platform.db.session() as s:
        subjects = [e.subject for e in s.scalars(select(Escalation))]
    assert any(x.startswith("approval:") for x in subjects)


def test_circuit_breaker_opens_blocks_escalates_and_a_lead_closes_it(demo):
    p = demo.platform
    for service in ("object-storage", "backup", "file-storage"):  # three failures in a row
        execution, _ = queue(p, "clear-disk", service, status="failed")
        demo.clock.advance(60)
        p.dispatch.learn(execution.id)
    assert "breaker.opened" in actions(demo)
    assert rows(demo, select(Escalation.subject).where(Escalation.subject == "runbook:clear-disk"))
    demo.run_for(5, humans=False)
    demo.inject("disk_full")
    assert run_until(demo, lambda: "decision.made" in actions(demo), minutes=60)
    decision = rows(demo, select(AuditRecord).where(AuditRecord.action == "decision.made"))[0]
    assert decision.decision == "observe" and "circuit breaker" in decision.rationale
    with p.db.session() as s:
        _, tech = create_token(s, name="tia", role="technician", at=demo.clock.now())
        _, lead = create_token(s, name="lee", role="lead", at=demo.clock.now())
    client = TestClient(create_app(p))
    url = "/api/v1/runbooks/clear-disk/breaker/close"
    assert (
        client.post(
            url, json={"reason": "x"}, headers={"Authorization": f"Bearer {tech}"}
        ).status_code
        == 403
    )
    closed = client.post(
        url,
        json={"reason": "disk runbook fixed upstream"},
        headers={"Authorization": f"Bearer {lead}"},
    )
    assert closed.status_code == 200
    again = client.post(url, json={"reason": "twice"}, headers={"Authorization": f"Bearer {lead}"})
    assert again.status_code == 409
    listed = client.get("/api/v1/runbooks", headers={"Authorization": f"Bearer {lead}"}).json()
    assert all(rb["breaker"] is None for rb in listed["runbooks"])


def test_changed_params_are_re_decided_and_clear_earlier_approvals(demo, runbooks_dir):
    demo.run_for(5, humans=False)
    demo.inject("upstream_outage")  # failover-provider: high risk, two approvers
    assert run_until(demo, lambda: pending(demo))
    approval_id = pending(demo)[0].id
    p = demo.platform
    assert p.commands.approve(approval_id, ALICE, "first look") is None
    # bob points it at the identity store, which the policy caps at recommend: refused
    with pytest.raises(ApprovalError, match="allows only recommend"):
        p.commands.approve(approval_id, BOB, "sneaky", params={"service": "directory-ldap"})
    # bob changes it to another (allowed) service: alice's approval no longer counts
    assert (
        p.commands.approve(approval_id, BOB, "the API side", params={"service": "payments-api"})
        is None
    )
    assert pending(demo)[0].approvers == ["bob"]
    execution = p.commands.approve(approval_id, ALICE, "agreed on payments-api")
    assert execution is not None and execution.params == {"service": "payments-api"}


def test_cancel_during_the_only_step_is_not_ignored(demo):
    calls = []
    original = demo.target.remediate

    def cancelling(action, service, **params):
        calls.append(action)
        if len(calls) == 1:
            running = next(e for e in executions(demo) if e.status == "running")
            demo.platform.commands.override(running.id, "cancel", "wrong_fix", "stop it", ALICE)
        return original(action, service, **params)

    demo.target.remediate = cancelling
    demo.run_for(5, humans=False)
    demo.inject("traffic_surge")
    assert run_until(
        demo,
        lambda: any(
            e.status in ("cancelled", "rolled_back", "succeeded") for e in executions(demo)
        ),
    )
    final = executions(demo)[0]
    assert final.status in ("cancelled", "rolled_back") and final.verified is None
    # a person's own cancel pages nobody
    assert not rows(demo, select(Escalation).where(Escalation.subject == f"execution:{final.id}"))


def test_only_one_rollback_wins(demo):
    demo.run_for(5, humans=False)
    demo.inject("traffic_surge")
    assert run_until(demo, lambda: any(e.verified for e in executions(demo)))
    done = next(e for e in executions(demo) if e.verified)
    demo.platform.commands.override(done.id, "rollback", "risk_too_high", "first", ALICE)
    with pytest.raises(Refused, match="only a succeeded"):
        demo.platform.commands.override(done.id, "rollback", "risk_too_high", "second", BOB)
    assert len(rows(demo, select(Override))) == 1


def test_policy_put_without_change_keeps_the_file_and_bad_values_are_refused(demo, settings):
    path = settings.runbooks_path / "policy.yaml"
    before = path.read_text()
    same = demo.platform.config.policy.model_dump(mode="json")
    _, diff, _ = demo.platform.commands.apply_policy(same, ALICE)
    assert diff == "" and path.read_text() == before  # comments kept, nothing audited
    for bad, words in (
        ({"approval_ttl_s": 10**12}, "approval_ttl_s"),
        (
            {"freeze": [{"start": "2026-03-03T00:00:00Z", "end": "2026-03-02T00:00:00Z"}]},
            "end after it starts",
        ),
        ({"veto_window_s": -5}, "veto_window_s"),
    ):
        with pytest.raises(ValueError, match=words):
            demo.platform.commands.apply_policy(bad, ALICE)
    assert path.read_text() == before
    _, _, warnings = demo.platform.commands.apply_policy(
        {"runbooks": {"restart-servce": {"veto_window_s": 5}}}, ALICE
    )
    assert warnings == ["runbooks.restart-servce: no such runbook in the catalogue"]


def test_technicians_take_shifts_only_for_themselves(demo):
    with demo.platform.db.session() as s:
        oncall.put_rotation(
            s,
            oncall.RotationIn(name="ops", services=["*"], members=["ana"], start=demo.clock.now()),
            ALICE,
            demo.clock.now(),
        )
        _, tech = create_token(s, name="tia", role="technician", at=demo.clock.now())
        _, lead = create_token(s, name="lee", role="lead", at=demo.clock.now())
    client = TestClient(create_app(demo.platform))
    swap = {"rotation": "ops", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T18:00:00Z"}
    mine = client.post(
        "/api/v1/oncall/swaps",
        json={**swap, "user": "tia"},
        headers={"Authorization": f"Bearer {tech}"},
    )
    other = client.post(
        "/api/v1/oncall/swaps",
        json={**swap, "user": "nobody"},
        headers={"Authorization": f"Bearer {tech}"},
    )
    assigned = client.post(
        "/api/v1/oncall/swaps",
        json={**swap, "user": "ben"},
        headers={"Authorization": f"Bearer {lead}"},
    )
    assert (mine.status_code, other.status_code, assigned.status_code) == (201, 403, 201)


def test_rotation_hand_over_keeps_local_time_across_dst(db_url, settings, clock):
    from baton.runtime.platform import Platform

    p = Platform(settings, clock).start()
    # Monday 09:00 in Berlin, winter time (08:00 UTC); DST starts on 2026-03-29
    start = datetime(2026, 3, 23, 8, 0, tzinfo=UTC)
    with p.db.session() as s:
        oncall.put_rotation(
            s,
            oncall.RotationIn(
                name="eu",
                services=["vpn"],
                members=["ana", "ben"],
                start=start,
                timezone="Europe/Berlin",
            ),
            ALICE,
            clock.now(),
        )
        now = datetime(2026, 3, 30, 7, 30, tzinfo=UTC)  # 09:30 Berlin summer time: ben's turn
        who = oncall.who_is_on_call(s, "vpn", now)
        assert who.user == "ben" and who.until == datetime(2026, 4, 6, 7, 0, tzinfo=UTC)
        with pytest.raises(ValueError, match="unknown time zone"):
            oncall.RotationIn(
                name="x", services=["a"], members=["b"], start=start, timezone="Mars/Olympus"
            )
    p.close()


def test_a_policy_written_elsewhere_is_picked_up_on_the_next_tick(demo, settings):
    import os

    path = settings.runbooks_path / "policy.yaml"
    path.write_text("veto_window_s: 7\n")
    os.utime(path, (1, 1))  # a different mtime even on coarse file systems
    demo.platform.scheduler.tick()
    assert demo.platform.config.policy.veto_window_s == 7
    path.write_text("veto_window_s: [oops\n")
    os.utime(path, (2, 2))
    demo.platform.scheduler.tick()  # a broken file is logged, the last good policy stays
    assert demo.platform.config.policy.veto_window_s == 7


def test_a_person_can_ask_for_a_run_and_someone_else_approves_it(demo):
    with demo.platform.db.session() as s:
        _, tia = create_token(s, name="tia", role="technician", at=demo.clock.now())
        _, tom = create_token(s, name="tom", role="technician", at=demo.clock.now())
    client = TestClient(create_app(demo.platform))
    url = "/api/v1/runbooks/rollback-deploy/executions"
    bad = client.post(
        url,
        json={"params": {"service": "x;y"}, "reason": "r"},
        headers={"Authorization": f"Bearer {tia}"},
    )
    assert bad.status_code == 422 and "param 'service'" in bad.json()["error"]["message"]
    missing = client.post(
        "/api/v1/runbooks/nope/executions",
        json={"reason": "r"},
        headers={"Authorization": f"Bearer {tia}"},
    )
    assert missing.status_code == 404
    asked = client.post(
        url,
        json={
            "params": {"service": "checkout-api"},
            "reason": "the deploy at 10:00 broke checkout",
        },
        headers={"Authorization": f"Bearer {tia}"},
    ).json()
    assert asked["tier"] == "approve" and asked["execution"] is None
    approve = f"/api/v1/approvals/{asked['approval']}/approve"
    own = client.post(approve, json={"reason": "mine"}, headers={"Authorization": f"Bearer {tia}"})
    assert own.status_code == 409 and "requester" in own.json()["error"]["message"]
    other = client.post(
        approve, json={"reason": "agreed"}, headers={"Authorization": f"Bearer {tom}"}
    )
    assert other.status_code == 200 and other.json()["execution"] is not None
    assert "execution.requested" in actions(demo)
