"""A detected anomaly becomes an Event that correlation stores like any alert."""

from __future__ import annotations

import numpy as np

from baton.detect import events
from baton.detect.metrics import score_series
from baton.detect.templates import TemplateMiner, is_novel_error
from baton.store.models import Event


def test_metric_and_log_findings_flow_through_the_drain(platform) -> None:
    rng = np.random.default_rng(5)
    ts = 1.7e9 + 60.0 * np.arange(1200)
    xs = 10 + rng.normal(0, 0.5, len(ts))
    xs[1000] = 40
    scored = score_series(ts, xs)
    [at] = np.flatnonzero(scored.score >= 0.5)
    assert at == 1000
    now = platform.clock.now()
    labels = {"service": "checkout", "instance": "db-1"}
    metric = events.metric_anomaly("disk_io_ms", labels, now, scored.finding(at))

    miner = TemplateMiner()
    match = miner.add("Failed to open /var/lib/db/17.wal: No space left on device")
    assert is_novel_error(match, "ERROR")
    log = events.log_anomaly(labels, now, match, "ERROR", "Failed to open ...")

    assert platform.drain.ingest([metric, log])["accepted"] == 2
    with platform.db.session() as s:
        stored = {e.name: e for e in s.query(Event).all()}
    assert set(stored) == {"MetricAnomaly", "NewLogTemplate"}
    assert stored["MetricAnomaly"].source == "baton.detect"
    assert "expected" in stored["MetricAnomaly"].annotations["summary"]
    assert stored["NewLogTemplate"].labels["template_id"] == match.template_id
