"""What placing one alert costs as the number of open incidents grows.

A fixed probe workload (faults on a small application: a service and the services that
need it alert, plus alerts of a service the catalogue does not know) is correlated
beside 10, 100, 1,000, ... background incidents that are open and recently touched (so
a correlator that scanned the open incidents would score every one of them). The
background incidents are on services of their own (half of them known to the
catalogue, on their own nodes; the rest unknown, with alert words shared with the
probe's), opened earlier than the correlation window, as on a large estate where many
incidents stay open for hours. The catalogue is the same for every size, so only the
number of open incidents changes. The figures are the CPU time per probe alert spent
in `correlate()` (process time, so the other programs on a shared machine do not blur
it; SQLite runs in-process, so the database's work is counted) and the wall time, and
the ratio of the largest size's CPU cost to the smallest's.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from baton.correlate.candidates import CandidateIndex
from baton.correlate.config import parse_config
from baton.correlate.grouping import tokens
from baton.correlate.incidents import correlate
from baton.correlate.topology import ServiceDef, Topology, upsert_services
from baton.kernel.clock import SimulatedClock
from baton.runtime.settings import Settings
from baton.store.db import Database
from baton.store.migrate import upgrade
from baton.store.models import Event, Incident

SIZES = (10, 100, 1000, 3000)
ROUNDS = 12  # probe faults per size
BATCH = 5  # alerts correlated together
CONFIG = {"window_s": 900, "impact_matchers": [['severity=~"critical|error"']]}
PROBE_APP = {  # service -> what it needs (a small shop; its names mean nothing here)
    "edge": ["front"],
    "front": ["api"],
    "api": ["orders", "users"],
    "orders": ["db", "bus"],
    "users": ["db"],
    "bus": [],
    "worker": ["bus", "db"],
    "db": [],
}


def catalogue(background: int) -> list[ServiceDef]:
    """The probe application on three nodes in one zone with a shared DNS, and the
    background's known services on nodes of their own."""
    defs = [
        ServiceDef("zone-a", kind="zone"),
        ServiceDef("dns", kind="dns", shared=True),
        *(ServiceDef(f"node-{i}", kind="node", zone="zone-a") for i in range(3)),
        *(
            ServiceDef(name, depends_on=tuple(deps), hosts=(f"node-{i % 3}",))
            for i, (name, deps) in enumerate(PROBE_APP.items())
        ),
    ]
    nodes = max(1, background // 40)
    defs += [ServiceDef(f"bg-node-{i}", kind="node") for i in range(nodes)]
    defs += [
        ServiceDef(f"bg-{i}", hosts=(f"bg-node-{i % nodes}",)) for i in range(0, background, 2)
    ]
    return defs


def _event(name: str, service: str, at: datetime, labels: dict[str, str], n: int) -> Event:
    return Event(
        source="bench",
        fingerprint=f"{service}-{name}-{n}",
        name=name,
        service=service,
        severity=labels.get("severity", "error"),
        status="firing",
        labels={"alertname": name, "service": service, **labels},
        annotations={"summary": f"{name} on {service}"},
        starts_at=at,
        first_seen=at,
        last_seen=at,
    )


def seed_background(session: Any, count: int, now: datetime) -> list[int]:
    """`count` open incidents, one alert each, opened 40 to 100 minutes ago."""
    words = CandidateIndex(session, now, timedelta(minutes=15))
    ids = []
    for i in range(count):
        opened = now - timedelta(minutes=40 + i % 60)
        service = f"bg-{i}" if i % 2 == 0 else f"legacy-{i}"  # odd ones: not catalogued
        name = ("HighErrorRate", "HighLatency", "DiskFull", "ProcessDown")[i % 4]
        event = _event(name, service, opened, {"job": service, "team": "ops"}, i)
        inc = Incident(
            title=f"{name} on {service}",
            status="open",
            severity="error",
            origin_service=service,
            services=[service],
            grouping=[],
            opened_at=opened,
            updated_at=now,
        )
        session.add(inc)
        session.flush()
        event.incident_id, event.entity = inc.id, f"service:{service}"
        session.add(event)
        words.add_words(inc.id, tokens(name, event.labels, event.annotations))
        ids.append(inc.id)
    session.flush()
    return ids


def probe_batches(rounds: int, seed: int) -> list[list[tuple[str, str, dict[str, str]]]]:
    """Per round: a fault on one probe service, then what needs it, then an alert of an
    uncatalogued service; in batches of BATCH alerts."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    names = list(PROBE_APP)
    out = []
    for r in range(rounds):
        root = rng.choice(names)
        hit = [root, *(s for s in names if root in PROBE_APP[s])]
        alerts = [("HighErrorRate", s, {"severity": "error"}) for s in hit]
        alerts += [("HighLatency", s, {"severity": "error"}) for s in hit]
        alerts.append(("HighErrorRate", f"legacy-probe-{r}", {"job": "legacy", "team": "ops"}))
        out.append(alerts)
    return out


def measure(size: int, background: int, seed: int, rounds: int = ROUNDS) -> dict[str, Any]:
    """Mean correlate() time per probe alert beside `size` open background incidents."""
    cfg = parse_config(CONFIG)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as home:
        clock = SimulatedClock(start)
        url = Settings(home=Path(home)).db_url
        upgrade(url)  # the schema as migrations make it (indexes included)
        db = Database(url)
        try:
            with db.session() as s:
                upsert_services(s, catalogue(background))
                bg = seed_background(s, size, clock.now())
            graph = Topology({d.name: d for d in catalogue(background)})
            spent = wall = 0.0
            alerts = n = 0
            for round_alerts in probe_batches(rounds, seed):
                with db.session() as s:  # the background stays recently touched
                    s.execute(
                        update(Incident).where(Incident.id.in_(bg)).values(updated_at=clock.now())
                    )
                for i in range(0, len(round_alerts), BATCH):
                    with db.session() as s:
                        events = []
                        for name, service, labels in round_alerts[i : i + BATCH]:
                            n += 1
                            events.append(_event(name, service, clock.now(), labels, n))
                        s.add_all(events)
                        s.flush()
                        t0, w0 = time.process_time(), time.perf_counter()
                        correlate(s, events, graph, clock.now(), cfg)
                        spent += time.process_time() - t0
                        wall += time.perf_counter() - w0
                        alerts += len(events)
                    clock.advance(timedelta(seconds=20))
                clock.advance(timedelta(minutes=16))  # the next fault is a new incident
        finally:
            db.dispose()
    return {
        "open_incidents": size,
        "alerts": alerts,
        "cpu_ms_per_alert": round(spent / alerts * 1e3, 3),
        "wall_ms_per_alert": round(wall / alerts * 1e3, 3),
    }


def correlate_scale(
    sizes: tuple[int, ...], seed: int, progress: Any, rounds: int = ROUNDS
) -> dict[str, Any]:
    background = max(sizes)
    rows = []
    for i, size in enumerate(sizes):
        rows.append(measure(size, background, seed, rounds))
        progress(i + 1, len(sizes))
    first, last = rows[0]["cpu_ms_per_alert"], rows[-1]["cpu_ms_per_alert"]
    return {
        "sizes": rows,
        "catalogue_services": len(catalogue(background)),
        "cost_ratio_largest_vs_smallest": round(last / first, 3) if first else None,
        "alerts_per_s_smallest": round(1e3 / first) if first else None,
        "alerts_per_s_largest": round(1e3 / last) if last else None,
    }
