"""The one lock order for an execution: its row first, then the audit chain.

A step boundary, a person's veto, cancel or rollback, a take-over and an ending all
write an execution's row and append to the audit chain in one transaction. Were some
to take the chain first and others the row first, two of them could each hold what the
other waits for (a deadlock on PostgreSQL). So every writer that needs both takes them
here, in this order, and nothing else takes both; a writer that needs only one of them
(a heartbeat, a claim with nothing to record, queuing a new execution whose row nobody
else can see yet) takes just that one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from baton.kernel.audit import serialize
from baton.store.db import lock_row
from baton.store.models import Execution


def execution_then_chain(
    s: Session, take: Execution | int | Executable, values: Mapping[str, Any] | None = None
) -> Any:
    """Take one execution's row lock, then the audit chain's lock (both held to commit).

    `take` says how the row is taken, and what is returned:
    - an execution's id: the row is locked as it is, then read (None if there is none);
    - an Execution: the changes made to it are written (a flush), and it is returned;
    - a statement (with `values`) that writes one execution's row and returns it, such
      as a claim or a heartbeat: its first row, or None, and then no lock is taken on
      the chain, when it matched nothing.
    """
    if isinstance(take, Execution):
        s.flush()
        taken: Any = take
    elif isinstance(take, int):
        taken = s.get(Execution, take) if lock_row(s, Execution, take) else None
    else:
        taken = s.execute(take, values).first()
    if taken is not None:
        serialize(s)
    return taken
