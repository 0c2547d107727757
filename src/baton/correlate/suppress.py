"""Deciding which alerts may page: silences, maintenance windows, flapping, transient hold
and inhibition. Each suppressed event says why in `Event.suppressed_by`; each batch leaves
one audit record that counts the decisions (never one per duplicate alert).

Order of the checks, for a newly firing event: silence, maintenance window, flapping,
then the transient hold of its service. Once released (at once, or when its hold is
over and it still fires) inhibition is checked; an inhibited event may still join the
incident of what it belongs to, but never opens one. Silenced, in-maintenance and
inhibited events are looked at again on every pass, so an alert still firing when its
silence ends goes on to page.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from baton.correlate.config import CorrelationConfig
from baton.correlate.inhibition import Firing, inhibited_by
from baton.correlate.matchers import match_all, parse_all
from baton.correlate.silences import active_silences, occurrence_at, open_windows
from baton.kernel.audit import Actor, append
from baton.kernel.enums import EventStatus
from baton.store.models import Event, MaintenanceWindow, Silence

SUPPRESSOR = Actor("baton.correlate", "ai", "suppress/1")
EXAMPLES = 20


@dataclass
class Screened:
    """The outcome of one pass: events for correlation (an inhibited one among them keeps
    its `suppressed_by`, so correlation lets it join but not open an incident)."""

    events: list[Event] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def note(self, what: str, event: Event) -> None:
        self.counts[what] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(
                {"event": event.id, "alert": event.name, "service": event.service, "why": what}
            )


def _flapping(session: Session, event: Event, cfg: CorrelationConfig, at: datetime) -> bool:
    since = at - timedelta(seconds=cfg.flap.window_s)
    firings = session.scalar(
        select(func.count())
        .select_from(Event)
        .where(Event.fingerprint == event.fingerprint, Event.first_seen >= since)
    )
    return int(firings or 0) >= cfg.flap.min_firings


@dataclass
class _Mutes:
    """The silences and maintenance windows in force, read once per pass."""

    silences: list[Silence]
    windows: list[MaintenanceWindow]

    @classmethod
    def load(cls, session: Session, at: datetime) -> _Mutes:
        return cls(active_silences(session, at), open_windows(session, at))

    def why(self, event: Event, at: datetime) -> str | None:
        for silence in self.silences:
            if match_all(parse_all(silence.matchers), event.labels):
                return f"silence:{silence.id}"
        for window in self.windows:
            if match_all(parse_all(window.matchers), event.labels) and occurrence_at(window, at):
                return f"maintenance:{window.id}"
        return None


def _waiting(session: Session, exclude: set[int], at: datetime, everything: bool) -> list[Event]:
    """Firing events outside any incident that were held or suppressed: looked at again.

    `everything` (the heartbeat's pass) looks at all of them, muted and flapping ones
    included; a batch of new alerts only at those whose hold just ended, so intake does
    not re-read a growing set of muted alerts on every batch.
    """
    waiting = Event.suppressed_by.is_not(None) | Event.held_until.is_not(None)
    if not everything:
        waiting = Event.suppressed_by.is_(None) & (Event.held_until <= at)
    rows = session.scalars(
        select(Event)
        .where(Event.status == EventStatus.FIRING, Event.incident_id.is_(None), waiting)
        .order_by(Event.id)  # first in, first placed: a cause before its symptoms
    )
    return [e for e in rows if e.id not in exclude]


def may_open(event: Event, at: datetime) -> bool:
    """Only an unsuppressed event past its hold may open an incident; the others may join
    one (a symptom of a known problem pages nobody)."""
    return event.suppressed_by is None and (event.held_until is None or event.held_until <= at)


def screen(
    session: Session,
    changed: list[Event],
    cfg: CorrelationConfig,
    at: datetime,
    everything: bool = True,
) -> Screened:
    """Decide for the changed events (and those waiting) what goes on to correlation."""
    out = Screened()
    mutes = _Mutes.load(session, at)
    candidates: list[Event] = []
    for event in changed:
        if event.status == EventStatus.RESOLVED:
            if event.incident_id is None and event.suppressed_by is None and event.held_until:
                event.suppressed_by = "transient"  # resolved within its hold: never paged
                out.note("transient", event)
            out.events.append(event)
            continue
        why = mutes.why(event, at) or ("flapping" if _flapping(session, event, cfg, at) else None)
        if why:
            event.suppressed_by = why
            out.note(why.split(":")[0], event)
            if why == "flapping":
                candidates.append(event)
            continue
        hold = cfg.hold_for(event.service)
        if hold:
            event.held_until = at + hold
            out.counts["held"] += 1
        candidates.append(event)
    for event in _waiting(session, {e.id for e in changed}, at, everything):
        was = event.suppressed_by
        why = mutes.why(event, at)
        if why:
            event.suppressed_by = why
            if why != was:
                out.note(why.split(":")[0], event)
            continue
        if was and was.startswith(("silence:", "maintenance:")):
            event.suppressed_by = None
            out.note("unmuted", event)
        candidates.append(event)
    _inhibit(session, [e for e in candidates if e.suppressed_by != "flapping"], cfg, out)
    out.events.extend(candidates)
    session.flush()
    if out.counts:
        append(
            session,
            actor=SUPPRESSOR,
            action="events.screened",
            subject="events",
            at=at,
            inputs={"counts": dict(out.counts), "examples": out.examples},
            decision=", ".join(f"{k}: {v}" for k, v in sorted(out.counts.items())),
            rationale="why these alerts did not page (or may page again)",
        )
    return out


def _inhibit(session: Session, events: list[Event], cfg: CorrelationConfig, out: Screened) -> None:
    """Mark (or unmark) inhibited events; the firing sources are read once per pass."""
    if not events or not (cfg.inhibit_rules or any(e.suppressed_by for e in events)):
        return
    firing = [
        Firing(fp, labels or {})
        for fp, labels in session.execute(
            select(Event.fingerprint, Event.labels).where(Event.status == EventStatus.FIRING)
        )
    ]
    for event in events:
        was = event.suppressed_by
        found = inhibited_by(Firing(event.fingerprint, event.labels), firing, cfg.inhibit_rules)
        now = f"inhibition:{found[0].name}" if found else None
        if now == was or (was and not was.startswith("inhibition:")):
            continue
        event.suppressed_by = now
        out.note("inhibition" if now else "unmuted", event)
