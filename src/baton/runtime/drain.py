"""The inbox drain: acknowledged batches, oldest first, through the ingest pipeline.

Work goes in bounded slices (runtime/slices.py): each transaction takes the next events
of the oldest batches, about `drain_slice_s` worth, and records the batches' progress
with its effects, so a crash between slices resumes after the last committed one,
processing nothing twice and losing nothing. The drain also measures the lag that
intake's backpressure answers by. The sandbox, benches and tests may also process a
payload at once, skipping the inbox.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from baton.correlate.incidents import IncidentChange
from baton.govern import notifications
from baton.kernel.clock import Clock
from baton.runtime import slices
from baton.runtime.config import LiveConfig
from baton.runtime.intake import Intake
from baton.runtime.pipeline import Observer, Pipeline, Pipelines, StageContext
from baton.runtime.settings import Settings
from baton.sense import inbox, normalize, receivers
from baton.store.db import Database

log = logging.getLogger("baton.drain")


@dataclass(frozen=True)
class SliceDone:
    events: int  # processed in the slice
    finished: int  # batches it finished (or set aside)
    retry: bool = False  # it failed and the next slice goes on at once


@dataclass(frozen=True)
class Pressure:
    """Backpressure: intake answers 503 with `Retry-After` while `over`."""

    over: bool
    backlog: int
    lag_s: float
    processed_per_s: float
    retry_after_s: int


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
        self.budget = slices.Budget(settings.drain_slice_s, settings.drain_slice_events)
        self.rate = slices.Rate()
        self._parsed: dict[int, list[normalize.EventIn]] = {}
        self._single = False  # after a failed slice: one batch at a time, to find it
        self._lag: inbox.Lag | None = None
        self._lag_at = 0.0

    def ingest(
        self, events: list[normalize.EventIn], *, at: datetime | None = None
    ) -> dict[str, int]:
        """Store and correlate events in one transaction; returns counts once committed."""
        at = at or self.clock.now()
        with self.db.session() as s:
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
        """Process slices until `limit` batches are finished or none is waiting; returns
        how many batches were finished (a big batch takes several slices)."""
        finished = 0
        while finished < limit:
            done = self.process_slice()
            finished += done.finished
            if done.events == 0 and not done.retry:
                break
        return finished

    def process_slice(self) -> SliceDone:
        """One bounded slice: the next events of the oldest batches, processed and their
        progress recorded in one transaction of about `drain_slice_s`.

        Each batch is processed at the time it was received. A slice that fails is
        tried again batch by batch, and a batch that still fails is set aside with its
        error (kept for inspection) rather than blocking every batch behind it; a
        database that is busy or gone only defers the slice.
        """
        started = time.monotonic()
        try:
            with self.intake.turn(), self.db.session() as s:
                if not slices.lead(s, self.db.is_sqlite):
                    return SliceDone(0, 0)  # another process is draining now
                plan, ran = self._plan(s), 0
                for segment in plan.segments:
                    if ran and time.monotonic() - started > self.budget.target_s:
                        break  # time is up: the rest waits for the next slice
                    self._correlate(s, self.pipelines.ingest, segment.events, segment.at)
                    ran += 1
                done = plan.cut(ran)
                for item, upto in done.progress:
                    inbox.advance(s, item, upto, self.clock.now())
        except (OperationalError, inbox.Contended):  # busy, gone, or another took it
            log.warning("inbox slice deferred", exc_info=True)
            self._single = False
            return SliceDone(0, 0)
        except Exception as exc:
            return self._failed(exc)
        self._single = False
        elapsed = time.monotonic() - started
        self.budget.observe(done.events, elapsed)
        self.rate.observe(done.events, time.monotonic())
        self._parsed = {k: v for k, v in self._parsed.items() if k in done.unfinished}
        time.sleep(0)  # let the request loop have the interpreter between slices
        return SliceDone(done.events, done.finished)

    def _plan(self, s: Session) -> slices.Plan:
        """Choose this slice's events: up to the budget, oldest batch first."""
        budget = self.budget.events
        waiting = inbox.pending(s, limit=1 if self._single else min(budget, 500))
        return slices.plan(waiting, budget, self._records, step=max(1, budget // 4))

    def _records(self, item: inbox.Pending) -> list[normalize.EventIn]:
        """A batch's events, parsed once while it is worked through in slices."""
        if item.id not in self._parsed:
            self._parsed[item.id] = item.events()
        return self._parsed[item.id]

    def _failed(self, exc: Exception) -> SliceDone:
        if not self._single:  # find the batch at fault: one batch per slice, once
            log.warning("inbox slice failed; retrying batch by batch", exc_info=True)
            self._single = True
            return SliceDone(0, 0, retry=True)
        log.exception("inbox batch failed")
        with self.db.session() as s:
            waiting = inbox.pending(s, 1)
            if waiting:
                inbox.claim(s, waiting[0].id, self.clock.now(), error=repr(exc)[:2000])
                self._parsed.pop(waiting[0].id, None)
        self._single = False
        return SliceDone(0, 1, retry=True)

    def lag(self, max_age_s: float = 1.0) -> inbox.Lag:
        """The processing lag, measured at most every `max_age_s` (it is asked on every
        request to intake)."""
        now = time.monotonic()
        if self._lag is None or now - self._lag_at > max_age_s:
            with self.db.session() as s:
                self._lag, self._lag_at = inbox.lag(s), now
        return self._lag

    def pressure(self, fresh: bool = False) -> Pressure:
        """Whether intake should refuse for now, and for how long (`Retry-After`)."""
        lag = self.lag(0.0 if fresh else 1.0)
        seconds = lag.seconds(self.clock.now())
        over = (
            seconds > self.settings.intake_max_lag_s
            or lag.events > self.settings.intake_max_backlog
        )
        per_s = self.rate.per_s(time.monotonic())
        retry = 1 + int(min(60.0, lag.events / per_s if per_s > 0 else seconds / 2))
        return Pressure(over, lag.events, seconds, per_s, min(retry, 60))

    def catch_up(self) -> int:
        """The heartbeat's share: drain the inbox unless a `process_until` thread does."""
        return 0 if self.running else self.process_inbox(limit=1000)

    def process_until(self, stop: threading.Event) -> None:
        """Process the inbox slice after slice until `stop` is set (`baton serve`); a
        slice is short, so stopping waits for at most one."""
        seen, self.running = 0, True
        try:
            while not stop.is_set():
                try:
                    done = self.process_slice()
                    if done.events == 0 and not done.retry:
                        seen = self.intake.wait_for_commit(seen, timeout=0.5)
                except Exception:  # keep processing alive; the error is logged
                    log.exception("inbox processing failed")
                    stop.wait(1.0)
        finally:
            self.running = False

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
