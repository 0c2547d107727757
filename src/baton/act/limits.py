"""Rate and concurrency limits on executions: per runbook, per target and global.

Checked when an execution is created, under the audit chain's lock, so concurrent
proposals cannot both slip under a limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from baton.act.runbook import Runbook
from baton.errors import Refused
from baton.store.models import Execution

ACTIVE = ("queued", "running", "verifying", "rolling_back")
NOT_COUNTED = ("vetoed",)  # runs that never happened do not count against a rate


class LimitReached(Refused):
    """Too many runs; the message names the limit."""


_RUNS = Execution.__table__
_RECENT = (_RUNS.c.created_at > bindparam("since"), _RUNS.c.status.not_in(NOT_COUNTED))
_MINE = _RUNS.c.runbook_id == bindparam("runbook")
# Core and built once: every queued execution is counted against them.
_COUNT = select(func.count()).select_from(_RUNS)
_ALL_RECENT = _COUNT.where(*_RECENT)
_MINE_RECENT = _COUNT.where(_MINE, *_RECENT)
_MINE_ACTIVE = _COUNT.where(_MINE, _RUNS.c.status.in_(ACTIVE))


def _count(session: Session, stmt: Any, **values: Any) -> int:
    session.flush()  # Core reads do not autoflush
    return int(session.execute(stmt, values).scalar() or 0)


def check(
    session: Session,
    runbook: Runbook,
    params: dict[str, Any],
    at: datetime,
    global_per_hour: int | None = None,
) -> None:
    """Raise LimitReached if one more run of `runbook` with `params` would break a limit."""
    limits = runbook.doc.get("limits") or {}
    hour_ago = at - timedelta(hours=1)
    recent = (Execution.created_at > hour_ago, Execution.status.not_in(NOT_COUNTED))
    mine = Execution.runbook_id == runbook.id
    per_hour = limits.get("max_per_hour")
    if per_hour and _count(session, _MINE_RECENT, runbook=runbook.id, since=hour_ago) >= per_hour:
        raise LimitReached(
            f"{runbook.id} already ran {per_hour} time(s) in the last hour (limits.max_per_hour)"
        )
    target = params.get("service")
    per_target = limits.get("max_per_hour_per_target")
    if per_target and target is not None:
        same = [
            e
            for e in session.scalars(select(Execution).where(mine, *recent))
            if e.params.get("service") == target
        ]
        if len(same) >= per_target:
            raise LimitReached(
                f"{runbook.id} already ran {per_target} time(s) on {target} in "
                "the last hour (limits.max_per_hour_per_target)"
            )
    concurrent = limits.get("max_concurrent")
    if concurrent and _count(session, _MINE_ACTIVE, runbook=runbook.id) >= concurrent:
        raise LimitReached(
            f"{runbook.id} already has {concurrent} run(s) in flight (limits.max_concurrent)"
        )
    if global_per_hour and _count(session, _ALL_RECENT, since=hour_ago) >= global_per_hour:
        raise LimitReached(
            f"{global_per_hour} automated runs in the last hour across all "
            "runbooks (policy max_runs_per_hour)"
        )
