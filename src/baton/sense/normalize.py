"""Turn source payloads into `EventIn`, the one shape the pipeline understands.

Validation errors name the offending field (e.g. `alerts[3].labels`) so a sender can
fix its payload; a batch is accepted or rejected whole.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SEVERITIES = ("critical", "error", "warning", "info")
_SEVERITY_ALIASES = {
    "page": "critical",
    "high": "critical",
    "major": "error",
    "minor": "warning",
    "low": "info",
    "none": "info",
}


class SignalError(ValueError):
    """A payload that cannot be accepted; `field` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class EventIn(BaseModel):
    """A normalised signal before storage."""

    model_config = ConfigDict(frozen=True)

    source: str
    name: str
    service: str | None
    resource: str | None
    severity: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str


def fingerprint(labels: dict[str, str]) -> str:
    """Stable identity of an alert: a hash of its sorted label set."""
    return hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def normalise_severity(value: str | None) -> str:
    severity = (value or "warning").lower()
    severity = _SEVERITY_ALIASES.get(severity, severity)
    return severity if severity in SEVERITIES else "warning"


class AlertmanagerAlert(BaseModel):
    """One entry of Alertmanager's API v2 `postableAlerts` (also Prometheus's payload)."""

    model_config = ConfigDict(extra="ignore")

    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str | None = None

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        if "alertname" not in labels:
            raise ValueError("label 'alertname' is required")
        return labels


class GenericEvent(BaseModel):
    """Baton's own JSON format for anything that is not an alert manager."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    service: str | None = Field(default=None, max_length=128)
    resource: str | None = Field(default=None, max_length=256)
    severity: str = "warning"
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    fingerprint: str | None = Field(default=None, max_length=64)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _first_error(exc: ValidationError, prefix: str) -> SignalError:
    err = exc.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    return SignalError(f"{prefix}{loc}" or "body", err["msg"])


def _batch(payload: Any, key: str) -> list[Any]:
    if isinstance(payload, dict) and key in payload:
        payload = payload[key]
    if not isinstance(payload, list):
        raise SignalError("body", f"expected a JSON array of {key} (or an object with '{key}')")
    if not payload:
        raise SignalError("body", f"no {key} in the batch")
    return payload


def from_alertmanager(payload: Any, now: datetime, source: str = "alertmanager") -> list[EventIn]:
    """Normalise an Alertmanager v2 alert list; resolved when endsAt is not in the future."""
    out: list[EventIn] = []
    for i, item in enumerate(_batch(payload, "alerts")):
        try:
            alert = AlertmanagerAlert.model_validate(item)
        except ValidationError as exc:
            raise _first_error(exc, f"alerts[{i}]") from None
        labels = dict(alert.labels)
        ends = _aware(alert.endsAt)
        status: Literal["firing", "resolved"] = "resolved" if ends and ends <= now else "firing"
        out.append(
            EventIn(
                source=source,
                name=labels["alertname"],
                service=labels.get("service") or labels.get("job"),
                resource=labels.get("instance") or labels.get("host"),
                severity=normalise_severity(labels.get("severity")),
                status=status,
                labels=labels,
                annotations=dict(alert.annotations),
                starts_at=_aware(alert.startsAt) or now,
                ends_at=ends if status == "resolved" else None,
                fingerprint=fingerprint(labels),
            )
        )
    return out


def from_generic(payload: Any, now: datetime) -> list[EventIn]:
    """Normalise Baton's generic JSON events."""
    out: list[EventIn] = []
    for i, item in enumerate(_batch(payload, "events")):
        try:
            event = GenericEvent.model_validate(item)
        except ValidationError as exc:
            raise _first_error(exc, f"events[{i}]") from None
        labels = {"alertname": event.name, **event.labels}
        if event.service:
            labels.setdefault("service", event.service)
        out.append(
            EventIn(
                source="generic",
                name=event.name,
                service=event.service,
                resource=event.resource,
                severity=normalise_severity(event.severity),
                status=event.status,
                labels=labels,
                annotations=event.annotations,
                starts_at=_aware(event.starts_at) or now,
                ends_at=_aware(event.ends_at) if event.status == "resolved" else None,
                fingerprint=event.fingerprint or fingerprint(labels),
            )
        )
    return out
