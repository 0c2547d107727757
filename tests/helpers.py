"""Driving a demo platform from tests: step until something holds, read what happened."""

from __future__ import annotations

from sqlalchemy import select

from baton.store.models import Approval, AuditRecord, Execution


def rows(demo, query):
    with demo.platform.db.session() as s:
        return list(s.scalars(query))


def actions(demo):
    return [r.action for r in rows(demo, select(AuditRecord).order_by(AuditRecord.seq))]


def executions(demo):
    return rows(demo, select(Execution).order_by(Execution.id))


def pending(demo):
    return rows(demo, select(Approval).where(Approval.status == "pending").order_by(Approval.id))


def run_until(demo, predicate, minutes=60):
    """Step simulated time (30 s a step) until `predicate()` holds; False if it never does."""
    for _ in range(int(minutes * 2)):
        demo.step()
        if predicate():
            return True
    return False
