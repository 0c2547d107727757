"""One signal's whole journey through the pipeline, against the sandbox estate, on both
databases: sense → correlate → triage → decide → act → verify → learn, audited throughout."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from sqlalchemy import select

from baton.govern.flows import ApprovalError
from baton.govern.killswitch import pause
from baton.harness.demo import Demo, DemoPlan
from baton.kernel.audit import Actor, verify
from baton.store.models import Approval, AuditRecord, Escalation, Execution, ExecutionStep
from tests.conftest import ROOT
from tests.helpers import actions, executions, pending, queue, rows, run_until


def test_end_to_end_fix_is_verified_and_audited_at_every_stage(demo):
    demo.run_for(10, humans=False)
    demo.inject("disk_full")
    assert run_until(demo, lambda: any(e.verified for e in executions(demo)), minutes=90)
    execution = next(e for e in executions(demo) if e.verified)
    assert execution.runbook_id == "clear-disk" and execution.status == "succeeded"
    assert run_until(demo, lambda: not demo.estate.active_faults(), minutes=10)
    truth = demo.estate.ground_truth()[0]
    assert truth["fixed_by"] == "clear_disk"
    recorded = actions(demo)
    for stage_action in (
        "events.received",
        "incident.opened",
        "triage.proposed",
        "decision.made",
        "execution.queued",
        "execution.started",
        "execution.step",
        "execution.verify",
        "execution.succeeded",
        "learn.outcome",
    ):
        assert stage_action in recorded, stage_action
    with demo.platform.db.session() as s:
        assert verify(s).ok


def test_approval_rules(demo):
    demo.run_for(10, humans=False)
    demo.inject("upstream_outage")  # high risk: two people must approve
    assert run_until(demo, lambda: pending(demo), minutes=60)
    approval_id = pending(demo)[0].id
    p = demo.platform
    with pytest.raises(ApprovalError, match="only a person"):
        p.commands.approve(approval_id, Actor("baton.triage", "ai"), "the AI approving itself")
    with p.db.session() as s:  # as if alice had asked for this run herself
        s.get(Approval, approval_id).requested_by = "alice"
    with pytest.raises(ApprovalError, match="requester cannot approve"):
        p.commands.approve(approval_id, Actor("alice", "human"), "my own request")
    with p.db.session() as s:
        s.get(Approval, approval_id).requested_by = "baton.triage/symptom-match/1"
    assert p.commands.approve(approval_id, Actor("alice", "human"), "looks right") is None
    with pytest.raises(ApprovalError, match="already approved"):
        p.commands.approve(approval_id, Actor("alice", "human"), "again")
    execution = p.commands.approve(approval_id, Actor("bob", "human"), "agreed")
    assert execution is not None
    p.backend.drain(5)
    assert run_until(demo, lambda: any(e.verified for e in executions(demo)), minutes=10)


def test_expired_approvals_escalate(demo):
    demo.run_for(10, humans=False)
    demo.inject("bad_deploy")
    assert run_until(demo, lambda: pending(demo), minutes=60)
    demo.clock.advance(timedelta(hours=2))
    demo.platform.scheduler.tick()
    assert not pending(demo)
    assert "approval.expired" in actions(demo)


def test_kill_switch_holds_automation_at_observe(demo):
    with demo.platform.db.session() as s:
        pause(s, "all", None, Actor("alice", "human"), "drill", demo.clock.now())
    demo.run_for(10, humans=False)
    demo.inject("disk_full")
    demo.run_for(60, humans=True)
    assert executions(demo) == []
    with demo.platform.db.session() as s:
        decisions = s.scalars(select(AuditRecord).where(AuditRecord.action == "decision.made"))
        assert {d.decision for d in decisions} == {"observe"}


def test_same_incident_runbook_and_params_never_run_twice(demo):
    first, created = queue(demo.platform, "clear-disk", "file-storage")
    again, created_again = queue(demo.platform, "clear-disk", "file-storage")  # redelivered
    assert created and not created_again and first.id == again.id


@pytest.fixture
def wrong_fix_settings(settings, tmp_path):
    """A catalogue whose only error-rate runbook restarts (wrong for a bad deploy)."""
    book = tmp_path / "books"
    book.mkdir()
    text = (ROOT / "runbooks" / "scale-out.yaml").read_text()
    text = (
        text.replace("id: scale-out", "id: restart-on-errors")
        .replace("alertnames: [HighCPU]", "alertnames: [HighErrorRate]")
        .replace("metric: cpu_pct, below: 75", "metric: error_rate, below: 0.02")
    )
    (book / "restart-on-errors.yaml").write_text(text)
    shutil.copy(ROOT / "runbooks" / "policy.yaml", book / "policy.yaml")
    settings.runbooks_dir = book
    return settings


def test_failed_verification_rolls_back_and_escalates(wrong_fix_settings):
    demo = Demo(wrong_fix_settings, DemoPlan(seed=3))
    try:
        demo.run_for(10, humans=False)
        demo.inject("bad_deploy")
        assert run_until(
            demo,
            lambda: any(e.status in ("rolled_back", "failed") for e in executions(demo)),
            minutes=60,
        )
        execution = executions(demo)[0]
        assert execution.status == "rolled_back" and execution.verified is False
        phases = [st.phase for st in execution.steps]
        assert phases == ["step", "verify", "rollback"]
        assert "execution.escalated" in actions(demo)
        escalated = rows(demo, select(Escalation.subject))
        assert f"execution:{execution.id}" in escalated  # a person is paged, not just logged
        assert demo.estate.active_faults()  # the wrong fix did not fix it
    finally:
        demo.close()


def test_two_deliveries_of_one_execution_run_it_once(demo):
    import threading

    from baton.act.worker import run_execution

    calls = []
    original = demo.target.remediate

    def counting(action, service, **params):
        calls.append(action)
        return original(action, service, **params)

    demo.target.remediate = counting
    execution, _ = queue(demo.platform, "scale-out", "catalog-api")
    ctx = demo.platform.dispatch.action_context()
    threads = [
        threading.Thread(
            target=run_execution, args=(demo.platform.db, execution.id, ctx, demo.clock.now)
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["scale_out"]


def test_pending_approval_cannot_be_used_while_paused(demo):
    demo.run_for(10, humans=False)
    demo.inject("bad_deploy")
    assert run_until(demo, lambda: pending(demo), minutes=60)
    with demo.platform.db.session() as s:
        pause(
            s, "service", "checkout-api", Actor("lead", "human"), "investigating", demo.clock.now()
        )
    with pytest.raises(ApprovalError, match=r"paused \(service:checkout-api\)"):
        demo.platform.commands.approve(pending(demo)[0].id, Actor("alice", "human"), "go")
    assert executions(demo) == []


def test_restart_interrupts_a_run_caught_in_a_step_that_is_not_idempotent(settings, clock):
    from baton.runtime.platform import Platform

    p = Platform(settings, clock).start()
    execution, _ = queue(p, "scale-out", "catalog-api", status="running")  # died mid-step
    with p.db.session() as s:
        s.add(
            ExecutionStep(
                execution_id=execution.id,
                seq=1,
                phase="step",
                name="Add a replica to catalog-api",
                action="sandbox",
                status="running",
                rendered={},
                started_at=clock.now(),
            )
        )
        s.get(Execution, execution.id).heartbeat_at = clock.now()
    p.close()
    again = Platform(settings, clock).start()
    try:
        again.backend.drain(5)
        with again.db.session() as s:
            row = s.get(Execution, execution.id)
            step_states = [st.status for st in row.steps]
            escalated = s.scalars(
                select(AuditRecord).where(
                    AuditRecord.subject == f"execution:{execution.id}",
                    AuditRecord.action == "execution.escalated",
                )
            ).all()
        if again.db.is_sqlite:  # embedded: nothing else can be running it
            assert row.status == "interrupted" and escalated
            assert step_states == ["interrupted"]
        else:
            assert row.status == "running"  # another replica may own it until its lease ends
    finally:
        again.close()
