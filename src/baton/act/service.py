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


def get_version(session: Session, runbook_id: str, version: str) -> Runbook | None:
    row = session.scalar(
        select(RunbookRecord).where(
            RunbookRecord.runbook_id == runbook_id, RunbookRecord.version == version
        )
    )
    if row is None:
        return None
    if content_version(row.document) != version:
        raise ValueError(f"stored runbook {runbook_id}@{version} does not match its hash")
    return Runbook(
        id=runbook_id, version=version, doc=row.document, params=row.document.get("params", {})
    )
