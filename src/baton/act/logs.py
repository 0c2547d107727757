"""Following an execution live: its steps and their output as they change.

Workers write a running step's output to the database as it grows (wherever they run),
so anyone can follow from any API replica; this turns those rows into a stream of
changes that ends when the execution does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from baton.kernel.enums import FINAL_EXECUTION
from baton.store.db import Database
from baton.store.models import Execution

POLL_S = 0.5


class Follower:
    """One person's view of one execution: each `poll` returns what changed since the
    last (`step` events, new output as `append` or the whole `output` when the kept
    window moved), and finally `end` with the status; then `done` is set.

    Polling is left to the caller, so a web server can wait without holding a thread.
    """

    def __init__(self, db: Database, execution_id: int, max_s: float = 3600.0) -> None:
        self.db, self.execution_id = db, execution_id
        self.deadline = time.monotonic() + max_s
        self.done = False
        self._sent: dict[int, tuple[str, str]] = {}

    def poll(self) -> list[dict[str, Any]]:
        """LookupError when there is no such execution."""
        with self.db.session() as s:
            execution = s.get(Execution, self.execution_id)
            if execution is None:
                raise LookupError(f"no execution {self.execution_id}")
            status, summary = execution.status, execution.summary
            news = [c for c in (_change(st, self._sent) for st in execution.steps) if c]
        if status in FINAL_EXECUTION:
            self.done = True
            return [*news, {"event": "end", "status": status, "summary": summary}]
        if time.monotonic() >= self.deadline:
            self.done = True
            return [*news, {"event": "end", "status": status, "summary": "stopped following"}]
        return news


def _change(step: Any, sent: dict[int, tuple[str, str]]) -> dict[str, Any] | None:
    output, before = step.output or "", sent.get(step.seq)
    if before == (step.status, output):
        return None
    sent[step.seq] = (step.status, output)
    event: dict[str, Any] = {
        "event": "step",
        "seq": step.seq,
        "phase": step.phase,
        "name": step.name,
        "status": step.status,
    }
    old = before[1] if before else ""
    if output.startswith(old):
        event["append"] = output[len(old) :]
    else:
        event["output"] = output
    return event


async def stream(follower: Follower, first: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    """The follower's changes as Server-Sent Events, polling off the event loop, with a
    comment line while nothing changes (so proxies keep the connection)."""
    batch = first
    while True:
        for item in batch:
            kind = item.pop("event")
            yield f"event: {kind}\ndata: ".encode() + orjson.dumps(item) + b"\n\n"
        if follower.done:
            return
        if not batch:
            yield b": still running\n\n"
        await asyncio.sleep(POLL_S)
        batch = await asyncio.to_thread(follower.poll)
