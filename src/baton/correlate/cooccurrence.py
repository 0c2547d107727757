"""Learned co-occurrence: which services' alerts belong together on this estate, learned
from people's corrections and from the incidents that were left as they were.

Evidence, each piece weighted and decaying with its age (half-life `learn.half_life_days`,
weight x 0.5 ** (age / half-life); nothing older than HORIZON half-lives is read):

- a person merging incidents: every pair of a service of the target and a service of a
  merged incident gains `learn.feedback_weight` (1.0): they were one trouble;
- a person splitting alerts out: every pair of a service split out and a service left
  behind loses `learn.feedback_weight`: they were not;
- an incident that resolved and was never split: every pair of its services gains
  `learn.history_weight` (0.25): weak, since it is the correlator's own judgement, so it
  takes several such incidents to matter.

The grouper uses the weight of a pair as one more feature: at LINK_WEIGHT or more, an
alert links to an incident holding the other service when their troubles began within
SHARED_LAG of each other ("learned", explained with the evidence); at VETO_WEIGHT or less
it never joins an incident holding the other service by the graph alone. Reads are
bounded (MAX_ROWS of each kind, newest first), so learning costs the same per batch at
any scale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.enums import IncidentStatus
from baton.store.models import CorrelationFeedback, Incident

LINK_WEIGHT = 1.0  # learned weight at which two services' alerts link on their own
VETO_WEIGHT = -1.0  # learned weight at which the graph may no longer join them
HORIZON = 8  # half-lives of evidence read
MAX_ROWS = 500  # corrections and incidents read, newest first
MAX_SERVICES = 12  # services of one incident taken into pairs


class LearnSettings(BaseModel):
    """correlation.yaml `learn:` — how co-occurrence is learned."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    half_life_days: float = Field(default=14.0, gt=0, le=3650)
    feedback_weight: float = Field(default=1.0, ge=0, le=10)
    history_weight: float = Field(default=0.25, ge=0, le=10)


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


@dataclass
class Learned:
    """Pair weights and the evidence behind them (for the explanation)."""

    weights: dict[tuple[str, str], float] = field(default_factory=dict)
    evidence: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def add(self, a: str, b: str, weight: float, kind: str) -> None:
        if a == b or not a or not b:
            return
        key = _pair(a, b)
        self.weights[key] = self.weights.get(key, 0.0) + weight
        seen = self.evidence.setdefault(key, {})
        seen[kind] = seen.get(kind, 0) + 1

    def weight(self, a: str, b: str) -> float:
        return self.weights.get(_pair(a, b), 0.0)

    def partners(self, name: str, at_least: float) -> set[str]:
        """Services whose weight with `name` is `at_least` or more."""
        return {
            b if a == name else a
            for (a, b), w in self.weights.items()
            if name in (a, b) and w >= at_least
        }

    def explain(self, a: str, b: str) -> str:
        seen = self.evidence.get(_pair(a, b), {})
        parts = [f"{n} {kind}" for kind, n in sorted(seen.items())]
        return f"{a} and {b}: {', '.join(parts)} (weight {self.weight(a, b):.2f} after decay)"


def _services(snapshot: dict[str, Any]) -> set[str]:
    """The services of an incident as a correction's snapshot recorded it."""
    events = snapshot.get("events", [])
    return {str(e["service"]) for e in events if isinstance(e, dict) and e.get("service")}


def _pairs(left: Iterable[str], right: Iterable[str]) -> Iterable[tuple[str, str]]:
    rights = sorted(set(right))
    return ((a, b) for a in sorted(set(left)) for b in rights if a != b)


def learn(session: Session, now: datetime, settings: LearnSettings) -> Learned:
    """The pair weights as of `now`."""
    out = Learned()
    if not settings.enabled:
        return out
    half_life = timedelta(days=settings.half_life_days)
    since = now - half_life * HORIZON

    def decay(at: datetime) -> float:
        return 0.5 ** (max(0.0, (now - at) / half_life))

    split: set[int] = set()
    rows = session.scalars(
        select(CorrelationFeedback)
        .where(CorrelationFeedback.created_at >= since, CorrelationFeedback.kind != "origin")
        .order_by(CorrelationFeedback.id.desc())
        .limit(MAX_ROWS)
    )
    for row in rows:
        w = settings.feedback_weight * decay(row.created_at)
        if row.kind == "merge":
            target = _services(row.before.get("incident", {}))
            for merged in row.before.get("merged", []):
                for a, b in _pairs(target, _services(merged)):
                    out.add(a, b, w, "merges")
        elif row.kind == "split":
            split |= {row.incident_id, row.other_incident_id or 0}
            left = _services(row.after.get("incident", {}))
            for a, b in _pairs(_services(row.after.get("other", {})), left):
                out.add(a, b, -w, "splits")
    if settings.history_weight > 0:
        history = session.execute(
            select(Incident.id, Incident.services, Incident.resolved_at)
            .where(Incident.status == IncidentStatus.RESOLVED, Incident.resolved_at >= since)
            .order_by(Incident.resolved_at.desc())
            .limit(MAX_ROWS)
        )
        for incident_id, services, resolved in history:
            if incident_id in split or not resolved:
                continue
            w = settings.history_weight * decay(resolved)
            names = sorted({str(s) for s in services or []})[:MAX_SERVICES]
            for a, b in combinations(names, 2):
                out.add(a, b, w, "incidents together")
    return out
