"""Inhibition with Alertmanager's semantics.

A target alert is inhibited while some *firing* source alert matches a rule's source
matchers, the target matches its target matchers, and both carry the same value for
every `equal` label (a label missing on both sides counts as equal). An alert never
inhibits itself, and when the target also matches the source side, sources that match
the target side are ignored, so two alerts cannot mute each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from baton.correlate.config import InhibitRule
from baton.correlate.matchers import match_all


@dataclass(frozen=True)
class Firing:
    """A firing alert as inhibition sees it."""

    fingerprint: str
    labels: Mapping[str, Any]


def inhibited_by(
    target: Firing, firing: Sequence[Firing], rules: Sequence[InhibitRule]
) -> tuple[InhibitRule, Firing] | None:
    """The first rule and source alert that inhibit `target`, or None."""
    for rule in rules:
        if not match_all(rule.targets, target.labels):
            continue
        target_is_source = match_all(rule.sources, target.labels)
        for source in firing:
            if source.fingerprint == target.fingerprint:
                continue
            if not match_all(rule.sources, source.labels):
                continue
            if target_is_source and match_all(rule.targets, source.labels):
                continue
            if all(
                str(source.labels.get(k, "")) == str(target.labels.get(k, "")) for k in rule.equal
            ):
                return rule, source
    return None
