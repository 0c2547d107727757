"""Properties of `decide()`: the autonomy policy a human can rely on."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from baton.govern.policy import PolicyInputs, Tier, decide

tiers = st.sampled_from(list(Tier))
inputs = st.builds(
    PolicyInputs,
    runbook_ceiling=tiers,
    confidence=st.floats(0, 1),
    recommend_below=st.floats(0, 1),
    observe_below=st.floats(0, 1),
    service_cap=tiers,
    has_owner=st.booleans(),
    frozen=st.booleans(),
    paused=st.sampled_from([None, "all", "runbook:x", "service:y"]),
    breaker_open=st.booleans(),
)


@given(inputs)
def test_never_above_ceiling_or_cap(p):
    decided = decide(p)
    assert decided.tier <= p.runbook_ceiling
    assert decided.tier <= p.service_cap
    assert decided.reasons


@given(inputs)
def test_kill_switch_freeze_and_breaker_always_win(p):
    for forced in (
        replace(p, paused="all"),
        replace(p, frozen=True),
        replace(p, breaker_open=True),
    ):
        assert decide(forced).tier == Tier.OBSERVE


@given(inputs)
def test_no_owner_means_at_most_recommend(p):
    assert decide(replace(p, has_owner=False)).tier <= Tier.RECOMMEND


@given(inputs, st.data())
def test_lowering_any_input_never_raises_the_tier(p, data):
    base = decide(p).tier
    lower_tier = data.draw(st.sampled_from([t for t in Tier if t <= p.runbook_ceiling]))
    lower_cap = data.draw(st.sampled_from([t for t in Tier if t <= p.service_cap]))
    lower_conf = data.draw(st.floats(0, p.confidence))
    for worse in (
        replace(p, runbook_ceiling=lower_tier),
        replace(p, service_cap=lower_cap),
        replace(p, confidence=lower_conf),
        replace(p, has_owner=False),
    ):
        assert decide(worse).tier <= base


def test_reasons_name_the_binding_limit():
    decided = decide(
        PolicyInputs(
            runbook_ceiling=Tier.AUTO, confidence=0.5, recommend_below=0.6, observe_below=0.3
        )
    )
    assert decided.tier == Tier.RECOMMEND
    assert any("confidence 0.50 < recommend gate" in r for r in decided.reasons)
    auto = decide(PolicyInputs(runbook_ceiling=Tier.AUTO, confidence=0.9))
    assert auto.tier == Tier.AUTO and auto.reasons == ("every limit allows auto",)


def test_freeze_window_without_zone_means_utc(tmp_path):
    from datetime import UTC, datetime

    from baton.govern.config import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text(
        "freeze:\n  - start: 2026-12-20 00:00:00\n    end: 2027-01-03 00:00:00\n"
        "    reason: year end\n"
    )
    policy = load_policy(path)
    assert policy.frozen("web", datetime(2026, 12, 24, tzinfo=UTC)).reason == "year end"
    assert policy.frozen("web", datetime(2027, 1, 5, tzinfo=UTC)) is None


def test_invalid_policy_names_the_field(tmp_path):
    import pytest

    from baton.govern.config import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text("services:\n  web: yolo\n")
    with pytest.raises(ValueError, match="services"):
        load_policy(path)


def test_ticket_keywords_match_whole_words():
    from baton.servicedesk.tickets import classify

    assert classify("Printer", "it goes through the tray")[0] == "other"
    assert classify("HR portal down", "")[0] == "application"
