"""`baton demo --watch`: the estate's metrics and logs feed live detection, and a fault
is found as an anomaly before the threshold alert fires."""

from __future__ import annotations

from baton.harness.demo import Demo, DemoPlan
from baton.runtime.settings import Settings


def test_a_fault_is_detected_before_its_threshold_alert(tmp_path):
    seen: list[tuple[str, dict]] = []
    plan = DemoPlan(seed=1, watch=True, watch_history_min=90, scenarios=["disk_full"])
    demo = Demo(Settings(home=tmp_path), plan, observer=lambda k, d: seen.append((k, d)))
    try:
        assert demo.platform.watch.detector.series > 100  # the history was watched
        assert demo.platform.watch.findings == 0  # and raised nothing
        demo.inject("disk_full")
        demo.run_for(15, humans=True)
        summary = demo.summary()
    finally:
        demo.close()
    assert summary["anomaly_events"] >= 1
    assert summary["faults_detected_before_alert"] == 1
    anomalies = [d for k, d in seen if k == "anomaly"]
    assert any("disk_pct" in d["summary"] for d in anomalies)
