"""Bounded slices of the inbox: which events one processing transaction takes, how many
fit in its time budget, and who may process at all when several processes share a
PostgreSQL database.

A slice is sized from what the last ones cost, so a transaction holds the writer for
about `drain_slice_s` whatever one request carried: a 50,000-alert batch is worked
through in many slices, each committing its effects with the batch's new progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from baton.sense.inbox import Pending
from baton.sense.normalize import EventIn

# One key for "the inbox's processor" among PostgreSQL advisory locks (ASCII "baton\x01").
LEADER_KEY = 0x6261746F6E01
SAME_MOMENT = timedelta(seconds=1)  # batches this close are processed as one, at the last


def lead(session: Session, is_sqlite: bool) -> bool:
    """Whether this transaction may process the inbox now.

    On PostgreSQL, processes take turns by a transaction-scoped advisory lock: one
    slice at a time across every replica, released at commit or when a killed process's
    connection drops, so a standby takes over at its next slice. SQLite has one writer
    anyway (and the embedded deployment one process).
    """
    if is_sqlite:
        return True
    return bool(
        session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LEADER_KEY}).scalar()
    )


@dataclass
class Segment:
    at: datetime
    events: list[EventIn] = field(default_factory=list)


@dataclass
class Plan:
    segments: list[Segment] = field(default_factory=list)
    progress: list[tuple[Pending, int]] = field(default_factory=list)  # batch, new `done`
    events: int = 0
    finished: int = 0
    unfinished: set[int] = field(default_factory=set)  # batches to keep parsed


def plan(waiting: list[Pending], budget: int, records: Callable[[Pending], list[EventIn]]) -> Plan:
    """Take up to `budget` events from the oldest batches on; consecutive batches
    received within a second of each other form one segment, run at the later time."""
    out = Plan()
    for item in waiting:
        room = budget - out.events
        if room <= 0:
            break
        upto = min(item.count, item.done + room)
        events = records(item)[item.done : upto]
        if not out.segments or item.received_at - out.segments[-1].at > SAME_MOMENT:
            out.segments.append(Segment(item.received_at))
        segment = out.segments[-1]
        segment.at = max(segment.at, item.received_at)
        segment.events += events
        out.progress.append((item, upto))
        out.events += max(upto - item.done, 0)
        if upto >= item.count:
            out.finished += 1
        else:
            out.unfinished.add(item.id)
    if not out.events:  # empty batches only: still mark them processed
        out.events = len(out.progress)
    return out


class Budget:
    """Events per slice, adjusted so a slice takes about `target_s`."""

    def __init__(self, target_s: float, most: int, first: int = 20) -> None:
        self.target_s, self.most = target_s, most
        self.events = min(first, most)

    def observe(self, events: int, elapsed_s: float) -> None:
        if events < self.events and elapsed_s < self.target_s:
            return  # a short slice (little waiting) says nothing about the cost
        per_event = max(elapsed_s, 1e-6) / max(events, 1)
        wanted = int(self.target_s / per_event)
        # move halfway toward the estimate: one slow slice does not collapse the budget
        self.events = max(1, min(self.most, (self.events + wanted) // 2 or 1))


class Rate:
    """Events processed per second, over the last few seconds."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._seen: list[tuple[float, int]] = []

    def observe(self, events: int, now: float) -> None:
        self._seen.append((now, events))
        self._trim(now)

    def per_s(self, now: float) -> float:
        self._trim(now)
        if not self._seen:
            return 0.0
        return sum(n for _, n in self._seen) / self.window_s

    def _trim(self, now: float) -> None:
        while self._seen and now - self._seen[0][0] > self.window_s:
            self._seen.pop(0)
