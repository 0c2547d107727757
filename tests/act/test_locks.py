"""One lock order for executions: a transaction that writes an execution's row and
appends to the audit chain writes the row first (else two writers could deadlock)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, update

from baton.act.locks import execution_then_chain
from baton.kernel.audit import Actor
from baton.store.models import Execution
from tests.helpers import executions, queue, run_until

CHAIN = "UPDATE meta SET value = value"  # how the audit chain's lock is taken
ROW = "UPDATE executions"
ALICE = Actor("alice", "human")


@contextmanager
def transactions(engine: Any) -> Iterator[list[list[str]]]:
    """Every committed transaction's statements (only the lock-relevant ones)."""
    open_: dict[int, list[str]] = {}
    done: list[list[str]] = []

    def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith((CHAIN, ROW)):
            open_.setdefault(id(conn), []).append(statement)

    def committed(conn: Any) -> None:
        done.append(open_.pop(id(conn), []))

    def rolled_back(conn: Any) -> None:
        open_.pop(id(conn), None)

    hooks = [
        ("before_cursor_execute", executed),
        ("commit", committed),
        ("rollback", rolled_back),
    ]
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        yield done
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


def test_every_writer_takes_the_row_before_the_chain(demo):
    """Runs, verification, a person's veto and rollback: wherever a transaction takes
    both, the execution's row comes first."""
    with transactions(demo.platform.db.engine) as done:
        demo.run_for(5, humans=False)
        demo.inject("traffic_surge")
        assert run_until(demo, lambda: any(e.verified for e in executions(demo)))
        finished = next(e for e in executions(demo) if e.verified)
        demo.platform.commands.override(finished.id, "rollback", "risk_too_high", "undo it", ALICE)
        demo.platform.backend.drain(5)
        queued, _ = queue(demo.platform, finished.runbook_id, "web")
        demo.platform.commands.override(queued.id, "veto", "bad_timing", "not now", ALICE)
    both = [t for t in done if any(s.startswith(ROW) for s in t) and CHAIN in "".join(t)]
    assert len(both) >= 5  # claims, step boundaries, endings, the veto, the rollback
    wrong = [t for t in both if not t[0].startswith(ROW)]
    assert wrong == []
    assert next(e for e in executions(demo) if e.id == finished.id).status == "rolled_back"


def test_a_write_that_matches_nothing_takes_no_chain_lock(platform):
    execution, _ = queue(platform, "restart-service", "web")
    with transactions(platform.db.engine) as done, platform.db.session() as s:
        nobody = update(Execution).where(Execution.id == -1).values(worker="x")
        assert execution_then_chain(s, nobody.returning(Execution.id), {}) is None
        assert execution_then_chain(s, -1) is None
    assert len(done) == 1 and [st.startswith(ROW) for st in done[0]] == [True, True]
    with transactions(platform.db.engine) as done, platform.db.session() as s:
        assert execution_then_chain(s, execution.id).id == execution.id
    assert [st.startswith(CHAIN) for st in done[0]] == [False, True]
