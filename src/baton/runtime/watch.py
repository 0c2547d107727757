"""The watch: metric points and log lines waiting for detection, and the heartbeat jobs
that pull configured series and run live detection on what arrived.

Findings are processed like any received alert (stored, correlated into incidents) in
the same turn as inbox processing, and each one is audited as an AI action with its
explanation. Buffers live in this process; detector state is saved every
``watch_save_s`` and when the platform closes, and loaded at start, so a restart does
not begin the learning periods again.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from baton.detect import persist
from baton.detect.live import LiveConfig, LiveDetector
from baton.kernel import audit
from baton.kernel.audit import Actor
from baton.kernel.clock import Clock
from baton.runtime.drain import Drain
from baton.runtime.pipeline import Observer
from baton.runtime.settings import Settings
from baton.sense.loglines import LogBuffer
from baton.sense.normalize import EventIn
from baton.sense.samples import MetricBuffer, Puller

log = logging.getLogger("baton.watch")
DETECTOR = Actor("baton.detect", "ai", "streaming/1")


class Watch:
    def __init__(
        self, settings: Settings, clock: Clock, drain: Drain, observer: Observer | None = None
    ) -> None:
        self.clock, self.drain, self.observer = clock, drain, observer
        self.metrics = MetricBuffer(max_series=settings.watch_max_series)
        self.logs = LogBuffer()
        self.state_path = settings.watch_state_path
        self.save_every = settings.watch_save_s
        self.detector = LiveDetector(LiveConfig(max_series=settings.watch_max_series))
        if self.save_every:
            self.detector = persist.load(self.detector, self.state_path)
        self._saved_at = clock.now().timestamp()
        self.puller = (
            Puller(settings.pull_url, settings.pull_queries, settings.pull_step_s, 3600.0)
            if settings.pull_url and settings.pull_queries
            else None
        )
        self.findings = 0

    def pull(self) -> int:
        """Points pulled from the configured Prometheus (0 when none is configured)."""
        if self.puller is None:
            return 0
        with httpx.Client(timeout=10.0) as client:
            return self.metrics.add(self.puller.pull(client, self.clock.now().timestamp()))

    def detect(self) -> int:
        """Run the detectors on what arrived since the last tick; returns findings."""
        found = self.detector.metrics(self.metrics.take())
        found += self.detector.logs(self.logs.take(), self.clock.now())
        if found:
            self.raise_findings(found)
        now = self.clock.now().timestamp()
        if self.save_every and now - self._saved_at >= self.save_every:
            self.save()
        return len(found)

    def save(self) -> None:
        """Save detector state (nothing when the detectors have learnt nothing yet)."""
        self._saved_at = self.clock.now().timestamp()
        if not self.save_every or not self.detector.learnt:
            return
        try:
            persist.save(self.detector, self.state_path)
        except OSError as exc:  # a full disk must not stop detection
            log.warning("detector state not saved to %s: %s", self.state_path, exc)

    def learn(self) -> int:
        """Run the detectors on what is waiting but raise nothing: history that only
        teaches them what normal looks like (their learning period). Returns points."""
        waiting = self.metrics.take()
        self.detector.metrics(waiting)
        self.detector.logs(self.logs.take(), self.clock.now())
        return sum(len(s.values) for s in waiting)

    def raise_findings(self, found: list[EventIn]) -> dict[str, Any]:
        at = self.clock.now()
        with self.drain.db.session() as s:
            for e in found:
                audit.append(
                    s,
                    actor=DETECTOR,
                    action=f"detect.{e.name}",
                    subject=f"event:{e.fingerprint}",
                    at=at,
                    inputs={"labels": e.labels, "status": e.status},
                    decision=e.status,
                    rationale=e.annotations.get("summary"),
                )
        self.findings += len(found)
        with self.drain.intake.turn(patience=0.5):
            counts = self.drain.ingest(found)
        for e in found:
            if self.observer is not None and e.status == "firing":
                summary = e.annotations.get("summary", e.name)
                self.observer(
                    "anomaly", {"name": e.name, "service": e.service, "summary": summary, "at": at}
                )
        return counts
