"""Policy replay on a recorded history, and post-incident reviews."""

from __future__ import annotations

import pytest

from baton.govern.config import PolicyConfig
from baton.kernel.audit import Actor, append
from baton.kernel.errors import Refused
from baton.learn.replay import replay
from baton.learn.review import FollowUp, Lesson, ReviewIn
from tests.learn.history import record

LEAD = Actor("lee", "human")

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _decided(platform, rec, env="prod", confidence=0.9):
    """The decision.made record live decisions write (replay reads its inputs)."""
    with platform.db.session() as s:
        append(
            s,
            actor=Actor("baton.govern.policy", "system", "tiers/1"),
            action="decision.made",
            subject=f"proposal:{rec['proposal']}",
            at=platform.clock.now(),
            inputs={"env": env, "service": "web", "confidence": confidence, "owner": "team"},
            decision="approve",
        )


def test_replay_flags_a_candidate_that_would_have_auto_run_a_rolled_back_fix(platform):
    since = platform.clock.now()
    good = [record(platform, "rollback-deploy") for _ in range(3)]
    bad = record(
        platform, "rollback-deploy", status="rolled_back", override=("rollback", "wrong_fix")
    )
    for rec in [*good, bad]:
        _decided(platform, rec)
    catalogue = {rb.id: rb for rb in platform.config.catalogue}
    candidate = PolicyConfig.model_validate(
        {"runbooks": {"rollback-deploy": {"autonomy": {"prod": "auto"}}}}
    )
    with platform.db.session() as s:
        same = replay(s, platform.config.policy, catalogue, since)
        out = replay(s, candidate, catalogue, since)
    assert same["changed"] == 0 and same["flagged"] == []
    assert out["proposals"] == 4 and out["changed"] == 4 and out["more_autonomy"] == 4
    assert out["approvals"] == {"before": 4, "after": 0}
    assert out["auto"] == {"before": 0, "after": 4}
    [flag] = out["flagged"]
    assert flag["proposal"] == bad["proposal"] and flag["would_be"] == "auto"
    assert flag["went_wrong"] == "overridden (wrong_fix)"

    stricter = PolicyConfig.model_validate({"services": {"web": "observe"}})
    with platform.db.session() as s:
        blocked = replay(s, stricter, catalogue, since)
    assert blocked["blocked"] == {"before": 0, "after": 4} and blocked["flagged"] == []


def test_post_incident_review_timeline_and_a_lesson_a_lead_applies(platform):
    rec = record(platform, "restart-service", tier="auto", approval=None, status="failed")
    with platform.db.session() as s:
        for subject, action in (
            (f"incident:{rec['incident']}", "incident.opened"),
            (f"proposal:{rec['proposal']}", "decision.made"),
            (f"execution:{rec['execution']}", "execution.failed"),
            ("incident:999", "incident.opened"),  # another incident's story
        ):
            append(
                s,
                actor=Actor("baton.test", "system"),
                action=action,
                subject=subject,
                at=platform.clock.now(),
            )
    stricter = platform.config.policy.model_dump(mode="json")
    stricter["services"] = {**stricter["services"], "web": "approve"}
    body = ReviewIn(
        summary="restart did not help: the cause was a config push",
        factors=["config push without canary"],
        lessons=[Lesson(text="web restarts need a person", policy=stricter), Lesson(text="canary")],
        follow_ups=[FollowUp(task="add a canary stage", owner="team-web")],
    )
    tia = Actor("tia", "human")
    saved = platform.commands.save_review(rec["incident"], body, tia)
    actions = [e["action"] for e in saved["timeline"]]
    assert actions == ["incident.opened", "decision.made", "execution.failed", "review.saved"]
    assert saved["follow_ups"][0]["owner"] == "team-web"
    diff = platform.commands.lesson_change(rec["incident"], 0)["diff"]
    assert "+  web: approve" in diff
    assert platform.config.policy.services.get("web") is None  # nothing applied yet
    with pytest.raises(Refused):
        platform.commands.apply_lesson(rec["incident"], 1, LEAD)  # proposes no change
    platform.commands.apply_lesson(rec["incident"], 0, LEAD)
    assert platform.config.policy.services["web"] == "approve"
