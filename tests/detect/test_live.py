"""Live detection: metric points and log lines in, findings as Events that join
incidents; bounded memory; one bad series never stops the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from baton.api.app import create_app
from baton.detect.live import LiveConfig, LiveDetector
from baton.govern.rbac import create_token
from baton.kernel.clock import SimulatedClock
from baton.sense.loglines import LogLine
from baton.sense.samples import Series, encode_write_request
from baton.store.models import AuditRecord, Event, Incident

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()
LABELS = {"job": "checkout", "instance": "web-1:9100"}


def history(n: int = 300, step: float = 60.0, start: float = T0, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    ts = [start + i * step for i in range(n)]
    return Series("latency_ms", dict(LABELS), ts, list(50 + rng.normal(0, 2, n)))


def after(series: Series, values: list[float], step: float = 60.0) -> Series:
    t = series.timestamps[-1]
    return Series(
        series.metric, dict(series.labels), [t + step * (i + 1) for i in range(len(values))], values
    )


def test_spike_after_learning_fires_once_with_explanation_then_resolves():
    d = LiveDetector()
    past = history()
    assert d.metrics([past]) == []  # the learning period and calm points say nothing
    (found,) = d.metrics([after(past, [50, 51, 400, 50])])
    assert (found.name, found.status, found.service, found.resource) == (
        "MetricAnomaly",
        "firing",
        "checkout",
        "web-1:9100",
    )
    assert float(found.annotations["score"]) >= 0.6
    assert (
        float(found.annotations["expected_high"]) < 400 < float(found.annotations["deviation"]) * 10
    )
    assert found.starts_at == datetime.fromtimestamp(past.timestamps[-1] + 180, UTC)
    calm = after(past, [50.0] * 4 + list(50 + np.random.default_rng(1).normal(0, 2, 40)))
    calm.timestamps = [t + 240 for t in calm.timestamps]
    (resolved,) = d.metrics([calm])
    assert resolved.status == "resolved" and resolved.fingerprint == found.fingerprint


def test_nothing_fires_inside_the_learning_period():
    d = LiveDetector()
    short = history(n=100)
    short.values[-1] = 10_000.0
    assert d.metrics([short]) == []


def test_one_bad_series_does_not_stop_the_others_and_memory_is_bounded():
    d = LiveDetector(LiveConfig(max_series=50))
    bad = Series("broken", {}, [1.0, 2.0], [1.0])  # misaligned arrays
    many = [Series("m", {"i": str(i)}, [T0, T0 + 60], [1.0, float("nan")]) for i in range(200)]
    past = history()
    d.metrics([bad, *many, past])
    assert d.series == 50  # the least recently seen were forgotten
    (found,) = d.metrics([bad, after(past, [50, 900])])
    assert found.name == "MetricAnomaly"


def lines(
    service: str, n: int, start: float, level: str = "info", text: str = "GET /x 200"
) -> list:
    return [LogLine(start + i * 0.5, "web-1", service, level, f"{text} {i}") for i in range(n)]


def test_a_new_error_template_after_learning_is_a_log_anomaly():
    d = LiveDetector(LiveConfig(log_learn=100))
    now = datetime.fromtimestamp(T0 + 50, UTC)
    early = lines("api", 1, T0, "error", "boot failed")  # inside learning: not raised
    assert d.logs(early + lines("api", 100, T0), now) == []
    found = d.logs(
        [
            LogLine(T0 + 51, "web-1", "api", "err", "disk /var/lib full on db-1"),
            LogLine(T0 + 52, "web-1", "api", "info", "a new but harmless line"),
            LogLine(T0 + 53, "web-1", "api", "err", "disk /srv/data full on db-2"),  # same template
        ],
        now,
    )
    assert [(e.name, e.annotations["level"]) for e in found] == [("NewLogTemplate", "err")]
    assert "disk <*> full on <*>" in found[0].annotations["summary"]


def test_a_template_rate_burst_and_silence_are_log_rate_changes():
    cfg = LiveConfig(log_learn=10**9)  # only rates here
    d = LiveDetector(cfg)
    w = cfg.rate_window_s
    for k in range(20):  # 20 quiet windows of 12 lines each
        t = T0 + k * w
        assert d.logs(lines("api", 12, t, text="retrying"), datetime.fromtimestamp(t, UTC)) == []
    burst = lines("api", 12, T0 + 20 * w, text="retrying")
    burst += [
        LogLine(T0 + 20 * w + 1, "web-1", "api", "warning", f"retrying {i}") for i in range(200)
    ]
    found = d.logs(burst, datetime.fromtimestamp(T0 + 21 * w + 1, UTC))
    assert [(e.name, e.labels["change"]) for e in found] == [("LogRateChange", "burst")]
    d2 = LiveDetector(LiveConfig(log_learn=10**9, rate_min_count=5))
    for k in range(30):
        t = T0 + k * w
        d2.logs(lines("db", 60, t, text="checkpoint"), datetime.fromtimestamp(t, UTC))
    silent = d2.logs([], datetime.fromtimestamp(T0 + 32 * w, UTC))
    assert [e.labels["change"] for e in silent] == ["silence"]


# --- through the platform: the heartbeat raises the findings as events -----------------
def test_the_detection_job_raises_an_event_that_joins_an_incident(platform):
    clock: SimulatedClock = platform.clock
    past = history(start=clock.now().timestamp() - 300 * 60)
    platform.watch.metrics.add([past])
    assert platform.scheduler.tick().results["detection"] == 0
    platform.watch.metrics.add([after(past, [50, 2000])])
    clock.advance(timedelta(seconds=120))
    assert platform.scheduler.tick().results["detection"] == 1
    with platform.db.session() as s:
        (event,) = s.scalars(select(Event).where(Event.source == "baton.detect"))
        assert event.incident_id is not None and s.get(Incident, event.incident_id)
        assert event.annotations["component"] in ("deviation", "rare value", "level shift")
        audit = s.scalars(select(AuditRecord).where(AuditRecord.action == "detect.MetricAnomaly"))
        assert [a.actor_kind for a in audit] == ["ai"]


@pytest.fixture
def ingest_client(platform):
    with platform.db.session() as s:
        _, secret = create_token(s, name="shipper", role="ingest", at=platform.clock.now())
    client = TestClient(create_app(platform))
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


def test_the_intake_endpoints_feed_the_watch(platform, ingest_client):
    series = history(n=3)
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    r = ingest_client.post("/api/v1/write", content=encode_write_request([series]), headers=headers)
    assert r.status_code == 204
    bad = ingest_client.post("/api/v1/write", content=b"garbage", headers=headers)
    assert bad.status_code == 400 and "snappy" in bad.text
    r = ingest_client.post(
        "/api/v1/metrics",
        content="timestamp,value\n1,2\n2,3\n",
        headers={"Content-Type": "text/csv"},
    )
    assert r.json() == {"series": 1, "points": 2}
    r = ingest_client.post(
        "/api/v1/metrics", content="timestamp,value\n1,x\n", headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 400 and "csv line 2" in r.text
    body = b"\n".join(orjson.dumps({"message": f"m {i}", "level": "info"}) for i in range(3))
    assert ingest_client.post("/api/v1/logs", content=body).json() == {"accepted": 3}
    waiting = {s.metric: len(s.values) for s in platform.watch.metrics.take()}
    assert waiting == {"latency_ms": 3, "value": 2} and len(platform.watch.logs.take()) == 3


def test_out_of_order_points_and_a_million_point_series_are_handled():
    d = LiveDetector()
    past = history()
    d.metrics([past])
    backwards = Series(past.metric, dict(past.labels), [T0, T0 + 1.0], [9000.0, 9000.0])
    assert d.metrics([backwards]) == []  # stamped before their predecessor: not scored
    n = 1_000_000
    big = Series("big", {}, (T0 + np.arange(n) * 10.0).tolist(), np.sin(np.arange(n) / 50).tolist())
    d.metrics([big])  # bounded state whatever the length
    assert d.series == 2
