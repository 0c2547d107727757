"""Runbook records in the database: every loaded version is kept so an execution can
always show the exact document it ran."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.act.runbook import Catalogue, Runbook, content_version
from baton.store.models import RunbookRecord


def sync_catalogue(session: Session, catalogue: Catalogue, at: datetime) -> int:
    """Record versions not seen before; returns how many were new."""
    known = set(session.execute(select(RunbookRecord.runbook_id, RunbookRecord.version)).tuples())
    new = 0
    for rb in catalogue:
        if (rb.id, rb.version) in known:
            continue
        session.add(
            RunbookRecord(
                runbook_id=rb.id,
                version=rb.version,
                title=rb.title,
                owner=rb.owner,
                risk=rb.risk,
                reversible=rb.reversible,
                document=rb.doc,
                loaded_at=at,
            )
        )
        new += 1
    session.flush()
    return new


_VERIFIED: dict[tuple[str, str], Runbook] = {}


def get_version(session: Session, runbook_id: str, version: str) -> Runbook | None:
    """The runbook exactly as it was at `version`, checked against its content hash.

    A version is immutable (it *is* the hash of the content), so a verified one is kept
    in memory: executions read it several times each.
    """
    key = (runbook_id, version)
    if key in _VERIFIED:
        return _VERIFIED[key]
    row = session.scalar(
        select(RunbookRecord).where(
            RunbookRecord.runbook_id == runbook_id, RunbookRecord.version == version
        )
    )
    if row is None:
        return None
    if content_version(row.document) != version:
        raise ValueError(f"stored runbook {runbook_id}@{version} does not match its hash")
    runbook = Runbook(
        id=runbook_id, version=version, doc=row.document, params=row.document.get("params", {})
    )
    if len(_VERIFIED) >= 4096:
        _VERIFIED.clear()
    _VERIFIED[key] = runbook
    return runbook
