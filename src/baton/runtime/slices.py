"""Bounded slices of the inbox: which events one processing transaction takes, how many
fit in its time budget, and who may process at all when several processes share a
PostgreSQL database.

A slice is sized from what the last ones cost, so a transaction holds the writer for
about `drain_slice_s` whatever one request carried: a 50,000-alert batch is worked
through in many slices, each committing its effects with the batch's new progress.
"""

from __future__ import annotations

from collections import deque
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
    """Events run through the pipeline together, at one time, and the progress they
    make: (batch, its `done` after this segment)."""

    at: datetime
    events: list[EventIn] = field(default_factory=list)
    progress: list[tuple[Pending, int]] = field(default_factory=list)


@dataclass
class Plan:
    segments: list[Segment] = field(default_factory=list)

    def cut(self, ran: int) -> Done:
        """What the first `ran` segments did: each batch's new progress (the last one
        wins), the events processed and the batches finished."""
        upto: dict[int, tuple[Pending, int]] = {}
        for segment in self.segments[:ran]:
            for item, end in segment.progress:
                upto[item.id] = (item, end)
        events = sum(max(end - item.done, 0) or 1 for item, end in upto.values())
        finished = sum(1 for item, end in upto.values() if end >= item.count)
        unfinished = {i for i, (item, end) in upto.items() if end < item.count}
        return Done(list(upto.values()), events if upto else 0, finished, unfinished)


@dataclass(frozen=True)
class Done:
    progress: list[tuple[Pending, int]]
    events: int
    finished: int
    unfinished: set[int]  # batches to keep parsed


def plan(
    waiting: list[Pending],
    budget: int,
    records: Callable[[Pending], list[EventIn]],
    step: int | None = None,
) -> Plan:
    """Take up to `budget` events from the oldest batches on, in segments of at most
    `step` events (the slice may stop after any segment when its time is up);
    consecutive batches received within a second of each other share a segment, run at
    the later time."""
    step = max(1, step or budget)
    out, taken = Plan(), 0
    for item in waiting:
        start = item.done
        while taken < budget and (start < item.count or not item.count):
            last = out.segments[-1] if out.segments else None
            if last is None or len(last.events) >= step or item.received_at - last.at > SAME_MOMENT:
                last = Segment(item.received_at)
                out.segments.append(last)
            last.at = max(last.at, item.received_at)
            end = min(item.count, start + step - len(last.events), start + budget - taken)
            last.events += records(item)[start:end]
            last.progress.append((item, end))
            taken += max(end - start, 1)  # an empty batch still takes a place
            start = end
            if not item.count:
                break
        if taken >= budget:
            break
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
        self._seen: deque[tuple[float, int]] = deque()

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
            self._seen.popleft()
