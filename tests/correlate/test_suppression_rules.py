"""Matchers, inhibition, recurring maintenance windows and the correlation config:
the pure rules suppression is built from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baton.correlate.config import InhibitRule, parse_config
from baton.correlate.inhibition import Firing, inhibited_by
from baton.correlate.matchers import match_all, parse
from baton.correlate.silences import MaintenanceIn, occurrence_at
from baton.store.models import MaintenanceWindow


@pytest.mark.parametrize(
    ("text", "labels", "hit"),
    [
        ('service="db"', {"service": "db"}, True),
        ('service="db"', {"service": "db-2"}, False),
        ('service!="db"', {"service": "web"}, True),
        ('service!="db"', {}, True),  # a missing label reads as ""
        ('team=""', {}, True),
        ('alertname=~"High.*"', {"alertname": "HighLatency"}, True),
        ('alertname=~"High"', {"alertname": "HighLatency"}, False),  # anchored
        ('alertname!~"High.*"', {"alertname": "ServiceDown"}, True),
        ('alertname!~"High.*"', {"alertname": "HighCPU"}, False),
        ('team=~".*"', {}, True),
        ('team=~".+"', {}, False),
        ("service=db", {"service": "db"}, True),  # unquoted values are accepted
        ('summary="say \\"hi\\""', {"summary": 'say "hi"'}, True),
    ],
)
def test_matcher_semantics(text, labels, hit):
    assert parse(text).matches(labels) is hit


@pytest.mark.parametrize("bad", ["service", 'service=="db"', '1x="a"', 're=~"("', ""])
def test_bad_matchers_are_refused_with_a_reason(bad):
    with pytest.raises(ValueError, match=r"matcher|regular expression"):
        parse(bad)


@given(st.text(alphabet="abcxyz-", max_size=8), st.text(alphabet="abcxyz-", max_size=8))
def test_equal_and_not_equal_are_opposites(value, actual):
    labels = {"k": actual}
    assert parse(f'k="{value}"').matches(labels) != parse(f'k!="{value}"').matches(labels)
    assert parse(f'k=~"{value}"').matches(labels) != parse(f'k!~"{value}"').matches(labels)


def test_all_matchers_must_match():
    ms = [parse('service="db"'), parse('severity=~"critical|error"')]
    assert match_all(ms, {"service": "db", "severity": "critical"})
    assert not match_all(ms, {"service": "db", "severity": "warning"})
    assert match_all([], {"anything": "x"})


RULE = InhibitRule(
    name="down-masks-symptoms",
    source_matchers=('alertname="ServiceDown"',),
    target_matchers=('alertname=~"HighErrorRate|HighLatency"',),
    equal=("service",),
)


def alert(fp: str, **labels: str) -> Firing:
    return Firing(fp, labels)


def test_inhibition_needs_a_firing_source_with_equal_labels():
    target = alert("t", alertname="HighErrorRate", service="db")
    assert inhibited_by(target, [alert("s", alertname="ServiceDown", service="db")], [RULE])
    # the source is on another service: `equal` does not hold
    assert not inhibited_by(target, [alert("s", alertname="ServiceDown", service="web")], [RULE])
    # no firing source at all (the caller passes only firing alerts)
    assert not inhibited_by(target, [], [RULE])
    # the target side does not match
    other = alert("o", alertname="DiskAlmostFull", service="db")
    assert not inhibited_by(other, [alert("s", alertname="ServiceDown", service="db")], [RULE])


def test_equal_label_missing_on_both_sides_counts_as_equal():
    rule = RULE.model_copy(update={"equal": ("cluster",)})
    target = alert("t", alertname="HighLatency", service="db")
    assert inhibited_by(target, [alert("s", alertname="ServiceDown", service="web")], [rule])
    tagged = alert("s", alertname="ServiceDown", service="web", cluster="eu")
    assert not inhibited_by(target, [tagged], [rule])


def test_alerts_matching_both_sides_cannot_inhibit_each_other():
    both = InhibitRule(
        name="any-critical-masks-warnings",
        source_matchers=('severity=~"critical|warning"',),
        target_matchers=('severity=~"critical|warning"',),
        equal=("service",),
    )
    a = alert("a", severity="critical", service="db")
    b = alert("b", severity="warning", service="db")
    assert not inhibited_by(a, [a, b], [both])
    assert not inhibited_by(b, [a, b], [both])


def test_an_alert_never_inhibits_itself():
    rule = RULE.model_copy(
        update={"source_matchers": ('service="db"',), "target_matchers": ('service="db"',)}
    )
    me = alert("x", alertname="HighLatency", service="db")
    assert not inhibited_by(me, [me], [rule])


def window(rrule: str | None, start: datetime, hours: float, zone: str) -> MaintenanceWindow:
    data = MaintenanceIn(
        name="patching",
        matchers=['host="db-01"'],
        starts_at=start,
        duration_s=int(hours * 3600),
        rrule=rrule,
        timezone=zone,
        comment="weekly",
    )
    return MaintenanceWindow(
        name=data.name,
        matchers=data.matchers,
        starts_at=data.starts_at,
        duration_s=data.duration_s,
        rrule=data.rrule,
        timezone=data.timezone,
        until=None,
    )


def test_weekly_window_keeps_its_local_hour_across_dst():
    # Saturdays 22:00-00:00 Berlin time; first one in winter (CET = UTC+1).
    first = datetime(2026, 1, 3, 21, 0, tzinfo=UTC)
    w = window("FREQ=WEEKLY;BYDAY=SA", first, 2, "Europe/Berlin")
    assert occurrence_at(w, datetime(2026, 3, 21, 21, 30, tzinfo=UTC))  # 22:30 CET
    assert not occurrence_at(w, datetime(2026, 3, 21, 20, 30, tzinfo=UTC))  # 21:30 CET
    # After the change on 29 March 22:00 Berlin is 20:00 UTC (CEST = UTC+2).
    assert occurrence_at(w, datetime(2026, 4, 4, 20, 30, tzinfo=UTC))
    assert not occurrence_at(w, datetime(2026, 4, 4, 22, 30, tzinfo=UTC))  # 00:30 CEST
    # and back in autumn (25 October): 22:00 Berlin = 21:00 UTC again
    assert occurrence_at(w, datetime(2026, 10, 31, 21, 5, tzinfo=UTC))
    assert not occurrence_at(w, datetime(2026, 10, 31, 20, 5, tzinfo=UTC))
    # not on other days, nor before it first started
    assert not occurrence_at(w, datetime(2026, 4, 5, 20, 30, tzinfo=UTC))
    assert not occurrence_at(w, first - timedelta(days=7))


def test_window_that_crosses_midnight_and_one_off_window():
    w = window("FREQ=DAILY", datetime(2026, 5, 1, 21, 0, tzinfo=UTC), 4, "UTC")
    assert occurrence_at(w, datetime(2026, 5, 3, 0, 30, tzinfo=UTC))
    once = window(None, datetime(2026, 5, 1, 21, 0, tzinfo=UTC), 1, "UTC")
    assert occurrence_at(once, datetime(2026, 5, 1, 21, 59, tzinfo=UTC))
    assert not occurrence_at(once, datetime(2026, 5, 2, 21, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"matchers": ["nope"]}, "matcher"),
        ({"duration_s": 5}, "duration_s"),
    ],
)
def test_bad_windows_are_refused_naming_the_field(changes, field):
    base = {
        "name": "w",
        "matchers": ['host="a"'],
        "starts_at": "2026-05-01T21:00:00Z",
        "duration_s": 3600,
        "comment": "c",
    }
    with pytest.raises(ValueError, match=field):
        MaintenanceIn.model_validate(base | changes)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"inhibit_rules\.0\.source_matchers"):
        parse_config(
            {
                "inhibit_rules": [
                    {"name": "x", "source_matchers": ["bad"], "target_matchers": ['a="b"']}
                ]
            }
        )
    with pytest.raises(ValueError, match=r"services\.db\.transient_hold_s"):
        parse_config({"services": {"db": {"transient_hold_s": -1}}})
    with pytest.raises(ValueError, match="used twice"):
        rule = {"name": "x", "source_matchers": ['a="b"'], "target_matchers": ['a="c"']}
        parse_config({"inhibit_rules": [rule, rule]})
    with pytest.raises(ValueError, match=r"unknown_key|Extra inputs"):
        parse_config({"unknown_key": 1})


def test_hold_is_per_service_with_a_default():
    cfg = parse_config({"transient_hold_s": 60, "services": {"batch": {"transient_hold_s": 600}}})
    assert cfg.hold_for("batch") == timedelta(minutes=10)
    assert cfg.hold_for("web") == timedelta(minutes=1)
    assert cfg.hold_for(None) == timedelta(minutes=1)
