"""Findings as Events: a metric anomaly or a log anomaly joins correlation like any alert.

The labels carry what correlation groups on (service, instance, the series or template);
the annotations carry the explanation a person reads (score, expected range, deviation,
which component fired), so the incident says why the AI raised it.
"""

from __future__ import annotations

from datetime import datetime

from baton.detect.forecast import Crossing
from baton.detect.metrics import Finding
from baton.detect.templates import Match
from baton.sense.normalize import EventIn

SOURCE = "baton.detect"


def _severity(score: float) -> str:
    return "error" if score >= 0.9 else "warning"


def metric_anomaly(metric: str, labels: dict[str, str], at: datetime, finding: Finding) -> EventIn:
    """One anomalous point of one series (``labels`` identify the series)."""
    tags = {**labels, "alertname": "MetricAnomaly", "metric": metric}
    return EventIn(
        source=SOURCE,
        name="MetricAnomaly",
        service=labels.get("service"),
        resource=labels.get("instance"),
        severity=_severity(finding.score),
        status="firing",
        labels=tags,
        annotations={
            "summary": f"{metric} anomalous: {finding.explain()}",
            "score": f"{finding.score:.3f}",
            "expected_low": f"{finding.low:.6g}",
            "expected_high": f"{finding.high:.6g}",
            "deviation": f"{finding.deviation:.2f}",
            "component": finding.component,
            "model": finding.model,
        },
        starts_at=at,
        ends_at=None,
        fingerprint="",
    )


def log_anomaly(
    labels: dict[str, str], at: datetime, match: Match, level: str, message: str
) -> EventIn:
    """A template never seen before at an error-like level."""
    tags = {**labels, "alertname": "NewLogTemplate", "template_id": match.template_id}
    return EventIn(
        source=SOURCE,
        name="NewLogTemplate",
        service=labels.get("service"),
        resource=labels.get("instance"),
        severity="error",
        status="firing",
        labels=tags,
        annotations={
            "summary": f"new {level} log template: {match.template[:200]}",
            "example": message[:500],
            "level": level,
        },
        starts_at=at,
        ends_at=None,
        fingerprint="",
    )


def capacity_forecast(
    metric: str, labels: dict[str, str], at: datetime, crossing: Crossing, horizon_s: float
) -> EventIn | None:
    """A forecast Event when the crossing is expected within the horizon, else None."""
    if crossing.expected is None or crossing.expected > horizon_s:
        return None
    tags = {**labels, "alertname": "CapacityForecast", "metric": metric}
    return EventIn(
        source=SOURCE,
        name="CapacityForecast",
        service=labels.get("service"),
        resource=labels.get("instance"),
        severity="warning",
        status="firing",
        labels=tags,
        annotations={
            "summary": f"{metric} on {labels.get('instance', '?')}: {crossing.describe()}",
            "threshold": f"{crossing.threshold:g}",
            "expected_s": f"{crossing.expected:.0f}",
        },
        starts_at=at,
        ends_at=None,
        fingerprint="",
    )
