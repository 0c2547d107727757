"""Rate and concurrency limits on executions: per runbook, per target and global.

Checked when an execution is created, under the audit chain's lock, so concurrent
proposals cannot both slip under a limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from baton.act.runbook import Runbook
from baton.errors import Refused
from baton.store.models import Execution

ACTIVE = ("queued", "running", "verifying", "rolling_back")
NOT_COUNTED = ("vetoed",)  # runs that never happened do not count against a rate


class LimitReached(Refused):
    """Too many runs; the message names the limit."""


def _count(session: Session, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(Execution).where(*where)) or 0)


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
    if per_hour and _count(session, mine, *recent) >= per_hour:
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
    if concurrent and _count(session, mine, Execution.status.in_(ACTIVE)) >= concurrent:
        raise LimitReached(
            f"{runbook.id} already has {concurrent} run(s) in flight (limits.max_concurrent)"
        )
    if global_per_hour and _count(session, *recent) >= global_per_hour:
        raise LimitReached(
            f"{global_per_hour} automated runs in the last hour across all "
            "runbooks (policy max_runs_per_hour)"
        )
