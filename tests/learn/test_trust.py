"""The trust ledger on recorded histories whose right answer is known."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from baton.kernel.audit import Actor
from baton.kernel.errors import Refused
from baton.learn import shadow, trust
from baton.store.models import AuditRecord
from tests.learn.history import record

LEAD = Actor("lee", "human")
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL: the first


def ledger_of(platform):
    with platform.db.session() as s:
        return trust.ledger(s, platform.config.policy)


def test_wilson_lower_bound_weighs_the_sample():
    assert trust.wilson_lower(0, 0) == 0.0
    assert round(trust.wilson_lower(40, 40), 3) == 0.912
    assert trust.wilson_lower(5, 5) < trust.wilson_lower(40, 40) < 1
    assert trust.wilson_lower(36, 40) < trust.wilson_lower(40, 40)


def test_forty_verified_agreements_earn_a_promotion_a_lead_accepts(platform):
    for _ in range(40):
        record(platform, "rollback-deploy")
    [row] = [r for r in ledger_of(platform) if r["scope"] == "env:prod"]
    assert (row["proposals"], row["judged"], row["verified_agreed"]) == (40, 40, 40)
    assert row["agreement_rate"] == 1.0 and row["wilson_lower"] == 0.912

    [move] = platform.commands.review_trust()
    assert (move["kind"], move["status"], move["from_tier"], move["to_tier"]) == (
        "promote",
        "recommended",
        "approve",
        "auto",
    )
    assert move["evidence"]["verified_agreed"] == 40
    assert platform.commands.review_trust() == []  # one open recommendation at a time
    assert platform.config.policy.ceiling("rollback-deploy", "prod", "approve")[0].label == (
        "approve"
    )  # nothing changes before a lead decides

    done = platform.commands.decide_promotion(move["id"], True, LEAD, "the record speaks")
    assert done["status"] == "accepted" and done["decided_by"] == "lee"
    chosen = platform.config.policy.runbooks["rollback-deploy"]
    assert chosen.autonomy["prod"] == "auto"
    [change] = chosen.changes
    assert (change.kind, change.by, change.to_tier, change.move) == ("promote", "lee", "auto", 1)
    assert "Wilson lower bound 0.912" in change.reason and change.at == platform.clock.now()
    assert "changes:" in (platform.settings.runbooks_dir / "policy.yaml").read_text()
    with platform.db.session() as s:
        accepted = s.scalar(select(AuditRecord).where(AuditRecord.action == "trust.accepted"))
        assert accepted.actor == "lee" and accepted.inputs["evidence"]["judged"] == 40
    with pytest.raises(Refused):
        platform.commands.decide_promotion(move["id"], False, LEAD, "too late")


@SQLITE
def test_a_small_or_mixed_record_earns_nothing_and_a_decline_is_kept(platform):
    for _ in range(30):  # 30 of 30: Wilson 0.886, under the 0.9 bar
        record(platform, "rollback-deploy")
    assert platform.commands.review_trust() == []
    for _ in range(10):
        record(platform, "rollback-deploy")
    [move] = platform.commands.review_trust()
    declined = platform.commands.decide_promotion(move["id"], False, LEAD, "release freeze soon")
    assert declined["status"] == "declined"
    assert "rollback-deploy" not in platform.config.policy.runbooks
    assert platform.commands.review_trust() == []  # evidence restarts after the decline
    with pytest.raises(Refused):
        platform.commands.decide_promotion(move["id"], True, Actor("bot", "ai"), "x")


@SQLITE
def test_three_recent_failures_demote_at_once(platform):
    for _ in range(5):
        record(platform, "restart-service", tier="auto", approval=None)
    for _ in range(3):
        record(platform, "restart-service", tier="auto", approval=None, status="failed")
    [move] = platform.commands.review_trust()
    assert (move["kind"], move["status"], move["from_tier"], move["to_tier"]) == (
        "demote",
        "applied",
        "auto",
        "approve",
    )
    assert "3 failed runs in a row" in move["reason"]
    chosen = platform.config.policy.runbooks["restart-service"]
    assert chosen.autonomy["prod"] == "approve" and chosen.changes[0].kind == "demote"
    assert chosen.changes[0].by == "baton.learn"
    assert platform.commands.review_trust() == []  # the same streak demotes once


@SQLITE
def test_an_override_spike_demotes(platform):
    for i in range(10):
        vetoed = ("veto", "wrong_fix") if i % 2 else None
        status = "vetoed" if vetoed else "succeeded"
        record(platform, "scale-out", tier="auto", approval=None, status=status, override=vetoed)
    [move] = platform.commands.review_trust()
    assert move["kind"] == "demote" and "5 of the last 10" in move["reason"]
    [row] = [r for r in ledger_of(platform) if r["scope"] == "env:prod"]
    assert row["overrides"] == {"wrong_fix": 5} and row["agreed"] == 5


@SQLITE
def test_shadow_mode_compares_what_a_person_then_did(platform):
    same = record(platform, "restart-service", tier="observe", approval=None, status=None)
    record(
        platform,
        "restart-service",
        tier="auto",
        approval=None,
        proposer="tia",
        incident=same["incident"],
    )
    other = record(platform, "scale-out", tier="recommend", approval=None, status=None)
    record(
        platform,
        "restart-service",
        tier="auto",
        approval=None,
        proposer="tia",
        incident=other["incident"],
        status="failed",
        verified=False,
    )
    record(platform, "scale-out", tier="observe", approval=None, status=None)  # nobody acted
    with platform.db.session() as s:
        found = {c["proposal"]: c for c in shadow.comparisons(s)}
        assert shadow.record_comparisons(s, platform.clock.now()) == 2
        assert shadow.record_comparisons(s, platform.clock.now()) == 0
    assert set(found) == {same["proposal"], other["proposal"]}
    agreed, differed = found[same["proposal"]], found[other["proposal"]]
    assert agreed["same_runbook"] and agreed["same_params"] and agreed["would_have_worked"]
    assert not differed["same_runbook"] and not differed["would_have_worked"]
    rows = {(r["runbook"], r["scope"]): r for r in ledger_of(platform)}
    assert rows[("restart-service", "env:prod")]["verified_agreed"] == 1
    assert rows[("scale-out", "env:prod")]["overrides"] == {"different_fix": 1}
    assert rows[("scale-out", "env:prod")]["judged"] == 1  # the untouched one is not judged


@SQLITE
def test_the_heartbeat_reviews_the_ledger_every_quarter_hour(platform):
    from datetime import timedelta

    for _ in range(3):
        record(platform, "restart-service", tier="auto", approval=None, status="failed")
    assert platform.scheduler.tick().results["trust ledger"] == 1  # the demotion
    platform.clock.advance(timedelta(minutes=5))
    assert platform.scheduler.tick().results["trust ledger"] is None  # not due yet
    platform.clock.advance(timedelta(minutes=11))
    assert platform.scheduler.tick().results["trust ledger"] == 0
    assert platform.config.policy.runbooks["restart-service"].autonomy["prod"] == "approve"


def tier_for(platform, runbook, service, origin=None):
    from baton.govern.flows import decide_tier

    rb = next(r for r in platform.config.catalogue if r.id == runbook)
    with platform.db.session() as s:
        decided, _ = decide_tier(
            s,
            rb,
            confidence=1.0,
            service=service,
            env="prod",
            policy=platform.config.policy,
            at=platform.clock.now(),
            origin=origin,
        )
    return decided


@SQLITE
def test_a_service_earns_its_own_tier_and_a_streak_on_one_service_demotes_only_it(platform):
    for _ in range(40):
        record(platform, "rollback-deploy", "web")
    for _ in range(10):  # people rejected every one on api: its own spike, not prod's
        record(platform, "rollback-deploy", "api", approval="rejected", status=None)
    rows = {r["scope"]: r for r in ledger_of(platform) if r["runbook"] == "rollback-deploy"}
    assert rows["env:prod"]["wilson_lower"] < 0.9  # prod as a whole does not clear the bar
    moves = {m["scope"]: m for m in platform.commands.review_trust()}
    assert set(moves) == {"service:web", "service:api"}
    assert (moves["service:api"]["kind"], moves["service:api"]["to_tier"]) == (
        "demote",
        "recommend",
    )
    assert (moves["service:web"]["kind"], moves["service:web"]["status"]) == (
        "promote",
        "recommended",
    )
    chosen = platform.config.policy.runbooks["rollback-deploy"]
    assert chosen.services == {"api": "recommend"} and not chosen.autonomy

    platform.commands.decide_promotion(moves["service:web"]["id"], True, LEAD, "web's record")
    chosen = platform.config.policy.runbooks["rollback-deploy"]
    assert chosen.services == {"api": "recommend", "web": "auto"} and not chosen.autonomy
    assert [(c.scope, c.kind, c.by) for c in chosen.changes] == [
        ("service:api", "demote", "baton.learn"),
        ("service:web", "promote", "lee"),
    ]
    assert chosen.changes[1].at == platform.clock.now() and "40 of 40" in chosen.changes[1].reason
    text = (platform.settings.runbooks_dir / "policy.yaml").read_text()
    assert "services:" in text and "scope: service:web" in text

    web, api, db = (tier_for(platform, "rollback-deploy", s) for s in ("web", "api", "db"))
    assert (web.tier.label, api.tier.label, db.tier.label) == ("auto", "recommend", "approve")
    assert "policy for service api" in api.reasons[0]
    from baton.govern.flows import standing_tiers

    with platform.db.session() as s:
        shown = standing_tiers(
            s,
            platform.config.catalogue,
            ["prod"],
            platform.config.policy,
            platform.clock.now(),
            platform.dispatch.targets,
        )
    mine = {(r["env"], r["service"]) for r in shown if r["runbook"] == "rollback-deploy"}
    assert mine == {("prod", None), ("prod", "api"), ("prod", "web")}
    # a run named for web on an incident that started on api keeps api's lower ceiling
    assert tier_for(platform, "rollback-deploy", "web", origin="api").tier.label == "recommend"
    platform.config.apply_policy(
        platform.config.policy.model_dump(mode="json", exclude_defaults=True)
        | {"environments": {"prod": "approve"}},
        LEAD,
    )  # an environment cap still holds over a service's own ceiling
    assert tier_for(platform, "rollback-deploy", "web").tier.label == "approve"


@SQLITE
def test_an_environment_demotion_lowers_the_services_above_it(platform):
    for _ in range(40):
        record(platform, "rollback-deploy", "web")
    record(platform, "rollback-deploy", "api", approval="rejected", status=None)
    [move] = platform.commands.review_trust()
    assert move["scope"] == "service:web"  # 40 of 41 in prod as a whole: 0.87, under 0.9
    platform.commands.decide_promotion(move["id"], True, LEAD, "web's record")
    for service in ("web", "api", "web", "api"):  # the streak is prod's, no one service's
        record(platform, "rollback-deploy", service, status="failed", verified=False)
    [move] = platform.commands.review_trust()
    assert (move["scope"], move["kind"], move["from_tier"], move["to_tier"]) == (
        "env:prod",
        "demote",
        "approve",
        "recommend",
    )
    chosen = platform.config.policy.runbooks["rollback-deploy"]
    assert chosen.autonomy == {"prod": "recommend"} and chosen.services == {"web": "recommend"}
    lowered = chosen.changes[-1]
    assert lowered.scope == "service:web" and lowered.from_tier == "auto"
    assert lowered.reason.startswith("lowered with env:prod: ")
    assert tier_for(platform, "rollback-deploy", "web").tier.label == "recommend"


def test_a_service_ceiling_is_kept_apart_from_the_environments():
    from baton.govern.config import AutonomyChange, PolicyConfig

    change = AutonomyChange(
        kind="promote",
        scope="service:web",
        from_tier="approve",
        to_tier="auto",
        reason="r",
        at="2026-03-02T15:00:00Z",
        by="lee",
    )
    data = PolicyConfig().with_autonomy("rollback-deploy", "service:web", change)
    policy = PolicyConfig.model_validate(data)
    assert policy.ceiling("rollback-deploy", "prod", "approve", "web")[0].label == "auto"
    assert policy.ceiling("rollback-deploy", "prod", "approve", "api")[0].label == "approve"
    with pytest.raises(Exception, match="expected env"):
        PolicyConfig().with_autonomy("rollback-deploy", "web", change)
