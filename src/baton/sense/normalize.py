"""The one shape every signal takes (`EventIn`) and the checks receivers share.

Receivers run on the ingest hot path, so they validate with plain functions rather than
a model per alert, and emit each event as a plain dict (`EventRecord`, the serialised
form of `EventIn`) that goes straight into the durable inbox. Errors name the offending
field (e.g. `alerts[3].labels`) so a sender can fix its payload; a batch is accepted or
rejected whole.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

import orjson
from pydantic import BaseModel, ConfigDict

SEVERITIES = ("critical", "error", "warning", "info")
_SEVERITY_ALIASES = {
    "page": "critical",
    "high": "critical",
    "major": "error",
    "minor": "warning",
    "low": "info",
    "none": "info",
}
# Go's zero time: Alertmanager and Grafana send it for "not set".
_ZERO_YEAR = 1
Status = Literal["firing", "resolved", "acknowledged"]


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
    status: Status
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str


class EventRecord(TypedDict):
    """`EventIn` as receivers emit it and the inbox stores it (JSON-ready)."""

    source: str
    name: str
    service: str | None
    resource: str | None
    severity: str
    status: Status
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


# --- field checks shared by every receiver ---------------------------------------------
def at(where: str, key: str) -> str:
    """The name of field `key` inside `where` ("" is the top level of the body)."""
    return f"{where}.{key}" if where else key


def mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SignalError(where or "body", "expected a JSON object")
    return value


def text(
    obj: dict[str, Any], key: str, where: str, *, required: bool = False, max_len: int = 1024
) -> str | None:
    """The string at obj[key]; None when absent (or an error naming `where.key`)."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise SignalError(at(where, key), "is required")
        return None
    if not isinstance(value, str):
        raise SignalError(at(where, key), "expected a string")
    if len(value) > max_len:
        raise SignalError(at(where, key), f"longer than {max_len} characters")
    return value


def string_map(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> dict:
    """A {str: str} object such as labels or annotations."""
    value = obj.get(key)
    if value is None:
        if required:
            raise SignalError(at(where, key), "is required")
        return {}
    if not isinstance(value, dict):
        raise SignalError(at(where, key), "expected an object of string values")
    for name, item in value.items():
        if not isinstance(item, str):
            raise SignalError(f"{at(where, key)}.{name}", "expected a string")
    return value


def timestamp(obj: dict[str, Any], key: str, where: str) -> datetime | None:
    """An RFC 3339 time, made UTC; None when absent or Go's zero time."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SignalError(at(where, key), "expected an RFC 3339 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SignalError(at(where, key), f"not an RFC 3339 timestamp: {value[:40]!r}") from None
    if parsed.year == _ZERO_YEAR:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def batch_of(payload: Any, key: str) -> list[Any]:
    """The list of items in a batch: a bare array, or an object holding it under `key`."""
    if isinstance(payload, dict) and key in payload:
        payload = payload[key]
    if not isinstance(payload, list):
        raise SignalError("body", f"expected a JSON array of {key} (or an object with '{key}')")
    if not payload:
        raise SignalError("body", f"no {key} in the batch")
    return payload


def event_record(
    *,
    source: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    status: Status,
    starts_at: datetime,
    ends_at: datetime | None,
    fingerprint_: str | None = None,
    name: str | None = None,
    service: str | None = None,
    resource: str | None = None,
    severity: str | None = None,
) -> EventRecord:
    """Build one event; names, service and resource default to the usual labels."""
    return {
        "source": source,
        "name": name or labels["alertname"],
        "service": service or labels.get("service") or labels.get("job"),
        "resource": resource or labels.get("instance") or labels.get("host"),
        "severity": normalise_severity(severity or labels.get("severity")),
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "starts_at": starts_at,
        "ends_at": ends_at if status == "resolved" else None,
        "fingerprint": fingerprint_ or fingerprint(labels),
    }


def events_from_json(data: bytes | str) -> list[EventIn]:
    """The inbox's stored records back as `EventIn`s for processing."""
    return [EventIn.model_validate(record) for record in orjson.loads(data)]
