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
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection

from baton.kernel.clock import Clock
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
        self._writing = threading.Lock()  # the inbox writer's turn vs processing's
        self._writer_waiting = False

    @contextmanager
    def turn(self, patience: float = 0.5) -> Iterator[None]:
        """Hold the inbox writer off while processing one slice.

        The two take turns: when the writer is waiting to commit a round, processing
        lets it go first (for at most `patience`), and a slice is short, so neither
        waits long behind the other and processing never waits for intake to stop.
        Holding the writer off also spares SQLite's busy handler, which sleeps in steps
        of milliseconds.
        """
        with self._lock:
            self._lock.wait_for(lambda: not self._writer_waiting, patience)
        with self._writing:
            yield

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
            self._lock.notify_all()
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
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _take(self) -> list[tuple[Batch, datetime, Future[None]]]:
        with self._lock:
            self._lock.wait_for(lambda: self._waiting or self._closed)
            taken, self._waiting = self._waiting[:MAX_ROUND], self._waiting[MAX_ROUND:]
            self._lock.notify_all()  # processing may be waiting for an empty queue
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
        rows = [inbox.row(batch, at) for batch, at, _ in taken]
        with self._lock:
            self._writer_waiting = True
        try:
            with self._writing:
                with self._lock:
                    self._writer_waiting = False
                    self._lock.notify_all()
                with conn.begin():
                    inbox.write(conn, rows)
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
