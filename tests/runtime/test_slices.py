"""Signals at scale: bounded slices, resuming a half-processed batch, the fast path for
re-sends, backpressure, and a real `baton serve` stopped by SIGTERM mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from baton.api.app import create_app
from baton.govern.rbac import create_token
from baton.harness import loadgen
from baton.kernel.clock import SimulatedClock
from baton.runtime import slices
from baton.runtime.platform import Platform
from baton.sense import inbox
from baton.sense.events import store
from baton.sense.normalize import EventIn
from baton.store.models import Event, InboxBatch, Incident
from tests.conftest import START

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no storage question


def alerts(n: int, prefix: str = "A") -> list[dict]:
    return [
        {"labels": {"alertname": f"{prefix}{i}", "service": f"svc-{i % 7}", "instance": f"h{i}"}}
        for i in range(n)
    ]


@pytest.fixture
def client(platform):
    return TestClient(create_app(platform))


@pytest.fixture
def headers(platform):
    with platform.db.session() as s:
        _, secret = create_token(s, name="sender", role="ingest", at=platform.clock.now())
    return {"Authorization": f"Bearer {secret}"}


def post(client, headers, body):
    return client.post("/api/v2/alerts", content=orjson.dumps(body), headers=headers)


def progress(platform) -> list[tuple[int, int, bool]]:
    with platform.db.session() as s:
        rows = s.execute(select(InboxBatch.done, InboxBatch.count, InboxBatch.processed_at))
        return [(r.done, r.count, r.processed_at is not None) for r in rows]


def test_a_big_batch_is_processed_in_bounded_slices(client, headers, platform):
    platform.drain.budget = slices.Budget(60.0, most=12, first=12)  # at most 12 events
    assert post(client, headers, alerts(30)).status_code == 200
    sizes = []
    while (done := platform.drain.process_slice()).events:
        sizes.append(done.events)
        assert max(p[0] for p in progress(platform)) == sum(sizes)  # committed as it goes
    assert sizes == [12, 12, 6]
    assert progress(platform) == [(30, 30, True)]
    with platform.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 30
        assert s.scalar(select(func.count()).select_from(Incident)) > 0


@SQLITE_ONLY
def test_a_slice_stops_when_its_time_is_up(client, headers, platform, monkeypatch):
    import types

    from baton.runtime import drain

    ticks = iter(range(1000))  # a clock that moves 50 ms each time it is read
    fake = types.SimpleNamespace(monotonic=lambda: next(ticks) * 0.05, sleep=lambda _: None)
    monkeypatch.setattr(drain, "time", fake)
    platform.drain.budget = slices.Budget(0.1, most=40, first=40)  # segments of 10
    post(client, headers, alerts(40))
    assert platform.drain.process_slice().events == 30  # the 4th segment waits
    assert progress(platform) == [(30, 40, False)]


def test_a_restart_resumes_after_the_last_committed_slice(settings, headers, client, platform):
    platform.drain.budget = slices.Budget(60.0, most=10, first=10)  # count-bound here
    post(client, headers, alerts(25))
    platform.drain.process_slice()
    assert progress(platform) == [(10, 25, False)]
    platform.close()  # "crash" between slices: the rest is still acknowledged work
    again = Platform(settings, SimulatedClock(START)).start()
    try:
        assert again.drain.process_inbox() == 1
        assert progress(again) == [(25, 25, True)]
        with again.db.session() as s:  # nothing lost, nothing doubled
            events = list(s.scalars(select(Event)))
        assert len(events) == 25 and {e.occurrences for e in events} == {1}
    finally:
        again.close()


@SQLITE_ONLY
def test_small_batches_share_one_slice_and_keep_their_order(client, headers, platform):
    platform.drain.budget = slices.Budget(60.0, most=100)
    for i in range(5):
        post(client, headers, alerts(3, prefix=f"B{i}-"))
    done = platform.drain.process_slice()
    assert (done.events, done.finished) == (15, 5)
    assert all(p[2] for p in progress(platform))


def test_plan_takes_the_oldest_first_and_splits_by_time():
    def pending(i, count, done=0, seconds=0):
        return inbox.Pending(i, START + timedelta(seconds=seconds), "[]", count, done)

    records = {1: list(range(10)), 2: list(range(5)), 3: list(range(5))}
    waiting = [pending(1, 10, done=4), pending(2, 5, seconds=0.5), pending(3, 5, seconds=9)]
    plan = slices.plan(waiting, 9, lambda p: records[p.id])
    done = plan.cut(len(plan.segments))
    assert [(p.id, upto) for p, upto in done.progress] == [(1, 10), (2, 3)]
    assert done.events == 9 and done.finished == 1 and done.unfinished == {2}
    assert [len(s.events) for s in plan.segments] == [9]  # 6 of batch 1, 3 of batch 2
    later = slices.plan(waiting, 100, lambda p: records[p.id])
    assert len(later.segments) == 2 and later.segments[1].at == START + timedelta(seconds=9)
    stepped = slices.plan(waiting, 100, lambda p: records[p.id], step=4)
    assert [len(s.events) for s in stepped.segments] == [4, 4, 3, 4, 1]
    half = stepped.cut(2)  # time ran out after two segments: batch 2 is 2 events in
    assert [(p.id, upto) for p, upto in half.progress] == [(1, 10), (2, 2)]
    assert (half.events, half.finished) == (8, 1)


def test_the_budget_follows_the_cost_of_a_slice():
    budget = slices.Budget(0.1, most=5000, first=100)
    budget.observe(100, 1.0)  # ten times too slow: halfway down toward 10
    assert budget.events == 55
    for _ in range(20):
        budget.observe(budget.events, budget.events * 0.00001)  # cheap: grows to the cap
    assert budget.events == 5000
    budget.observe(3, 0.001)  # a short slice says nothing
    assert budget.events == 5000


def event(fingerprint: str, status: str = "firing", summary: str = "s") -> EventIn:
    return EventIn(
        source="t",
        name="HighCPU",
        service="web",
        resource=None,
        severity="warning",
        status=status,
        labels={"alertname": "HighCPU"},
        annotations={"summary": summary},
        starts_at=START,
        ends_at=None,
        fingerprint=fingerprint,
    )


def test_resends_of_a_firing_alert_take_the_fast_path(platform):
    at = START + timedelta(minutes=1)
    with platform.db.session() as s:
        assert len(store(s, [event("f1"), event("f2")], START)) == 2
    with platform.db.session() as s:  # re-sends: no change for correlation to look at
        again = [event("f1"), event("f1", summary="new"), event("f2"), event("f2", "acknowledged")]
        assert store(s, again, at) == []
    with platform.db.session() as s:
        by = {e.fingerprint: e for e in s.scalars(select(Event))}
    assert (by["f1"].occurrences, by["f1"].annotations, by["f1"].last_seen) == (
        3,
        {"summary": "new"},
        at,
    )
    assert by["f2"].occurrences == 2
    with platform.db.session() as s:  # a repeat then a resolve in one batch: both count
        changed = store(s, [event("f1"), event("f1", "resolved")], at)
        assert [(e.fingerprint, e.status, e.occurrences) for e in changed] == [
            ("f1", "resolved", 5)
        ]


@SQLITE_ONLY
def test_past_the_lag_intake_answers_503_with_retry_after(client, headers, platform):
    platform.settings.intake_max_backlog = 5
    platform.settings.metrics_public = True
    assert post(client, headers, alerts(6)).status_code == 200
    platform.drain.pressure(fresh=True)
    refused = post(client, headers, alerts(1))
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert client.get("/readyz").status_code == 503
    metrics = client.get("/metrics", headers=headers).text
    assert (
        "baton_inbox_backlog_events 6.0" in metrics and "baton_intake_backpressure 1.0" in metrics
    )
    platform.drain.process_inbox()
    platform.drain.pressure(fresh=True)
    assert post(client, headers, alerts(1)).status_code == 200
    assert client.get("/readyz").status_code == 200


@SQLITE_ONLY
def test_lag_in_seconds_also_refuses(client, headers, platform, clock):
    platform.settings.intake_max_lag_s = 30
    post(client, headers, alerts(1))
    clock.advance(timedelta(seconds=31))
    assert platform.drain.pressure(fresh=True).over
    assert post(client, headers, alerts(1)).status_code == 503


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigterm_stops_serve_in_seconds_and_the_rest_resumes(tmp_path: Path, db_url):
    """A real `baton serve` with a big batch half processed: SIGTERM ends it within 10 s
    and the next start finishes the batch, each alert once."""
    home = tmp_path / "home"
    home.mkdir()
    token, port = loadgen.make_token(home), loadgen.free_port()
    env = {"BATON_DRAIN_SLICE_EVENTS": "200", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = loadgen.start_baton(home, port, **env)
    url = f"http://127.0.0.1:{port}"
    try:
        loadgen.wait_until_up(f"{url}/healthz", proc)
        body = orjson.dumps(alerts(20) * 100)  # 20 alerts, each sent 100 times
        answer = httpx.post(
            f"{url}/api/v2/alerts",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 200
        settings = loadgen_settings(home)
        deadline = time.monotonic() + 60
        while inbox_progress(settings)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # a real server on real time: wait until a slice is committed
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        proc.wait(timeout=15)
        assert time.monotonic() - stopped < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    done, count = inbox_progress(settings)
    assert done > 0 and count == 2000
    again = loadgen.start_baton(home, port, **env)
    try:
        deadline = time.monotonic() + 120
        while inbox_progress(settings)[0] < count and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=15)
    assert inbox_progress(settings) == (2000, 2000)
    db = loadgen_db(settings)
    with db.session() as s:
        occurrences = list(s.scalars(select(Event.occurrences)))
    db.dispose()
    assert len(occurrences) == 20 and sum(occurrences) == 2000  # none lost, none doubled


def loadgen_settings(home: Path):
    from baton.runtime.settings import Settings

    return Settings(home=home)


def loadgen_db(settings):
    from baton.store.db import Database

    return Database(settings.db_url)


def inbox_progress(settings) -> tuple[int, int]:
    db = loadgen_db(settings)
    try:
        with db.session() as s:
            row = s.execute(select(func.sum(InboxBatch.done), func.sum(InboxBatch.count))).one()
        return int(row[0] or 0), int(row[1] or 0)
    finally:
        db.dispose()


def submit(platform, body: list[dict]) -> None:
    from baton.sense import receivers

    batch = receivers.alertmanager_api(orjson.dumps(body), platform.clock.now(), "alertmanager")
    platform.intake.submit(batch).result()


@pytest.mark.postgres
def test_on_postgresql_only_one_process_holds_a_slice(pg_url, tmp_path, runbooks_dir):
    from baton.runtime.settings import Settings

    settings = Settings(home=tmp_path, database_url=pg_url, runbooks_dir=runbooks_dir)
    one = Platform(settings, SimulatedClock(START)).start()
    two = Platform(settings, SimulatedClock(START))
    try:
        with one.db.session() as s:
            assert slices.lead(s, is_sqlite=False)
            with two.db.session() as other:  # a second process, while the first holds it
                assert not slices.lead(other, is_sqlite=False)
                submit(one, alerts(3))
                assert two.drain.process_slice().events == 0
        assert two.drain.process_slice().events == 3  # released at the first's commit
    finally:
        one.close()
        two.close()


@pytest.mark.postgres
def test_on_postgresql_several_processes_drain_each_alert_once(pg_url, tmp_path, runbooks_dir):
    import threading

    from baton.runtime.settings import Settings

    settings = Settings(home=tmp_path, database_url=pg_url, runbooks_dir=runbooks_dir)
    first = Platform(settings, SimulatedClock(START)).start()
    others = [Platform(settings, SimulatedClock(START)) for _ in range(2)]
    workers = [first, *others]
    for w in workers:
        w.drain.budget.events = w.drain.budget.most = 3
    try:
        for i in range(4):  # 3 alerts re-sent by every batch, 2 new ones in each
            submit(first, alerts(3, prefix="N") + alerts(2, prefix=f"R{i}-"))
        stop = threading.Event()
        threads = [threading.Thread(target=w.drain.process_until, args=(stop,)) for w in workers]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while inbox_progress(settings)[0] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        assert inbox_progress(settings) == (20, 20)
        with first.db.session() as s:
            occurrences = {e.fingerprint: e.occurrences for e in s.scalars(select(Event))}
        assert len(occurrences) == 3 + 8 and sum(occurrences.values()) == 20
    finally:
        for w in workers:
            w.close()


@pytest.mark.postgres
def test_a_sigkilled_drain_process_loses_nothing_and_doubles_nothing(
    pg_url, tmp_path, runbooks_dir
):
    """Two real `baton drain` processes on one PostgreSQL database; the first is
    SIGKILLed mid-work, the standby goes on from the last committed slice."""
    import sys

    from baton.runtime.settings import Settings

    settings = Settings(home=tmp_path, database_url=pg_url, runbooks_dir=runbooks_dir)
    feeder = Platform(settings, SimulatedClock(START)).start()
    try:
        for i in range(6):  # 3 alerts re-sent in every batch, 2 new ones in each
            submit(feeder, alerts(3, prefix="K") + alerts(2, prefix=f"S{i}-"))
    finally:
        feeder.close()
    env = {
        **os.environ,
        "BATON_HOME": str(tmp_path),
        "BATON_DATABASE_URL": pg_url,
        "BATON_RUNBOOKS_DIR": str(runbooks_dir),
        "BATON_DRAIN_SLICE_EVENTS": "3",
        "BATON_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-c", "from baton.cli import main; main()", "drain"]

    def start():
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    first = start()
    try:
        deadline = time.monotonic() + 60
        while inbox_progress(settings)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.kill()  # SIGKILL: its open slice, if any, rolls back with its connection
        first.wait(10)
        # usually killed mid-work; on a fast machine it may have finished first, and then
        # the second drain must find nothing left to do (checked below either way)
        assert inbox_progress(settings)[0] <= 30
        standby = start()
        try:
            deadline = time.monotonic() + 90
            while inbox_progress(settings)[0] < 30 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            standby.send_signal(signal.SIGTERM)
            standby.wait(15)
    finally:
        if first.poll() is None:
            first.kill()
    assert inbox_progress(settings) == (30, 30)
    db = loadgen_db(settings)
    with db.session() as s:
        occurrences = {e.fingerprint: e.occurrences for e in s.scalars(select(Event))}
    db.dispose()
    assert len(occurrences) == 3 + 12 and sum(occurrences.values()) == 30
