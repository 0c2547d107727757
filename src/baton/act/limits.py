"""Rate and concurrency limits on executions: per runbook, per target and global.

Checked when an execution is created, under the audit chain's lock, so concurrent
proposals cannot both slip under a limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from baton.act.confine import CONFINED
from baton.act.runbook import Runbook
from baton.kernel.enums import ACTIVE_EXECUTION
from baton.kernel.errors import Refused
from baton.store.models import Execution

NOT_COUNTED = ("vetoed",)  # runs that never happened do not count against a rate


class LimitReached(Refused):
    """Too many runs; the message names the limit."""


_RUNS = Execution.__table__
_RECENT = (_RUNS.c.created_at > bindparam("since"), _RUNS.c.status.not_in(NOT_COUNTED))
_MINE = _RUNS.c.runbook_id == bindparam("runbook")


def _up_to(*where: Any) -> Any:
    """Count matching runs, but only up to `cap`: a limit only asks whether it is reached,
    so the cost stays bounded by the limit, not by the history (Core, built once)."""
    hits = select(_RUNS.c.id).where(*where).limit(bindparam("cap")).subquery()
    return select(func.count()).select_from(hits)


_ALL_RECENT = _up_to(*_RECENT)
_MINE_RECENT = _up_to(_MINE, *_RECENT)
_MINE_ON_TARGET = {
    key: _up_to(_MINE, _RUNS.c.params[key].as_string() == bindparam("target"), *_RECENT)
    for key in ("service",)
}
_MINE_ACTIVE = _up_to(_MINE, _RUNS.c.status.in_(ACTIVE_EXECUTION))


def _reached(session: Session, limit: int | None, stmt: Any, **values: Any) -> bool:
    if not limit:
        return False
    session.flush()  # Core reads do not autoflush
    return int(session.execute(stmt, {**values, "cap": limit}).scalar() or 0) >= limit


def target_param(runbook: Runbook) -> str:
    """The param naming what a run acts on: its first confined one (path, host, unit,
    process), else `service`; a sender naming a new target each time still meets the
    per-target limit on what it names."""
    return next((n for n, s in runbook.params.items() if s["type"] in CONFINED), "service")


def _on_target(
    session: Session, runbook_id: str, key: str, target: Any, since: datetime, cap: int
) -> int:
    """Recent runs of the runbook on this target (up to `cap`). Text targets are counted in
    SQL; others (JSON numbers, booleans) by Python equality, as databases spell them
    differently."""
    if isinstance(target, str):
        session.flush()
        if key not in _MINE_ON_TARGET:
            on = _RUNS.c.params[key].as_string() == bindparam("target")
            _MINE_ON_TARGET[key] = _up_to(_MINE, on, *_RECENT)
        values = {"runbook": runbook_id, "target": target, "since": since, "cap": cap}
        return int(session.execute(_MINE_ON_TARGET[key], values).scalar() or 0)
    recent = (Execution.created_at > since, Execution.status.not_in(NOT_COUNTED))
    runs = session.scalars(
        select(Execution.params).where(_RUNS.c.runbook_id == runbook_id, *recent)
    )
    return sum(1 for params in runs if params.get(key) == target)


def check(
    session: Session,
    runbook: Runbook,
    params: dict[str, Any],
    at: datetime,
    global_per_hour: int | None = None,
) -> None:
    """Raise LimitReached if one more run of `runbook` with `params` would break a limit."""
    limits = runbook.doc.get("limits") or {}
    since, mine = at - timedelta(hours=1), runbook.id
    per_hour = limits.get("max_per_hour")
    if _reached(session, per_hour, _MINE_RECENT, runbook=mine, since=since):
        raise LimitReached(
            f"{runbook.id} already ran {per_hour} time(s) in the last hour (limits.max_per_hour)"
        )
    key = target_param(runbook)
    target = params.get(key)
    per_target = limits.get("max_per_hour_per_target") if target is not None else None
    if per_target and _on_target(session, mine, key, target, since, per_target) >= per_target:
        raise LimitReached(
            f"{runbook.id} already ran {per_target} time(s) on {target} in "
            "the last hour (limits.max_per_hour_per_target)"
        )
    concurrent = limits.get("max_concurrent")
    if _reached(session, concurrent, _MINE_ACTIVE, runbook=mine):
        raise LimitReached(
            f"{runbook.id} already has {concurrent} run(s) in flight (limits.max_concurrent)"
        )
    if _reached(session, global_per_hour, _ALL_RECENT, since=since):
        raise LimitReached(
            f"{global_per_hour} automated runs in the last hour across all "
            "runbooks (policy max_runs_per_hour)"
        )
