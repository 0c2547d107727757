"""Task backends: where queued work (runbook executions) runs.

The in-process backend is the embedded default; a Celery backend with the same
interface arrives with distributed execution. Callers only see `submit` and `drain`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("baton.tasks")

Task = Callable[[dict[str, Any]], None]


class TaskBackend(Protocol):
    def register(self, name: str, fn: Task) -> None: ...

    def submit(self, name: str, payload: dict[str, Any]) -> None: ...

    def drain(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...


class InProcessBackend:
    """A queue served by worker threads in this process."""

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
