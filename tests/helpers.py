"""Driving a demo platform from tests: step until something holds, read what happened."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from baton.store.models import Approval, AuditRecord, Execution


def rows(demo, query):
    with demo.platform.db.session() as s:
        return list(s.scalars(query))


def actions(demo):
    return [r.action for r in rows(demo, select(AuditRecord).order_by(AuditRecord.seq))]


def executions(demo):
    return rows(
        demo, select(Execution).order_by(Execution.id).options(selectinload(Execution.steps))
    )


def pending(demo):
    return rows(demo, select(Approval).where(Approval.status == "pending").order_by(Approval.id))


def run_until(demo, predicate, minutes=60):
    """Step simulated time (30 s a step) until `predicate()` holds; False if it never does."""
    for _ in range(int(minutes * 2)):
        demo.step()
        if predicate():
            return True
    return False


def run_now(platform, runbook, params):
    """Create an execution of `runbook` with `params` (no incident, no decision) and run
    it at once in this thread. Returns (execution id, status)."""
    from baton.act.executions import create_execution
    from baton.act.worker import run_execution
    from baton.kernel.audit import Actor

    with platform.db.session() as s:
        execution, _ = create_execution(
            s,
            runbook=runbook,
            params=params,
            incident_id=None,
            decision_id=None,
            at=platform.clock.now(),
            requested_by=Actor("tester", "human"),
        )
    context = platform.dispatch.action_context()
    status = run_execution(platform.db, execution.id, context, platform.clock.now)
    return execution.id, status


def queue(platform, runbook_id, service, status=None):
    """Queue an execution of a starter runbook directly (no incident, no decision), and
    optionally pretend it already reached `status`. Returns (execution, created)."""
    from baton.act.executions import create_execution
    from baton.kernel.audit import Actor

    with platform.db.session() as s:
        execution, created = create_execution(
            s,
            runbook=platform.config.catalogue.get(runbook_id),
            params={"service": service},
            incident_id=None,
            decision_id=None,
            at=platform.clock.now(),
            requested_by=Actor("tester", "human"),
        )
        if status:
            execution.status, execution.finished_at = status, platform.clock.now()
        return execution, created


def free_port() -> int:
    """A local TCP port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_program(program: str, package: str) -> None:
    """Skip when a Debian package's program is missing, except on CI, where it must be."""
    if shutil.which(program) is not None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{program} (Debian package {package}) is required on CI")
    pytest.skip(f"{program} (Debian package {package}) is not installed")


_SCRIPTS = Path(tempfile.mkdtemp(prefix="baton-test-scripts-"))


def python_script(code: str) -> list[str]:
    """An argv running `code` from a script file: runbooks refuse `python -c` (code on
    the command line), while a script a person wrote and installed is just a program."""
    path = _SCRIPTS / f"{hashlib.sha256(code.encode()).hexdigest()[:16]}.py"
    if not path.exists():
        path.write_text(code)
    return [sys.executable, str(path)]
