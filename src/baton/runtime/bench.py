"""The bench registry: `baton bench NAME` runs one and reports JSON figures.

Benches measure speed and quality; tests never time anything. Later issues register
their own benches here with `@bench("name")`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import quantiles
from typing import Any

from baton.runtime.clock import SimulatedClock
from baton.runtime.settings import Settings

Progress = Callable[[int, int], None]


@dataclass
class BenchArgs:
    seed: int = 1
    data: Path | None = None
    size: int | None = None
    progress: Progress = field(default=lambda done, total: None)


BENCHES: dict[str, tuple[str, Callable[[BenchArgs], dict[str, Any]]]] = {}


def bench(name: str, description: str) -> Callable[[Callable[[BenchArgs], dict[str, Any]]], Any]:
    def register(
        fn: Callable[[BenchArgs], dict[str, Any]],
    ) -> Callable[[BenchArgs], dict[str, Any]]:
        BENCHES[name] = (description, fn)
        return fn

    return register


def run(name: str, args: BenchArgs) -> dict[str, Any]:
    if name not in BENCHES:
        raise KeyError(f"unknown bench {name!r}; available: {', '.join(sorted(BENCHES))}")
    return {"bench": name, **BENCHES[name][1](args)}


def _alert_batch(i: int, batch: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "labels": {
                "alertname": f"Bench{(i * batch + j) % 97}",
                "service": f"svc-{j % 25}",
                "instance": f"host-{(i * batch + j) % 400}",
                "severity": "warning",
            },
            "annotations": {"summary": "bench"},
            "startsAt": now.isoformat(),
        }
        for j in range(batch)
    ]


@bench("pipeline", "in-process ingest (sense + correlate, durable commit) on a temp SQLite")
def pipeline_bench(args: BenchArgs) -> dict[str, Any]:
    from baton.runtime.platform import Platform

    batches, batch = (args.size or 200), 50
    with tempfile.TemporaryDirectory() as home:
        clock = SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC))
        platform = Platform(Settings(home=Path(home)), clock).start()
        latencies = []
        started = time.perf_counter()
        for i in range(batches):
            t0 = time.perf_counter()
            platform.ingest_alertmanager(_alert_batch(i, batch, clock.now()))
            latencies.append((time.perf_counter() - t0) * 1000)
            clock.advance(timedelta(seconds=1))
            args.progress(i + 1, batches)
        elapsed = time.perf_counter() - started
        platform.close()
    cuts = quantiles(latencies, n=100)
    return {
        "alerts": batches * batch,
        "batch": batch,
        "alerts_per_s": round(batches * batch / elapsed),
        "p50_batch_ms": round(cuts[49], 2),
        "p99_batch_ms": round(cuts[98], 2),
    }


@bench("demo", "the --once demo: wall time and how well the platform handled the faults")
def demo_bench(args: BenchArgs) -> dict[str, Any]:
    from baton.runtime.demo import Demo, DemoPlan

    with tempfile.TemporaryDirectory() as home:
        demo = Demo(Settings(home=Path(home)), DemoPlan(seed=args.seed))
        try:
            return demo.run_once()
        finally:
            demo.close()


@bench("correlate", "sandbox alert storms: noise reduction, pairwise F1, origin accuracy")
def correlate_bench(args: BenchArgs) -> dict[str, Any]:
    """Three storms (seeds seed..seed+2, or --size storms). noise_reduction is
    1 - incidents opened / alert notifications posted (every POSTed alert, re-sends and
    the HA pair's duplicates included); noise_reduction_distinct divides by distinct alert
    episodes instead. See docs/benchmarks.md."""
    from baton.runtime.storm import correlate_storms

    return correlate_storms(args.seed, args.size or 3, args.progress)


NOOP_RUNBOOK = """\
id: bench-noop
title: Does nothing, for measuring the engine
owner: team-bench
risk: low
reversible: false
match: {alertnames: [BenchNeverFires]}
steps:
  - name: nothing
    action: wait
    with: {seconds: 0}
autonomy: {default: auto}
"""


@bench("runbooks", "no-op executions through decide and the in-process backend")
def runbooks_bench(args: BenchArgs) -> dict[str, Any]:
    from baton.govern.audit import Actor
    from baton.runtime.clock import SystemClock
    from baton.runtime.platform import Platform
    from baton.store.models import Execution

    runs = args.size or 300
    with tempfile.TemporaryDirectory() as home:
        books = Path(home) / "runbooks"
        books.mkdir()
        (books / "bench-noop.yaml").write_text(NOOP_RUNBOOK)
        (books / "policy.yaml").write_text("veto_window_s: 0\n")
        platform = Platform(Settings(home=Path(home), runbooks_dir=books), SystemClock()).start()
        actor = Actor("bench", "human")
        started = time.perf_counter()
        for i in range(runs):
            platform.request_run("bench-noop", {}, actor, f"bench run {i}")
            args.progress(i + 1, runs)
        platform.backend.drain(timeout=600)
        elapsed = time.perf_counter() - started
        with platform.db.session() as s:
            rows = s.query(Execution).all()
            waits = [
                (e.steps[0].started_at - e.created_at).total_seconds() * 1000
                for e in rows
                if e.steps
            ]
            succeeded = sum(1 for e in rows if e.status == "succeeded")
        platform.close()
    cuts = quantiles(waits, n=100)
    return {
        "backend": "in-process",
        "executions": runs,
        "succeeded": succeeded,
        "executions_per_s": round(runs / elapsed, 1),
        "p50_ms": round(cuts[49], 2),
        "p99_ms": round(cuts[98], 2),
    }
