"""Task backends: where queued work (runbook executions) runs.

The in-process backend is the embedded default; the Celery backend (set
BATON_BROKER_URL) spreads the same tasks over workers on many machines. Callers only
see `register`, `submit` and `drain`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout

log = logging.getLogger("baton.tasks")

Task = Callable[[dict[str, Any]], None]
PENDING_KEPT = 10_000


class TaskBackend(Protocol):
    local: bool  # tasks run in this process, so their start is seen here

    def register(self, name: str, fn: Task) -> None: ...

    def submit(self, name: str, payload: dict[str, Any]) -> None: ...

    def drain(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...


class InProcessBackend:
    """A queue served by worker threads in this process."""

    local = True

    def __init__(self, workers: int = 1) -> None:
        self._tasks: dict[str, Task] = {}
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._pending = 0
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._serve, name=f"baton-task-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def register(self, name: str, fn: Task) -> None:
        self._tasks[name] = fn

    def submit(self, name: str, payload: dict[str, Any]) -> None:
        if name not in self._tasks:
            raise KeyError(f"no task named {name!r} is registered")
        with self._cond:
            self._pending += 1
        self._queue.put((name, payload))

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, payload = item
            try:
                self._tasks[name](payload)
            except Exception:
                log.exception("task failed", extra={"task": name, "payload": payload})
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted task has finished; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=5)


class CeleryBackend:
    """Tasks on Celery workers (`baton worker`) through a Redis or RabbitMQ broker.

    Messages are acknowledged only after the task ran (`acks_late`) and given back when
    a worker dies mid-task, so no queued work is lost; the executor's atomic claim and
    heartbeats make a second delivery harmless rather than a second run.
    """

    local = False

    def __init__(self, broker_url: str, queue: str = "baton") -> None:
        self.queue = queue
        self.app = Celery("baton", broker=broker_url, backend=_result_backend(broker_url))
        self.app.conf.update(
            task_acks_late=True,
            task_reject_on_worker_lost=True,
            worker_prefetch_multiplier=1,
            task_default_queue=queue,
            task_serializer="json",
            result_serializer="json",
            accept_content=["json"],
            result_expires=3600,
            broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False,
            worker_redirect_stdouts=False,
        )
        self._pending: deque[Any] = deque(maxlen=PENDING_KEPT)
        self._lock = threading.Lock()

    def register(self, name: str, fn: Task) -> None:
        def run(payload: dict[str, Any]) -> None:
            fn(payload)

        self.app.task(name=f"baton.{name}", shared=False)(run)

    def submit(self, name: str, payload: dict[str, Any]) -> None:
        result = self.app.send_task(f"baton.{name}", args=[payload], queue=self.queue)
        with self._lock:
            self._pending.append(result)  # bounded: a server never drains, so old ones go

    def drain(self, timeout: float | None = None) -> bool:
        """Wait for the tasks this process submitted (and those they submitted); only the
        latest PENDING_KEPT are remembered, which is what tests and benches need."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._pending:
                    return True
                result = self._pending.popleft()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                result.get(timeout=left, propagate=False)
            except CeleryTimeout:
                with self._lock:
                    self._pending.appendleft(result)
                return False

    def reachable(self) -> str | None:
        """None when the broker answers, else what went wrong (for a clear error)."""
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
        except Exception as exc:  # any failure to connect is the answer
            return f"{type(exc).__name__}: {exc}"
        return None

    def run_worker(self, concurrency: int, loglevel: str = "INFO") -> None:
        """Serve this queue in this process until stopped (threads: one DB engine)."""
        self.app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--queues={self.queue}",
                f"--loglevel={loglevel}",
                "--without-gossip",
                "--without-mingle",
            ]
        )

    def close(self) -> None:
        with self._lock:
            self._pending.clear()  # results not waited for: let go before the app closes
        self.app.close()


def _result_backend(broker_url: str) -> str:
    """Redis keeps results itself; with RabbitMQ they travel back as replies."""
    return broker_url if broker_url.startswith(("redis://", "rediss://")) else "rpc://"


def make_backend(settings: Any) -> TaskBackend:
    """The backend the settings ask for: Celery when a broker URL is set."""
    if settings.broker_url:
        return CeleryBackend(settings.broker_url, settings.task_queue)
    return InProcessBackend(settings.task_workers)
