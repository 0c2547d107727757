"""Leases on executions: a worker beats for what it runs; one that stops beating for
longer than the lease is taken for dead and its executions are taken over."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from baton.store.db import Database
from baton.store.models import Execution

log = logging.getLogger("baton.act")


def stale(at: datetime, lease_s: float) -> Any:
    """Its worker has not beaten for longer than the lease (or was declared gone)."""
    return Execution.heartbeat_at.is_(None) | (
        Execution.heartbeat_at < at - timedelta(seconds=lease_s)
    )


class Heartbeat:
    """Beats for every execution this process is running, in one statement, so other
    workers and the scheduler can tell it is alive (and take over when it is not)."""

    def __init__(
        self, db: Database, now: Callable[[], datetime], worker: str, every_s: float
    ) -> None:
        self.db, self.now, self.worker, self.every_s = db, now, worker, every_s
        self._held: Counter[int] = Counter()  # a redelivered copy may hold it a second time
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, execution_id: int) -> Iterator[None]:
        with self._lock:
            self._held[execution_id] += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="baton-heartbeat")
                self._thread.daemon = True
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held[execution_id] -= 1
                if self._held[execution_id] <= 0:
                    del self._held[execution_id]

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.beat()
            except Exception:  # a locked or lost database must not end the beating
                log.exception("heartbeat failed; retrying")

    def beat(self) -> None:
        held = self.held()
        if held:
            with self.db.session() as s:
                s.execute(
                    update(Execution)
                    .where(Execution.id.in_(held), Execution.worker == self.worker)
                    .values(heartbeat_at=self.now())
                )

    def close(self) -> None:
        self._stop.set()
