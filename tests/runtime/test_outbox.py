"""The durable outbox: escalation messages are written with the escalation, delivered
after commit with retries and back-off, and survive a crash between commit and delivery."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from baton.govern import escalation, oncall
from baton.kernel.audit import Actor
from baton.runtime import outbox
from baton.store.models import AuditRecord, Escalation, OutboxMessage

ROOT = Path(__file__).resolve().parents[2]
ALICE = Actor("alice", "human")


@pytest.fixture
def paged(platform, http_peer, monkeypatch):
    """A platform whose escalations page `webhook:pager`, a recording HTTP peer."""
    base, received = http_peer
    monkeypatch.setenv("BATON_CHANNEL_PAGER", f"{base}/hook")
    with platform.db.session() as s:
        oncall.put_escalation_policy(
            s,
            oncall.EscalationPolicyIn(
                service="*", levels=[oncall.LevelIn(targets=["ana"], channels=["webhook:pager"])]
            ),
            ALICE,
            platform.clock.now(),
        )
    return platform, received, monkeypatch, base


def _escalate(platform, subject="incident:1"):
    with platform.db.session() as s:
        escalation.escalate(s, subject, "web", "nobody acknowledged", platform.clock.now())


def _messages(platform):
    with platform.db.session() as s:
        return [(m.key, m.status, m.attempts) for m in s.scalars(select(OutboxMessage))]


def test_the_message_commits_or_rolls_back_with_its_escalation(paged):
    platform, received, _, _ = paged
    with pytest.raises(RuntimeError), platform.db.session() as s:
        escalation.escalate(s, "incident:9", "web", "why", platform.clock.now())
        raise RuntimeError("the change fails after the escalation was written")
    assert _messages(platform) == []
    _escalate(platform)
    [(key, status, attempts)] = _messages(platform)
    assert key.startswith("escalation:") and key.endswith(":level:1:webhook:pager")
    assert (status, attempts) == ("pending", 0) and received == []
    assert platform.dispatch.deliver_outbox() == 1
    assert [(path, body["idempotency_key"]) for path, _, body in received] == [("/hook", key)]
    assert _messages(platform) == [(key, "delivered", 1)]
    assert platform.dispatch.deliver_outbox() == 0  # delivered once, not again


def test_a_sigkill_between_commit_and_delivery_loses_nothing(paged):
    platform, received, _, _ = paged
    script = textwrap.dedent(
        f"""
        import os, signal
        from baton.govern import escalation
        from baton.store.db import Database
        from datetime import datetime
        at = datetime.fromisoformat({platform.clock.now().isoformat()!r})
        db = Database({platform.settings.database_url!r})
        with db.session() as s:
            escalation.escalate(s, "incident:7", "web", "crash test", at)
        os.kill(os.getpid(), signal.SIGKILL)  # committed; delivery never starts
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60)
    assert done.returncode == -9
    with platform.db.session() as s:
        assert s.scalar(select(Escalation.subject)) == "incident:7"
    assert received == [] and outbox.backlog(platform.db) == 1
    platform.clock.advance(timedelta(seconds=1))
    assert platform.scheduler.tick().results["outbox"] == 1  # the next process delivers it
    assert [body["text"] for _, _, body in received] == [received[0][2]["text"]]
    assert "crash test" in received[0][2]["text"] and outbox.backlog(platform.db) == 0


def test_failures_are_retried_with_back_off_and_audited(paged):
    platform, received, monkeypatch, base = paged
    monkeypatch.setenv("BATON_CHANNEL_PAGER", f"{base}/fail")
    _escalate(platform)
    clock = platform.clock
    assert platform.dispatch.deliver_outbox() == 0  # attempt 1 fails: retry in 5 s
    clock.advance(timedelta(seconds=4))
    assert platform.dispatch.deliver_outbox() == 0 and len(received) == 1  # not yet due
    clock.advance(timedelta(seconds=1))
    assert platform.dispatch.deliver_outbox() == 0 and len(received) == 2  # attempt 2
    monkeypatch.setenv("BATON_CHANNEL_PAGER", f"{base}/hook")  # the receiver is back
    clock.advance(timedelta(seconds=outbox.backoff(2)))
    assert platform.dispatch.deliver_outbox() == 1
    keys = {body["idempotency_key"] for _, _, body in received}
    assert len(received) == 3 and len(keys) == 1  # the same key on every attempt
    assert [status for _, status, _ in _messages(platform)] == ["delivered"]
    with platform.db.session() as s:
        decisions = s.scalars(
            select(AuditRecord.decision)
            .where(AuditRecord.action == "escalation.delivery")
            .order_by(AuditRecord.seq)
        ).all()
    assert decisions == ["retry", "retry", "delivered"]


def test_a_deliverer_that_dies_after_sending_is_repeated_after_its_lease(paged):
    platform, received, _, _ = paged
    _escalate(platform)
    [item] = outbox.claim(platform.db, platform.clock.now())
    outbox.attempt(platform.settings, item, outbox.send)  # sent; dies before settling
    assert len(received) == 1
    assert outbox.claim(platform.db, platform.clock.now()) == []  # nobody else takes it
    platform.clock.advance(timedelta(seconds=outbox.LEASE_S))
    [again] = outbox.claim(platform.db, platform.clock.now())
    assert (again.key, again.attempt) == (item.key, 2)  # at least once, same key


def test_it_gives_up_after_max_attempts_and_keeps_the_message(paged):
    platform, _, monkeypatch, base = paged
    monkeypatch.setenv("BATON_CHANNEL_PAGER", f"{base}/fail")
    _escalate(platform)
    for _ in range(outbox.MAX_ATTEMPTS):
        platform.dispatch.deliver_outbox()
        platform.clock.advance(timedelta(seconds=max(outbox.BACKOFF_S)))
    [(_, status, attempts)] = _messages(platform)
    assert (status, attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert platform.dispatch.deliver_outbox() == 0
