"""The inbox drain: acknowledged batches, oldest first, through the ingest pipeline.

Each batch is claimed in the same transaction as its effects, so a crash between the
two leaves it to be processed again, never processed twice and never lost. The
sandbox, benches and tests may also process a payload at once, skipping the inbox.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from baton.correlate.incidents import IncidentChange
from baton.govern import notifications
from baton.kernel.clock import Clock
from baton.runtime.config import LiveConfig
from baton.runtime.intake import Intake
from baton.runtime.pipeline import Observer, Pipeline, Pipelines, StageContext
from baton.runtime.settings import Settings
from baton.sense import inbox, normalize, receivers
from baton.store.db import Database

log = logging.getLogger("baton.drain")


class Drain:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        intake: Intake,
        pipelines: Pipelines,
        config: LiveConfig,
        observer: Observer | None,
    ) -> None:
        self.settings, self.db, self.clock, self.intake = settings, db, clock, intake
        self.pipelines, self.config, self.observer = pipelines, config, observer
        self.running = False  # a `process_until` thread drains the inbox

    def ingest(
        self,
        events: list[normalize.EventIn],
        *,
        at: datetime | None = None,
        batch: int | None = None,
    ) -> dict[str, int]:
        """Store and correlate events in one transaction; returns counts once committed.

        With `batch` (an inbox row) the batch is claimed in the same transaction, so its
        effects and "processed" land together; one already processed is skipped.
        """
        at = at or self.clock.now()
        with self.db.session() as s:
            if batch is not None and not inbox.claim(s, batch, self.clock.now()):
                return {"accepted": 0, "incident_changes": 0}
            changes = self._correlate(s, self.pipelines.ingest, list(events), at)
        return {"accepted": len(events), "incident_changes": len(changes)}

    def release(self) -> int:
        """Look again at held and muted alerts (the heartbeat's job); returns changes."""
        with self.intake.turn(), self.db.session() as s:  # like processing, after intake
            return len(self._correlate(s, self.pipelines.release, [], self.clock.now()))

    def _correlate(
        self, s: Session, pipeline: Pipeline[Any, IncidentChange], items: list[Any], at: datetime
    ) -> list[IncidentChange]:
        """Run a sense/suppress/correlate pipeline; changed incidents join their
        notification groups in the same transaction."""
        changes = pipeline.run(StageContext(s, at, self.observer), items)
        notifications.track(s, self.config.routing, [c.incident_id for c in changes], at)
        return changes

    def ingest_alertmanager(self, payload: Any, source: str = "alertmanager") -> dict[str, int]:
        return self.ingest_payload(receivers.alertmanager_api, payload, source)

    def ingest_generic(self, payload: Any, source: str = "generic") -> dict[str, int]:
        return self.ingest_payload(receivers.generic, payload, source)

    def ingest_payload(
        self, parse: Callable[[bytes, datetime, str], Any], payload: Any, source: str
    ) -> dict[str, int]:
        """In-process intake (sandbox, benches, tests): parse, normalise and process at
        once, skipping the inbox."""
        batch = parse(orjson.dumps(payload), self.clock.now(), source)
        return self.ingest([normalize.EventIn.model_validate(e) for e in batch.events])

    def process_inbox(self, limit: int = 20) -> int:
        """Process up to `limit` acknowledged batches, oldest first; returns how many.

        Each batch is processed at the time it was received. A batch that cannot be
        processed is set aside with its error (kept for inspection) rather than
        blocking every batch behind it; a database that is busy or gone only defers it.
        """
        with self.db.session() as s:
            waiting = inbox.pending(s, limit)
        for item in waiting:
            try:
                with self.intake.turn():
                    self.ingest(item.events(), at=item.received_at, batch=item.id)
            except OperationalError:  # locked, deadlocked or disconnected: try again later
                log.warning("inbox batch deferred", extra={"batch": item.id}, exc_info=True)
                break
            except Exception as exc:
                log.exception("inbox batch failed", extra={"batch": item.id})
                with self.db.session() as s:
                    inbox.claim(s, item.id, self.clock.now(), error=repr(exc)[:2000])
        return len(waiting)

    def catch_up(self) -> int:
        """The heartbeat's share: drain the inbox unless a `process_until` thread does."""
        return 0 if self.running else self.process_inbox(limit=1000)

    def process_until(self, stop: threading.Event) -> None:
        """Process the inbox as batches are committed, until `stop` is set (`baton serve`)."""
        seen, self.running = 0, True
        while not stop.is_set():
            try:
                if self.process_inbox() == 0:
                    seen = self.intake.wait_for_commit(seen, timeout=1.0)
            except Exception:  # keep processing alive; the error is logged
                log.exception("inbox processing failed")
                stop.wait(1.0)

    def prune_inbox(self) -> int:
        """Enforce raw-event retention (age and count) on processed batches."""
        cfg = self.settings
        with self.db.session() as s:
            return inbox.prune(
                s,
                self.clock.now(),
                timedelta(seconds=cfg.inbox_max_age_s),
                cfg.inbox_max_events,
            )
