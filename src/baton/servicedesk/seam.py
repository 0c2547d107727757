"""Where triage meets a new ticket: the one function every classifier goes through.

`apply_triage` takes, per field, what a model predicted (value, calibrated confidence,
its top three, model name and version). Above the field's threshold the value is set as
the model's own change — visible in the history, revertible, firing the same rules as a
person's change; below it, or when the model chose a value that does not exist or is
disabled, only the enabled candidates are kept as suggestions for a technician.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from baton.kernel.audit import Actor, append
from baton.servicedesk import lifecycle, options
from baton.store.models import Ticket

# the bar for classifiers that carry none of their own (the keyword classifier)
THRESHOLDS = {"category": 0.6, "priority": 0.6, "group": 0.6}


@dataclass(frozen=True)
class Prediction:
    value: str
    confidence: float
    model: str
    version: str
    top: list[tuple[str, float]] = field(default_factory=list)  # best first, up to 3
    # the model's own auto-apply bar (stored with a trained model); None: the desk default
    threshold: float | None = None


def apply_triage(
    session: Session,
    ticket: Ticket,
    predictions: dict[str, Prediction],
    at: datetime,
    thresholds: dict[str, float] | None = None,
) -> dict[str, str]:
    """Apply or suggest each field's prediction; returns field -> "applied"/"suggested"."""
    bars = {**THRESHOLDS, **(thresholds or {})}
    outcome: dict[str, str] = {}
    suggestions = dict(ticket.suggestions or {})
    for name, p in predictions.items():
        if name not in options.FIELDS:
            continue
        allowed = options.enabled(session, name)
        top = [(v, round(c, 4)) for v, c in (p.top or [(p.value, p.confidence)]) if v in allowed]
        model = Actor(p.model, "ai", p.version)
        bar = p.threshold if p.threshold is not None else bars.get(name, 1.0)
        if p.value in allowed and p.confidence >= bar:
            lifecycle.set_field(session, ticket, name, p.value, model, at, p.confidence)
            outcome[name] = "applied"
            suggestions.pop(name, None)
        else:
            suggestions[name] = {"top": top[:3], "model": p.model, "version": p.version}
            outcome[name] = "suggested"
        append(
            session,
            actor=model,
            action="ticket.triaged",
            subject=f"ticket:{ticket.id}",
            at=at,
            inputs={"field": name, "value": p.value, "confidence": p.confidence, "top": top[:3]},
            decision=outcome[name],
            rationale=(
                f"confidence {p.confidence:.2f} vs threshold {bar:.2f}"
                + ("" if p.value in allowed else f"; {p.value!r} is not an enabled option")
            ),
        )
    ticket.suggestions = suggestions or None
    return outcome
