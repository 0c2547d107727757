"""Durable executions on every task backend: in-process, and Celery on the machine's
real Redis and RabbitMQ. Steps persist before they run, output is visible while they
run, redelivery never runs twice, and a dead worker's execution is taken over — resumed
when the step in flight is idempotent, interrupted and escalated when it is not."""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from baton.kernel.audit import Actor
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from baton.runtime.tasks import CeleryBackend
from baton.store.models import AuditRecord, Execution, ExecutionStep
from tests.helpers import python_script

REDIS_URL = os.environ.get("BATON_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBIT_URL = os.environ.get("BATON_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
PEOPLE = Actor("alice", "human")


def broker_or_skip(url: str) -> str:
    """A reachable broker, or a skip — a failure on CI, where the brokers are required."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"broker required on CI but not reachable at {url}: {exc}")
        pytest.skip(f"broker not reachable at {url}")
    return url


BACKENDS = [
    "inprocess",
    pytest.param("redis", marks=pytest.mark.celery),
    pytest.param("rabbitmq", marks=pytest.mark.celery),
]


def write_runbook(directory: Path, steps: list[dict], verify: list[dict] | None = None) -> None:
    doc = {
        "id": "durable",
        "title": "A runbook for durability tests",
        "owner": "team-test",
        "risk": "low",
        "reversible": False,
        "match": {"alertnames": ["NeverFires"]},
        "autonomy": {"default": "auto"},
        "steps": steps,
    }
    if verify:
        doc["verify"] = verify
    (directory / "durable.yaml").write_text(yaml.safe_dump(doc))


def write_reversible(directory: Path, fix: str, undo: Path) -> None:
    """One step running the program `fix`; its rollback appends to `undo`."""
    write_runbook(directory, [{"name": "fix", "action": "command", "with": {"argv": [fix]}}])
    doc = yaml.safe_load((directory / "durable.yaml").read_text())
    doc["reversible"] = True
    doc["rollback"] = [{"name": "undo", "action": "command", "with": {"argv": appender(undo)}}]
    (directory / "durable.yaml").write_text(yaml.safe_dump(doc))


def py(code: str) -> list[str]:
    return python_script(code)


def appender(path: Path) -> list[str]:
    return py(f"open({str(path)!r}, 'a').write('ran\\n')")


@pytest.fixture
def books(tmp_path: Path) -> Path:
    directory = tmp_path / "books"
    directory.mkdir()
    # its command steps act on this host: a lead raised it to auto, as a real install must
    (directory / "policy.yaml").write_text(
        "veto_window_s: 0\nrunbooks: {durable: {autonomy: {default: auto}}}\n"
    )
    return directory


@pytest.fixture(params=BACKENDS)
def make_platform(request, tmp_path: Path, books: Path, clock):
    """Start a platform on the chosen backend; Celery gets a real worker thread."""
    made: list = []

    def make(lease_s: float = 30.0) -> Platform:
        settings = Settings(home=tmp_path, runbooks_dir=books, execution_lease_s=lease_s)
        backend = None
        if request.param != "inprocess":
            url = broker_or_skip(REDIS_URL if request.param == "redis" else RABBIT_URL)
            backend = CeleryBackend(url, queue=f"baton-test-{uuid.uuid4().hex[:8]}")
            # AMQP heartbeats make the test worker's shutdown wait out one interval (10 s)
            backend.app.conf.broker_heartbeat = 0
        platform = Platform(settings, clock, backend=backend).start()
        if backend is not None:
            from celery.contrib.testing.worker import start_worker

            worker = start_worker(
                backend.app,
                pool="threads",
                concurrency=2,
                perform_ping_check=False,
                shutdown_timeout=30,
            )
            worker.__enter__()
            made.append(worker)
        made.append(platform)
        return platform

    yield make
    platforms = [m for m in made if isinstance(m, Platform)]
    for platform in platforms:
        platform.backend.drain(timeout=30)
    for worker in (m for m in made if not isinstance(m, Platform)):
        worker.__exit__(None, None, None)
    for platform in platforms:
        platform.close()


def run(platform: Platform) -> int:
    result = platform.commands.request_execution("durable", {}, PEOPLE, "test")
    assert result["tier"] == "auto" and result["execution"]
    assert platform.backend.drain(timeout=60)
    return result["execution"]


def queue_only(platform: Platform) -> int:
    """Queue a run of the durable runbook without handing it to a worker."""
    from baton.act.executions import create_execution

    with platform.db.session() as s:
        queued, _ = create_execution(
            s,
            runbook=platform.config.catalogue.get("durable"),
            params={},
            incident_id=None,
            decision_id=None,
            at=platform.clock.now(),
            requested_by=PEOPLE,
        )
        return queued.id


def execution(platform: Platform, execution_id: int) -> Execution:
    with platform.db.session() as s:
        row = s.get(Execution, execution_id)
        assert row.steps is not None  # loaded while the session is open
        s.expunge_all()
        return row


def test_steps_persist_and_verify_on_every_backend(make_platform, books, tmp_path):
    flag = tmp_path / "flag"
    write_runbook(
        books,
        [{"name": "fix", "action": "command", "with": {"argv": ["touch", str(flag)]}}],
        verify=[
            {"name": "fixed", "check": "command_exit", "with": {"argv": ["test", "-f", str(flag)]}}
        ],
    )
    platform = make_platform()
    execution_id = run(platform)
    platform.scheduler.tick()
    done = execution(platform, execution_id)
    assert done.status == "succeeded" and done.verified is True
    assert [(s.phase, s.status) for s in done.steps] == [("step", "ok"), ("verify", "ok")]


def test_redelivery_never_runs_an_execution_twice(make_platform, books, tmp_path):
    marker = tmp_path / "marker"
    write_runbook(
        books, [{"name": "once", "action": "command", "with": {"argv": appender(marker)}}]
    )
    platform = make_platform()
    execution_id = run(platform)
    for _ in range(3):  # a broker redelivering, a scheduler resubmitting
        platform.backend.submit("execute", {"execution_id": execution_id})
    assert platform.backend.drain(timeout=60)
    assert marker.read_text() == "ran\n"
    assert execution(platform, execution_id).status == "succeeded"


def test_output_is_visible_while_the_step_runs(make_platform, books, tmp_path):
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "print('first line', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
        "print('second line', flush=True)\n"
    )
    write_runbook(
        books, [{"name": "talk", "action": "command", "timeout_s": 60, "with": {"argv": py(code)}}]
    )
    platform = make_platform()
    result = platform.commands.request_execution("durable", {}, PEOPLE, "test")
    seen = None
    for _ in range(200):
        with platform.db.session() as s:
            step = s.scalar(
                select(ExecutionStep).where(ExecutionStep.execution_id == result["execution"])
            )
            if step is not None and "first line" in (step.output or ""):
                seen = (step.status, step.output)
                break
        time.sleep(0.05)
    go.touch()
    assert platform.backend.drain(timeout=60)
    assert seen is not None and seen[0] == "running" and "second" not in seen[1]
    final = execution(platform, result["execution"]).steps[0]
    assert final.status == "ok" and "second line" in final.output


def _crash(platform: Platform, execution_id: int, finished_steps: int, in_flight: bool) -> None:
    """Leave the execution as a worker that died would: running, a stale heartbeat, the
    first `finished_steps` steps done and (maybe) the next one in flight."""
    with platform.db.session() as s:
        row = s.get(Execution, execution_id)
        row.status, row.started_at, row.worker = "running", platform.clock.now(), "dead:1"
        row.heartbeat_at = platform.clock.now()
        names = [f"step {i + 1}" for i in range(finished_steps + int(in_flight))]
        for seq, name in enumerate(names, start=1):
            done = seq <= finished_steps
            s.add(
                ExecutionStep(
                    execution_id=execution_id,
                    seq=seq,
                    phase="step",
                    name=name,
                    action="command",
                    status="ok" if done else "running",
                    rendered={},
                    output="ran" if done else "half",
                    started_at=platform.clock.now(),
                    finished_at=platform.clock.now() if done else None,
                )
            )


@pytest.mark.parametrize("idempotent", [True, False])
def test_a_dead_workers_execution_is_resumed_or_interrupted(
    make_platform, books, tmp_path, idempotent
):
    marks = [tmp_path / f"step{i}" for i in (1, 2, 3)]
    write_runbook(
        books,
        [
            {
                "name": f"step {i + 1}",
                "action": "command",
                "idempotent": idempotent,
                "with": {"argv": appender(mark)},
            }
            for i, mark in enumerate(marks)
        ],
    )
    platform = make_platform(lease_s=30)
    execution_id = queue_only(platform)
    _crash(platform, execution_id, finished_steps=1, in_flight=True)
    platform.scheduler.tick()  # heartbeat still fresh: the worker may be alive, nothing happens
    assert platform.backend.drain(timeout=60)
    assert execution(platform, execution_id).status == "running"
    platform.clock.advance(timedelta(seconds=31))
    platform.scheduler.tick()
    assert platform.backend.drain(timeout=60)
    done = execution(platform, execution_id)
    assert not marks[0].exists()  # a finished step is never run again
    with platform.db.session() as s:
        audit = [r.action for r in s.scalars(select(AuditRecord).order_by(AuditRecord.seq))]
    if idempotent:
        assert done.status == "succeeded" and "execution.resumed" in audit
        assert marks[1].read_text() == "ran\n" and marks[2].read_text() == "ran\n"
        assert [st.status for st in done.steps] == ["ok", "interrupted", "ok", "ok"]
    else:
        assert done.status == "interrupted" and "execution.escalated" in audit
        assert not marks[1].exists() and not marks[2].exists()
        assert "not idempotent" in done.summary


@pytest.mark.celery
@pytest.mark.parametrize("idempotent", [False, True])
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_sigkill_of_a_worker_in_the_middle_of_a_step(broker, idempotent, tmp_path, books):
    """A real `baton worker` is killed with SIGKILL while its step runs; a second worker
    and the scheduler take over: a non-idempotent step is not run again (interrupted and
    escalated), an idempotent one is run again and the execution finishes."""
    import signal
    import subprocess

    from baton.kernel.clock import SystemClock

    url = broker_or_skip(REDIS_URL if broker == "redis" else RABBIT_URL)
    queue = f"baton-kill-{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "marker"
    code = (  # the first run records its pid and hangs; a second run just records itself
        "import os, time\n"
        f"first = not os.path.exists({str(marker)!r})\n"
        f"open({str(marker)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
        "time.sleep(60 if first else 0)\n"
    )
    write_runbook(
        books,
        [
            {
                "name": "hang",
                "action": "command",
                "idempotent": idempotent,
                "timeout_s": 120,
                "with": {"argv": py(code)},
            }
        ],
    )
    settings = Settings(
        home=tmp_path, runbooks_dir=books, broker_url=url, task_queue=queue, execution_lease_s=2
    )
    env = {
        **os.environ,
        "BATON_HOME": str(tmp_path),
        "BATON_RUNBOOKS_DIR": str(books),
        "BATON_BROKER_URL": url,
        "BATON_TASK_QUEUE": queue,
        "BATON_EXECUTION_LEASE_S": "2",
    }
    baton = str(Path(sys.executable).parent / "baton")
    platform = Platform(settings, SystemClock()).start()

    def start_worker() -> subprocess.Popen:
        return subprocess.Popen(
            [baton, "worker", "--concurrency", "2"],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    workers = [start_worker()]
    try:
        execution_id = platform.commands.request_execution("durable", {}, PEOPLE, "test")[
            "execution"
        ]
        for _ in range(300):
            if marker.exists() and marker.read_text().endswith("\n"):
                break
            time.sleep(0.1)
        assert marker.exists(), "the first worker never started the step"
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        os.kill(int(marker.read_text().split()[0]), signal.SIGKILL)  # the step's own process
        workers.append(start_worker())
        status = "running"
        for _ in range(120):  # the scheduler notices the stale heartbeat
            platform.scheduler.tick()
            status = execution(platform, execution_id).status
            if status != "running":
                break
            time.sleep(0.5)
        with platform.db.session() as s:
            audit = [
                r.action
                for r in s.scalars(
                    select(AuditRecord).where(AuditRecord.subject == f"execution:{execution_id}")
                )
            ]
        runs = marker.read_text().split()
        if idempotent:
            assert status == "succeeded" and len(runs) == 2 and "execution.resumed" in audit
        else:
            assert status == "interrupted" and "execution.escalated" in audit
            assert len(runs) == 1  # the step was not run again
    finally:
        for proc in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        platform.close()


def test_step_output_streams_over_the_api_as_it_happens(tmp_path, books, clock):
    """GET /executions/{id}/logs (Server-Sent Events) shows a step's first line while the
    step is still running, then the rest, then the end."""
    import json
    import threading

    from fastapi.testclient import TestClient

    from baton.api.app import create_app
    from baton.govern.rbac import create_token

    go = tmp_path / "go"
    code = (
        "import os, time\n"
        "print('first line', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
        "print('second line', flush=True)\n"
    )
    write_runbook(
        books, [{"name": "talk", "action": "command", "timeout_s": 60, "with": {"argv": py(code)}}]
    )
    platform = Platform(Settings(home=tmp_path, runbooks_dir=books), clock).start()
    try:
        with platform.db.session() as s:
            _, secret = create_token(s, name="viewer", role="viewer", at=clock.now())
        client = TestClient(create_app(platform))
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/v1/executions/999/logs", headers=headers).status_code == 404
        execution_id = platform.commands.request_execution("durable", {}, PEOPLE, "test")[
            "execution"
        ]
        events: list[tuple[str, dict]] = []
        with client.stream(
            "GET", f"/api/v1/executions/{execution_id}/logs", headers=headers
        ) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
                    events.append((kind, data))
                    if kind == "step" and "first line" in data.get("append", ""):
                        assert data["status"] == "running"  # seen before the step ended
                        threading.Timer(0.2, go.touch).start()
        steps = [d for k, d in events if k == "step"]
        text = "".join(d.get("append", d.get("output", "")) for d in steps)
        assert "first line" in text and "second line" in text
        assert steps[-1]["status"] == "ok"
        assert events[-1] == ("end", {"status": "succeeded", "summary": events[-1][1]["summary"]})
    finally:
        platform.backend.drain(10)
        platform.close()


def test_heartbeat_keeps_beating_while_any_copy_of_a_task_holds_the_execution(tmp_path, clock):
    from baton.act.heartbeat import Heartbeat
    from baton.store.db import Database

    beat = Heartbeat(Database(f"sqlite:///{tmp_path / 'x.db'}"), clock.now, "w", 60)
    with beat.holding(7):
        with beat.holding(7):  # a redelivered copy that found it already running
            pass
        assert beat.held() == {7}
    assert beat.held() == set()
    beat.close()


def test_a_worker_that_lost_its_execution_stops_and_writes_nothing(tmp_path, books, clock):
    """Worker A's heartbeat lapsed and B took over (marking A's step interrupted): A's
    program is stopped, A records nothing more and never runs the next step."""
    import threading

    from baton.act.worker import run_execution

    go, second = tmp_path / "go", tmp_path / "second"
    wait = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
    write_runbook(
        books,
        [
            {"name": "slow", "action": "command", "timeout_s": 60, "with": {"argv": py(wait)}},
            {"name": "next", "action": "command", "with": {"argv": appender(second)}},
        ],
    )
    platform = Platform(Settings(home=tmp_path, runbooks_dir=books), clock).start()
    try:
        execution_id = queue_only(platform)
        outcome = {}
        a = threading.Thread(
            target=lambda: outcome.update(
                status=run_execution(
                    platform.db,
                    execution_id,
                    platform.dispatch.action_context(),
                    clock.now,
                    worker="A",
                )
            )
        )
        a.start()
        for _ in range(200):
            with platform.db.session() as s:
                if [st.status for st in s.get(Execution, execution_id).steps] == ["running"]:
                    break
            time.sleep(0.05)
        with platform.db.session() as s:  # what B's take-over leaves behind
            row = s.get(Execution, execution_id)
            row.worker = "B"
            row.steps[0].status = "interrupted"
        a.join(timeout=20)
        assert not a.is_alive() and outcome["status"] == "taken_over"
        done = execution(platform, execution_id)
        assert done.status == "running" and done.worker == "B"
        assert [st.status for st in done.steps] == ["interrupted"]
        assert not second.exists()
    finally:
        go.touch()
        platform.close()


def test_each_ending_is_learned_once_and_counts_itself(make_platform, books, tmp_path):
    flag = tmp_path / "flag"
    write_runbook(
        books, [{"name": "check", "action": "command", "with": {"argv": ["test", "-f", str(flag)]}}]
    )
    platform = make_platform()
    flag.touch()
    run(platform)
    run(platform)
    flag.unlink()
    run(platform)
    with platform.db.session() as s:
        learned = s.scalars(
            select(AuditRecord.rationale)
            .where(AuditRecord.action == "learn.outcome")
            .order_by(AuditRecord.seq)
        ).all()
    assert learned == [
        "1 of 1 finished runs succeeded",
        "2 of 2 finished runs succeeded",
        "2 of 3 finished runs succeeded",
    ]


@pytest.mark.parametrize("status", ["failed", "rolling_back"])
def test_a_dead_workers_rollback_is_interrupted_and_escalated(
    make_platform, books, tmp_path, status
):
    """A failed run's own rollback, or one a person asked for, whose worker died: the undo
    is not re-run (nobody knows how far it got), and a person is called, once."""
    undo = tmp_path / "undo"
    write_reversible(books, "false", undo)
    platform = make_platform(lease_s=30)
    execution_id = queue_only(platform)
    with platform.db.session() as s:
        queued, now = s.get(Execution, execution_id), platform.clock.now()
        queued.status, queued.worker, queued.heartbeat_at = status, "dead:1", now
        for seq, (phase, state) in enumerate([("step", "failed"), ("rollback", "running")], 1):
            s.add(
                ExecutionStep(
                    execution_id=execution_id,
                    seq=seq,
                    phase=phase,
                    name=phase,
                    action="command",
                    status=state,
                    rendered={},
                    started_at=now,
                )
            )
    platform.scheduler.tick()  # the undoing worker may still be alive: nothing happens
    assert platform.backend.drain(timeout=60)
    assert execution(platform, execution_id).status == status
    platform.clock.advance(timedelta(seconds=31))
    platform.scheduler.tick()
    assert platform.backend.drain(timeout=60)
    platform.scheduler.tick()  # nothing left to take over: the next tick changes nothing
    assert platform.backend.drain(timeout=60)
    done = execution(platform, execution_id)
    assert not undo.exists()  # the undo is not run again
    assert done.status == "failed"
    assert [(st.phase, st.status) for st in done.steps] == [
        ("step", "failed"),
        ("rollback", "interrupted"),
    ]
    with platform.db.session() as s:
        audit = s.scalars(
            select(AuditRecord).where(AuditRecord.subject == f"execution:{execution_id}")
        ).all()
        learned = s.scalars(select(AuditRecord).where(AuditRecord.action == "learn.outcome")).all()
    assert [r.action for r in audit].count("execution.escalated") == 1
    assert any("mid-rollback" in (r.rationale or "") for r in audit)
    assert len(learned) == 1


@pytest.mark.postgres
def test_a_step_boundary_queues_behind_a_cancel_instead_of_deadlocking(
    pg_url, books, tmp_path, clock
):
    """A person's cancel locks the execution's row, then appends to the audit chain. A step
    boundary landing in between must wait for it (every writer takes the execution's row
    before the chain's lock), not deadlock with it, on PostgreSQL's row locks."""
    import threading

    from baton.act.executions import request_cancel
    from baton.kernel.audit import append

    go = tmp_path / "go"
    wait_for_go = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
    write_runbook(
        books,
        [
            {
                "name": "first",
                "action": "command",
                "timeout_s": 60,
                "with": {"argv": py(wait_for_go)},
            },
            {"name": "second", "action": "command", "with": {"argv": ["true"]}},
        ],
    )
    platform = Platform(
        Settings(home=tmp_path, database_url=pg_url, runbooks_dir=books), clock
    ).start()
    try:
        execution_id = platform.commands.request_execution("durable", {}, PEOPLE, "test")[
            "execution"
        ]
        for _ in range(400):
            with platform.db.session() as s:
                if (
                    s.scalar(
                        select(ExecutionStep.status).where(
                            ExecutionStep.execution_id == execution_id
                        )
                    )
                    == "running"
                ):
                    break
            time.sleep(0.025)
        locked, problems = threading.Event(), []

        def person() -> None:
            try:
                with platform.db.session() as s:
                    request_cancel(s, execution_id)
                    locked.set()
                    time.sleep(1.5)  # the step ends meanwhile; its boundary must queue
                    append(
                        s,
                        actor=PEOPLE,
                        action="override.cancel",
                        subject=f"execution:{execution_id}",
                        at=clock.now(),
                    )
            except Exception as exc:  # a deadlock victim, say
                problems.append(exc)

        worker = threading.Thread(target=person)
        worker.start()
        assert locked.wait(10)
        go.touch()
        worker.join(30)
        assert platform.backend.drain(timeout=60)
        assert problems == []
        done = execution(platform, execution_id)
        assert done.status == "cancelled"
        assert [(st.name, st.status) for st in done.steps] == [("first", "ok")]
    finally:
        platform.close()


def test_a_redelivered_rollback_request_undoes_once(make_platform, books, tmp_path):
    undo = tmp_path / "undo"
    write_reversible(books, "true", undo)
    platform = make_platform()
    execution_id = run(platform)
    platform.commands.override(
        execution_id, "rollback", "risk_too_high", "test", Actor("bob", "human")
    )
    for _ in range(2):  # the broker redelivering the person's request
        platform.backend.submit("rollback", {"execution_id": execution_id})
    assert platform.backend.drain(timeout=60)
    assert undo.read_text() == "ran\n"
    assert execution(platform, execution_id).status == "rolled_back"
    with platform.db.session() as s:
        learned = s.scalars(select(AuditRecord).where(AuditRecord.action == "learn.outcome")).all()
    assert len(learned) == 2  # the success, then the rollback: each learned once


def test_a_rollback_waiting_for_a_worker_is_not_taken_for_a_dead_one(
    make_platform, books, tmp_path
):
    undo = tmp_path / "undo"
    write_reversible(books, "true", undo)
    platform = make_platform(lease_s=30)
    execution_id = run(platform)
    from baton.act.executions import claim_rollback

    with platform.db.session() as s:  # claimed by a person; its task still in the queue
        claim_rollback(s, execution_id, platform.clock.now())
    platform.clock.advance(timedelta(seconds=120))
    platform.scheduler.tick()
    assert platform.backend.drain(timeout=60)
    assert execution(platform, execution_id).status == "rolling_back"  # left alone
    platform.backend.submit("rollback", {"execution_id": execution_id})
    assert platform.backend.drain(timeout=60)
    assert undo.read_text() == "ran\n"
    assert execution(platform, execution_id).status == "rolled_back"


def test_a_rollback_asked_before_a_restart_still_happens(tmp_path, books, clock):
    """The embedded deployment's queue is memory: a person's rollback still waiting when
    the server stopped is asked again when it starts."""
    undo = tmp_path / "undo"
    write_reversible(books, "true", undo)
    settings = Settings(home=tmp_path, runbooks_dir=books)
    first = Platform(settings, clock).start()
    execution_id = run(first)
    from baton.act.executions import claim_rollback

    with first.db.session() as s:  # asked, but the server stops before a worker takes it
        claim_rollback(s, execution_id, clock.now())
    first.close()
    second = Platform(settings, clock).start()
    try:
        assert second.backend.drain(timeout=60)
        assert undo.read_text() == "ran\n"
        assert execution(second, execution_id).status == "rolled_back"
    finally:
        second.close()
