"""Following an execution live: its steps and their output as they change.

Workers write a running step's output to the database as it grows (wherever they run),
so anyone can follow from any API replica; this turns those rows into a stream of
changes that ends when the execution does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from baton.act.executor import FINAL
from baton.store.db import Database
from baton.store.models import Execution

POLL_S = 0.5


def follow(
    db: Database,
    execution_id: int,
    *,
    max_s: float = 3600.0,
    poll_s: float = POLL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, Any]]:
    """Yield `step` changes (new output as `append`, or the whole `output` when the kept
    head/tail window moved) and finally `end` with the execution's status.

    A `None` in the stream is a pause with no news (for keep-alives); LookupError when
    there is no such execution.
    """
    sent: dict[int, tuple[str, str]] = {}
    deadline = time.monotonic() + max_s
    while True:
        with db.session() as s:
            execution = s.get(Execution, execution_id)
            if execution is None:
                raise LookupError(f"no execution {execution_id}")
            status, summary = execution.status, execution.summary
            changes = [_change(step, sent) for step in execution.steps]
        news = [c for c in changes if c]
        yield from news
        if status in FINAL:
            yield {"event": "end", "status": status, "summary": summary}
            return
        if time.monotonic() >= deadline:
            yield {"event": "end", "status": status, "summary": "stopped following (time limit)"}
            return
        if not news:
            yield None
        sleep(poll_s)


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
