"""Live detection: ingested metric points and log lines in, findings as Events out.

One `LiveDetector` keeps a `SeriesState` per metric series, a template miner per service
and a rate tracker per (service, template), each in a least-recently-used table of fixed
capacity, so memory stays bounded however many series and templates arrive (a series
pushed out starts a fresh learning period if it comes back). What it raises:

- ``MetricAnomaly`` — the highest-scoring point of a batch whose score reaches
  ``DetectorConfig.fire_level``; it resolves once the series has scored below half that
  for ``resolve_after`` points;
- ``NewLogTemplate`` — a template never seen before from its service, at an error-like
  level, once the service has been heard for ``log_learn`` lines;
- ``LogRateChange`` — a template's count in a window of ``rate_window_s`` far above
  (a burst) or below (it fell silent) what its recent windows lead one to expect,
  judged in Poisson units: (count - mean) / sqrt(mean + 1).

A series that fails (a bad batch) is logged and skipped; the others go on.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from baton.detect import events
from baton.detect.metrics import DetectorConfig, SeriesState
from baton.detect.templates import TemplateMiner, is_novel_error
from baton.sense.loglines import LogLine
from baton.sense.normalize import EventIn
from baton.sense.samples import Series

log = logging.getLogger("baton.detect")


@dataclass(frozen=True)
class LiveConfig:
    """The one configuration of live detection (the metric detector keeps its own)."""

    max_series: int = 5_000  # ~13 KB each
    max_services: int = 2_000
    templates_per_service: int = 5_000
    max_rates: int = 50_000
    resolve_after: int = 20
    log_learn: int = 100
    rate_window_s: float = 60.0
    rate_learn_windows: int = 10
    rate_mean_rate: float = 0.1
    rate_z: float = 6.0
    rate_min_count: int = 10


class _Bounded(OrderedDict[Any, Any]):
    """A least-recently-used table: `touch` returns the entry, making it if absent."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def touch(self, key: Any, make: Any, *args: Any) -> Any:
        found = self.get(key)
        if found is None:
            if len(self) >= self.capacity:
                self.popitem(last=False)
            found = self[key] = make(*args)
        else:
            self.move_to_end(key)
        return found


class _Rate:
    """Counts of one template per window, and the running mean of past windows."""

    __slots__ = ("count", "labels", "level", "mean", "template", "window", "windows")

    def __init__(self, window: int, template: str, labels: dict[str, str]) -> None:
        self.window, self.count, self.mean, self.windows = window, 0, 0.0, 0
        self.level, self.template, self.labels = "info", template, labels


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def series_labels(s: Series) -> dict[str, str]:
    """What correlation groups on: the series' labels, with Prometheus' ``job`` standing
    in for a missing ``service``."""
    labels = dict(s.labels)
    if "service" not in labels and "job" in labels:
        labels["service"] = labels["job"]
    return labels


class LiveDetector:
    def __init__(
        self, config: LiveConfig | None = None, detector: DetectorConfig | None = None
    ) -> None:
        self.config = config or LiveConfig()
        self.detector = detector or DetectorConfig()
        self._series = _Bounded(self.config.max_series)  # key -> [SeriesState, firing, calm]
        self._miners = _Bounded(self.config.max_services)  # service -> [miner, lines seen]
        self._rates = _Bounded(self.config.max_rates)  # (service, template id) -> _Rate

    @property
    def series(self) -> int:
        return len(self._series)

    @property
    def learnt(self) -> bool:
        """Whether the detector holds any state worth keeping."""
        return bool(self._series or self._miners)

    # --- metrics -------------------------------------------------------------------------
    def metrics(self, batch: list[Series]) -> list[EventIn]:
        out: list[EventIn] = []
        for s in batch:
            try:
                out.extend(self._one_series(s))
            except Exception:  # one bad series never stops the others
                log.exception("series skipped", extra={"metric": s.metric})
        return out

    def _one_series(self, s: Series) -> list[EventIn]:
        entry = self._series.touch(s.key, lambda: [SeriesState(self.detector), False, 0])
        state: SeriesState = entry[0]
        scored = state.update(np.asarray(s.timestamps, float), np.asarray(s.values, float))
        if not len(scored.score):
            return []
        fire = self.detector.fire_level
        labels = series_labels(s)
        i = int(np.argmax(scored.score))
        if scored.score[i] >= fire:
            entry[1], entry[2] = True, 0
            finding = scored.finding(i)
            return [events.metric_anomaly(s.metric, labels, _at(s.timestamps[i]), finding)]
        if not entry[1]:
            return []
        below = scored.score < fire / 2
        if below.all():
            entry[2] += len(below)
        else:  # only the calm points since the last loud one count
            entry[2] = int(np.argmin(below[::-1]))
        if entry[2] < self.config.resolve_after:
            return []
        entry[1], entry[2] = False, 0
        return [events.metric_resolved(s.metric, labels, _at(s.timestamps[-1]))]

    # --- logs ----------------------------------------------------------------------------
    def logs(self, lines: list[LogLine], now: datetime) -> list[EventIn]:
        out: list[EventIn] = []
        cfg = self.config
        for line in lines:
            service = line.service or line.host
            entry = self._miners.touch(
                service, lambda: [TemplateMiner(cfg.templates_per_service), 0]
            )
            entry[1] += 1
            match = entry[0].add(line.message)
            labels = (
                {"service": service, "instance": line.host} if line.host else {"service": service}
            )
            if entry[1] > cfg.log_learn and is_novel_error(match, line.level):
                out.append(
                    events.log_anomaly(labels, _at(line.ts), match, line.level, line.message)
                )
            window = int(line.ts // cfg.rate_window_s)
            rate = self._rates.touch(
                (service, match.template_id), _Rate, window, match.template, labels
            )
            if window > rate.window:
                out.extend(self._close(rate, window))
            rate.count += rate.window == window
            rate.level = line.level
        horizon = int(now.timestamp() // cfg.rate_window_s)
        for rate in list(self._rates.values()):  # windows that ended with no line since
            if horizon > rate.window:
                out.extend(self._close(rate, horizon))
        return out

    def _close(self, rate: _Rate, window: int) -> list[EventIn]:
        """Judge the window that ended and, if no line came since, the first silent one;
        then account the silent windows up to ``window``."""
        a = self.config.rate_mean_rate
        found = self._judge(rate, rate.count)
        rate.mean = rate.count if rate.windows == 0 else rate.mean + a * (rate.count - rate.mean)
        rate.windows += 1
        silent = min(window - rate.window - 1, 1000)
        if silent > 0:
            found += self._judge(rate, 0)
            rate.mean *= (1 - a) ** silent
            rate.windows += silent
        rate.window, rate.count = window, 0
        return found

    def _judge(self, rate: _Rate, count: int) -> list[EventIn]:
        cfg, mean = self.config, rate.mean
        if rate.windows < cfg.rate_learn_windows:
            return []
        z = (count - mean) / math.sqrt(mean + 1.0)
        if count >= cfg.rate_min_count and z >= cfg.rate_z:
            return [self._rate_event(rate, count, mean, "burst")]
        if mean >= cfg.rate_min_count and z <= -cfg.rate_z:
            return [self._rate_event(rate, count, mean, "silence")]
        return []

    def _rate_event(self, rate: _Rate, count: int, mean: float, kind: str) -> EventIn:
        at = _at((rate.window + 1) * self.config.rate_window_s)
        return events.log_rate_change(
            rate.labels, at, rate.template, kind, count, mean, self.config.rate_window_s
        )


def snapshot(detector: LiveDetector) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The detector's state as JSON-ready data and stacked arrays (see ``persist``)."""
    series, stacks = [], {}
    for (metric, labels), (state, firing, calm) in detector._series.items():
        series.append([metric, [list(p) for p in labels], bool(firing), int(calm)])
        for name, array in state.arrays().items():
            stacks.setdefault(name, []).append(array)
    miners = [
        [service, miner.to_json(), seen] for service, (miner, seen) in detector._miners.items()
    ]
    rates = [
        [key[0], key[1], r.window, r.count, r.mean, r.windows, r.level, r.template, r.labels]
        for key, r in detector._rates.items()
    ]
    meta = {"detector": repr(detector.detector), "series": series, "miners": miners}
    meta["rates"] = rates
    return meta, {name: np.stack(arrays) for name, arrays in stacks.items()}


def restore(detector: LiveDetector, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Load a ``snapshot`` taken under the same detector configuration."""
    if meta.get("detector") != repr(detector.detector):
        raise ValueError("the state was saved under another detector configuration")
    cfg = detector.config
    rows = meta["series"]
    for i in range(max(len(rows) - cfg.max_series, 0), len(rows)):
        metric, labels, firing, calm = rows[i]
        state = SeriesState.from_arrays(detector.detector, {n: a[i] for n, a in arrays.items()})
        key = (str(metric), tuple((str(k), str(v)) for k, v in labels))
        detector._series.touch(key, lambda s=state, f=firing, c=calm: [s, bool(f), int(c)])
    for service, data, seen in meta["miners"][-cfg.max_services :]:
        miner = TemplateMiner.from_json(data, capacity=cfg.templates_per_service)
        detector._miners.touch(service, lambda m=miner, n=seen: [m, int(n)])
    for service, tid, window, count, mean, windows, level, template, labels in meta["rates"]:
        rate = _Rate(int(window), str(template), {str(k): str(v) for k, v in labels.items()})
        rate.count, rate.mean, rate.windows, rate.level = (
            int(count),
            float(mean),
            int(windows),
            level,
        )
        detector._rates.touch((service, tid), lambda r=rate: r)
