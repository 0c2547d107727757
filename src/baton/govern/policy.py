"""The autonomy policy: how far a proposal may go on its own.

The effective tier is the lowest of every limit that applies; `decide` returns it with
the reasons of each limit that held it down, so a human can see exactly why.
"""

from __future__ import annotations

from dataclasses import dataclass

from baton.kernel.enums import Tier


@dataclass(frozen=True)
class PolicyInputs:
    """Everything that may limit a proposal's autonomy."""

    runbook_ceiling: Tier
    confidence: float
    recommend_below: float = 0.6
    observe_below: float = 0.3
    service_cap: Tier = Tier.AUTO
    has_owner: bool = True
    frozen: bool = False
    paused: str | None = None  # kill switch scope that applies, if any
    breaker_open: bool = False
    missing_target: str | None = None  # e.g. the runbook acts on a target not attached


@dataclass(frozen=True)
class TierDecision:
    tier: Tier
    reasons: tuple[str, ...]


def decide(p: PolicyInputs) -> TierDecision:
    """Effective tier = min over all limits; reasons list each limit below `auto`."""
    limits: list[tuple[Tier, str]] = [
        (p.runbook_ceiling, f"runbook ceiling is {p.runbook_ceiling.label}"),
        (p.service_cap, f"service/environment cap is {p.service_cap.label}"),
    ]
    if p.confidence < p.observe_below:
        limits.append(
            (Tier.OBSERVE, f"confidence {p.confidence:.2f} < observe gate {p.observe_below:.2f}")
        )
    elif p.confidence < p.recommend_below:
        limits.append(
            (
                Tier.RECOMMEND,
                f"confidence {p.confidence:.2f} < recommend gate {p.recommend_below:.2f}",
            )
        )
    if not p.has_owner:
        limits.append((Tier.RECOMMEND, "no accountable owner: at most recommend"))
    if p.frozen:
        limits.append((Tier.OBSERVE, "a freeze window is active"))
    if p.paused:
        limits.append((Tier.OBSERVE, f"automation paused ({p.paused})"))
    if p.breaker_open:
        limits.append((Tier.OBSERVE, "circuit breaker is open"))
    if p.missing_target:
        limits.append((Tier.OBSERVE, f"cannot act here: {p.missing_target}"))
    tier = min(t for t, _ in limits)
    reasons = tuple(why for t, why in limits if t == tier)
    if tier == Tier.AUTO:
        reasons = ("every limit allows auto",)
    return TierDecision(tier, reasons)
