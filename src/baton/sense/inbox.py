"""The durable inbox: received batches, committed before the sender is acknowledged.

Writing is one multi-row insert per group commit (Core, no ORM objects); processing
claims a batch inside the transaction that stores its effects, so a crash replays a
batch and never loses or doubles it. Processed batches are the raw-event history and
are pruned by age and by count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.orm import Session

from baton.sense.normalize import EventIn, events_from_json
from baton.sense.receivers import Batch
from baton.store.models import InboxBatch

TABLE = InboxBatch.__table__


def row(batch: Batch, received_at: datetime) -> dict[str, Any]:
    return {
        "source": batch.source,
        "received_at": received_at,
        "events": orjson.dumps(batch.events).decode(),
        "count": len(batch.events),
        "group_key": batch.group_key,
    }


def write(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert received batches in the caller's transaction (one executemany)."""
    conn.execute(insert(TABLE), list(rows))


@dataclass(frozen=True)
class Pending:
    id: int
    received_at: datetime
    records: str  # JSON, parsed only when the batch's turn comes
    count: int = 0
    done: int = 0  # events of it already processed (a big batch goes in slices)

    def events(self) -> list[EventIn]:
        return events_from_json(self.records)


def pending(session: Session, limit: int) -> list[Pending]:
    """The oldest unprocessed batches, in the order they were acknowledged."""
    rows = session.execute(
        select(
            InboxBatch.id,
            InboxBatch.received_at,
            InboxBatch.events,
            InboxBatch.count,
            InboxBatch.done,
        )
        .where(InboxBatch.processed_at.is_(None))
        .order_by(InboxBatch.id)
        .limit(limit)
    )
    return [Pending(r.id, r.received_at, r.events, r.count, r.done) for r in rows]


@dataclass(frozen=True)
class Lag:
    """How far processing is behind intake: events waiting and the oldest one's age."""

    events: int
    oldest: datetime | None

    def seconds(self, now: datetime) -> float:
        return 0.0 if self.oldest is None else max(0.0, (now - self.oldest).total_seconds())


def lag(session: Session) -> Lag:
    """Events received but not processed yet, and when the oldest was received."""
    row = session.execute(
        select(
            func.coalesce(func.sum(InboxBatch.count - InboxBatch.done), 0),
            func.min(InboxBatch.received_at),
        ).where(InboxBatch.processed_at.is_(None))
    ).one()
    return Lag(int(row[0]), row[1])


def backlog(session: Session) -> int:
    """Events received but not processed yet."""
    return lag(session).events


class Contended(Exception):
    """Another processor moved a batch's progress first: this slice must roll back."""


def advance(session: Session, item: Pending, upto: int, at: datetime) -> None:
    """Record in the caller's transaction that `item` is processed up to event `upto`
    (all of it: processed); Contended if its progress is no longer what was read.

    The condition on the old count makes two processors' slices exclusive: the second
    one's update matches nothing and its whole transaction is rolled back.
    """
    values: dict[str, Any] = {"done": upto}
    if upto >= item.count:
        values["processed_at"] = at
    done = session.execute(
        update(InboxBatch)
        .where(
            InboxBatch.id == item.id,
            InboxBatch.done == item.done,
            InboxBatch.processed_at.is_(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise Contended(item.id)


def claim(session: Session, batch_id: int, at: datetime, error: str | None = None) -> bool:
    """Mark a batch processed in the caller's transaction; False if someone already did.

    The update takes the row's write lock first, so two processors never both apply it.
    """
    done = session.execute(
        update(InboxBatch)
        .where(InboxBatch.id == batch_id, InboxBatch.processed_at.is_(None))
        .values(processed_at=at, error=error)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1


def prune(session: Session, now: datetime, max_age: timedelta, max_events: int) -> int:
    """Delete processed batches older than `max_age` or beyond the newest `max_events`.

    Unprocessed batches are never deleted: they are acknowledged work.
    """
    newest_first = select(
        InboxBatch.id,
        func.sum(InboxBatch.count).over(order_by=InboxBatch.id.desc()).label("kept"),
    ).subquery()
    first_dropped = session.scalar(
        select(func.max(newest_first.c.id)).where(newest_first.c.kept > max_events)
    )
    too_old = InboxBatch.received_at < now - max_age
    expired = too_old if first_dropped is None else too_old | (InboxBatch.id <= first_dropped)
    done = session.execute(
        delete(InboxBatch)
        .where(InboxBatch.processed_at.is_not(None), expired)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount
