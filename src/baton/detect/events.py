"""Findings as Events: a metric anomaly, a log anomaly or a capacity forecast joins
correlation like any alert.

The labels carry what correlation groups on (service, instance, the series or template);
the annotations carry the explanation a person reads (score, expected range, deviation,
which component fired), so the incident says why the AI raised it.
"""

from __future__ import annotations

from datetime import datetime

from baton.detect.forecast import Crossing
from baton.detect.metrics import Finding
from baton.detect.templates import Match, template_id
from baton.sense.normalize import EventIn

SOURCE = "baton.detect"


def _event(
    name: str,
    labels: dict[str, str],
    extra: dict[str, str],
    severity: str,
    at: datetime,
    annotations: dict[str, str],
    status: str = "firing",
) -> EventIn:
    return EventIn(
        source=SOURCE,
        name=name,
        service=(labels.get("service") or "")[:128] or None,  # what the events table keeps
        resource=(labels.get("instance") or "")[:256] or None,
        severity=severity,
        status=status,
        labels={**labels, "alertname": name, **extra},
        annotations=annotations,
        starts_at=at,
        ends_at=None,
        fingerprint="",
    )


def metric_anomaly(metric: str, labels: dict[str, str], at: datetime, finding: Finding) -> EventIn:
    """One anomalous point of one series (``labels`` identify the series)."""
    return _event(
        "MetricAnomaly",
        labels,
        {"metric": metric},
        "error" if finding.score >= 0.9 else "warning",
        at,
        {
            "summary": f"{metric} anomalous: {finding.explain()}",
            "score": f"{finding.score:.3f}",
            "expected_low": f"{finding.low:.6g}",
            "expected_high": f"{finding.high:.6g}",
            "deviation": f"{finding.deviation:.2f}",
            "component": finding.component,
            "model": finding.model,
        },
    )


def metric_resolved(metric: str, labels: dict[str, str], at: datetime) -> EventIn:
    """The series has been calm again for a while: its anomaly event resolves."""
    summary = f"{metric} back within its expected range"
    return _event(
        "MetricAnomaly", labels, {"metric": metric}, "info", at, {"summary": summary}, "resolved"
    )


def log_anomaly(
    labels: dict[str, str], at: datetime, match: Match, level: str, message: str
) -> EventIn:
    """A template never seen before at an error-like level."""
    return _event(
        "NewLogTemplate",
        labels,
        {"template_id": match.template_id},
        "error",
        at,
        {
            "summary": f"new {level} log template: {match.template[:200]}",
            "example": message[:500],
            "level": level,
        },
    )


def capacity_forecast(
    metric: str, labels: dict[str, str], at: datetime, crossing: Crossing, horizon_s: float
) -> EventIn | None:
    """A forecast Event when the crossing is expected within the horizon, else None."""
    if crossing.expected is None or crossing.expected > horizon_s:
        return None
    return _event(
        "CapacityForecast",
        labels,
        {"metric": metric},
        "warning",
        at,
        {
            "summary": f"{metric} on {labels.get('instance', '?')}: {crossing.describe()}",
            "threshold": f"{crossing.threshold:g}",
            "expected_s": f"{crossing.expected:.0f}",
        },
    )


def log_rate_change(
    labels: dict[str, str],
    at: datetime,
    template: str,
    kind: str,
    count: int,
    expected: float,
    window_s: float,
) -> EventIn:
    """A template's rate far from its recent rate: a ``burst`` or a ``silence``."""
    return _event(
        "LogRateChange",
        labels,
        {"template_id": template_id(template), "change": kind},
        "warning",
        at,
        {
            "summary": (
                f"log {kind}: {count} lines in {window_s:g} s where about {expected:.1f} "
                f"were expected: {template[:200]}"
            ),
            "count": str(count),
            "expected": f"{expected:.2f}",
        },
    )
