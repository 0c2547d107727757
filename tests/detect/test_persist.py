"""Detector state survives a restart: no second learning period; a bad file is ignored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from baton.detect import persist
from baton.detect.live import LiveDetector
from baton.detect.metrics import DetectorConfig
from baton.sense.loglines import LogLine
from baton.sense.samples import Series

T0 = 1_772_438_400.0
LABELS = {"job": "checkout", "instance": "web-1:9100"}


def series(start: int, values: list[float]) -> Series:
    ts = [T0 + 60.0 * (start + i) for i in range(len(values))]
    return Series("latency_ms", dict(LABELS), ts, values)


def at(offset: int) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def lines(start: int, n: int, message: str, level: str = "info") -> list[LogLine]:
    return [LogLine(T0 + start + i, "web-1", "api", level, message.format(i)) for i in range(n)]


def test_a_restored_detector_judges_at_once_and_matches_the_original(tmp_path: Path) -> None:
    normal = list(50 + np.random.default_rng(0).normal(0, 2, 300))
    learnt = LiveDetector()
    assert learnt.metrics([series(0, normal)]) == []
    learnt.logs(lines(0, 150, "request {} served"), at(150))
    path = tmp_path / "state" / "detectors.npz"
    persist.save(learnt, path)

    restored = persist.load(LiveDetector(), path)
    assert restored is not learnt and restored.series == 1
    spike = series(300, [50, 51, 400, 50])
    (found,) = restored.metrics([spike])
    (same,) = learnt.metrics([spike])
    assert found.name == "MetricAnomaly" and found.annotations == same.annotations
    # a fresh detector would still be in its learning period
    assert LiveDetector().metrics([spike]) == []
    # the template miner and its line count came back too: a new error template is news
    (news,) = restored.logs(lines(160, 1, "disk {} full", "error"), at(161))
    assert news.name == "NewLogTemplate"
    assert restored.logs(lines(170, 1, "request 7 served"), at(171)) == []


def test_a_bad_or_foreign_state_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "detectors.npz"
    fresh = LiveDetector()
    assert persist.load(fresh, path) is fresh  # no file: nothing to load
    path.write_bytes(b"not a zip")
    assert persist.load(fresh, path) is fresh
    other = LiveDetector(detector=DetectorConfig(learn=50))
    other.metrics([series(0, [1.0, 2.0, 3.0])])
    persist.save(other, path)
    assert persist.load(fresh, path) is fresh  # saved under another configuration
    assert not path.with_name("detectors.npz.partial").exists()


def test_the_platform_saves_on_close_and_a_new_one_loads(settings, clock) -> None:
    from baton.runtime.platform import Platform

    first = Platform(settings, clock).start()
    try:
        first.watch.detector.metrics([series(0, list(np.linspace(40, 60, 300)))])
    finally:
        first.close()
    assert settings.watch_state_path.is_file()
    second = Platform(settings, clock).start()
    try:
        assert second.watch.detector.series == 1
    finally:
        second.close()
    quiet = Platform(settings.model_copy(update={"watch_save_s": 0.0}), clock).start()
    try:
        assert quiet.watch.detector.series == 0  # persistence off: nothing loaded
    finally:
        quiet.close()
