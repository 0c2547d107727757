"""Group commit: many concurrent requests, one writer, one transaction per round.

Requests hand their validated batch to `Intake.submit` and wait on the returned future;
the writer thread takes every batch waiting, inserts them into the inbox in one
transaction and resolves each future only after that commit. Under load a round holds
many batches, so the cost of a durable commit is shared instead of paid per request.
On SQLite the writer's connection uses `synchronous=FULL`: an acknowledged batch
survives a power cut, not only a crash.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from datetime import datetime

from sqlalchemy import Connection

from baton.runtime.clock import Clock
from baton.sense import inbox
from baton.sense.receivers import Batch
from baton.store.db import Database

log = logging.getLogger("baton.intake")
MAX_ROUND = 256  # batches per transaction: keeps one round's latency bounded


class Intake:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._waiting: list[tuple[Batch, datetime, Future[None]]] = []
        self._lock = threading.Condition()
        self._committed = threading.Condition()
        self._rounds = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, batch: Batch) -> Future[None]:
        """Queue a batch for the next commit; the future resolves once it is durable."""
        done: Future[None] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("intake is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="baton-intake", daemon=True)
                self._thread.start()
            self._waiting.append((batch, self.clock.now(), done))
            self._lock.notify()
        return done

    def wait_for_commit(self, seen: int, timeout: float) -> int:
        """Block until a commit after round `seen` (or timeout); returns the round count."""
        with self._committed:
            self._committed.wait_for(lambda: self._rounds != seen, timeout)
            return self._rounds

    def close(self) -> None:
        """Commit what is waiting, then stop the writer."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join()

    def _take(self) -> list[tuple[Batch, datetime, Future[None]]]:
        with self._lock:
            self._lock.wait_for(lambda: self._waiting or self._closed)
            taken, self._waiting = self._waiting[:MAX_ROUND], self._waiting[MAX_ROUND:]
            return taken

    def _run(self) -> None:
        try:
            with self.db.engine.connect() as conn:
                if self.db.is_sqlite:
                    conn.exec_driver_sql("PRAGMA synchronous=FULL")
                    conn.commit()
                while taken := self._take():
                    self._commit(conn, taken)
        except Exception as exc:  # the database went away: fail the waiters, retry later
            log.exception("inbox writer stopped")
            with self._lock:
                taken, self._waiting, self._thread = self._waiting, [], None
            for _, _, done in taken:
                done.set_exception(exc)

    def _commit(self, conn: Connection, taken: list[tuple[Batch, datetime, Future[None]]]) -> None:
        try:
            with conn.begin():
                inbox.write(conn, [inbox.row(batch, at) for batch, at, _ in taken])
        except Exception as exc:
            log.exception("inbox commit failed", extra={"batches": len(taken)})
            for _, _, done in taken:
                done.set_exception(exc)
            return
        for _, _, done in taken:
            done.set_result(None)
        with self._committed:
            self._rounds += 1
            self._committed.notify_all()
