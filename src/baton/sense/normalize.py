"""The one shape every signal takes: `EventIn`, and its serialised form `EventRecord`.

Receivers run on the ingest hot path, so they emit each event as a plain dict
(`EventRecord`) that goes straight into the durable inbox; processing reads it back as
`EventIn`. Errors (`SignalError`) name the offending field (e.g. `alerts[3].labels`) so a
sender can fix its payload; a batch is accepted or rejected whole.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict

import orjson
from pydantic import BaseModel, ConfigDict, model_validator

SEVERITIES = ("critical", "error", "warning", "info")
_SEVERITY_ALIASES = {
    "page": "critical",
    "high": "critical",
    "major": "error",
    "minor": "warning",
    "low": "info",
    "none": "info",
}
Status = Literal["firing", "resolved", "acknowledged"]


class SignalError(ValueError):
    """A payload that cannot be accepted; `field` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class FieldLimits:
    """What one event may carry. The defaults are far above what Prometheus, Alertmanager
    or Grafana send (a rule with 30 labels is already unusual); they exist so a hostile or
    broken sender cannot make Baton store, hash and correlate megabytes per alert."""

    max_labels: int = 128
    max_label_key_bytes: int = 256
    max_label_value_bytes: int = 16 * 1024
    max_annotations_bytes: int = 64 * 1024  # keys and values of all annotations together


DEFAULT_LIMITS = FieldLimits()
# Control characters corrupt logs, terminals and label matching; PostgreSQL refuses NUL
# in text, and a lone surrogate cannot be stored at all. Annotations are prose, so they
# may keep tab and newlines.
_LABEL_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def check_fields(
    labels: dict[str, str], annotations: dict[str, str], where: str, limits: FieldLimits
) -> None:
    """Refuse labels and annotations past `limits` or holding control characters; the
    same rule for every receiver, so a sender learns it once."""
    if len(labels) > limits.max_labels:
        raise SignalError(f"{where}.labels", f"more than {limits.max_labels} labels")
    for key, value in labels.items():
        name = f"{where}.labels.{key[:64]}"
        if _bytes(key) > limits.max_label_key_bytes:
            raise SignalError(name, f"key longer than {limits.max_label_key_bytes} bytes")
        if _bytes(value) > limits.max_label_value_bytes:
            raise SignalError(name, f"value longer than {limits.max_label_value_bytes} bytes")
        if _LABEL_CONTROL.search(key) or _LABEL_CONTROL.search(value):
            raise SignalError(name, "control characters are not allowed in labels")
    total = 0
    for key, value in annotations.items():
        total += _bytes(key) + _bytes(value)
        name = f"{where}.annotations.{key[:64]}"
        if _TEXT_CONTROL.search(key) or _TEXT_CONTROL.search(value):
            raise SignalError(name, "control characters other than tab and newline")
    if total > limits.max_annotations_bytes:
        raise SignalError(
            f"{where}.annotations", f"larger than {limits.max_annotations_bytes} bytes in all"
        )


def check_range(
    starts: datetime | None, ends: datetime | None, where: str, names: tuple[str, str]
) -> None:
    """An end before its start is a broken sender, whatever the format calls the two
    fields (`names`: start, end)."""
    if starts is not None and ends is not None and ends < starts:
        raise SignalError(f"{where}.{names[1]}", f"is before {names[0]}")


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

    @model_validator(mode="before")
    @classmethod
    def _labels_fingerprint(cls, data: Any) -> Any:
        """The source's fingerprint when it gave one, else a hash of the labels."""
        if isinstance(data, dict) and not data.get("fingerprint"):
            data = {**data, "fingerprint": fingerprint(data.get("labels") or {})}
        return data


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
    fingerprint: str | None  # None: EventIn derives it from the labels


def fingerprint(labels: dict[str, str]) -> str:
    """Stable identity of an alert: a hash of its sorted label set."""
    return hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def normalise_severity(value: str | None) -> str:
    severity = (value or "warning").lower()
    severity = _SEVERITY_ALIASES.get(severity, severity)
    return severity if severity in SEVERITIES else "warning"


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
    where: str = "event",
    limits: FieldLimits = DEFAULT_LIMITS,
) -> EventRecord:
    """Build one event; names, service and resource default to the usual labels.

    Values longer than what is stored, or past `limits`, are refused here, while the
    sender still waits for its answer: an acknowledged batch must never fail later in
    processing.
    """
    check_fields(labels, annotations, where, limits)
    record: EventRecord = {
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
        "fingerprint": _fits(fingerprint_),
    }
    for key, limit in STORED_LENGTHS.items():
        value = record[key]  # type: ignore[literal-required]
        if value is not None and len(value) > limit:
            raise SignalError(f"{where}.{key}", f"is longer than {limit} characters")
    return record


def _fits(source_fingerprint: str | None) -> str | None:
    """A source's own fingerprint, or a stable digest of one too long to store (PagerDuty
    dedup keys may have 255 characters)."""
    if source_fingerprint is None or len(source_fingerprint) <= 64:
        return source_fingerprint
    return "sha256:" + hashlib.sha256(source_fingerprint.encode()).hexdigest()[:48]


# what the events table keeps of each (store/models.py Event)
STORED_LENGTHS = {"source": 32, "name": 256, "service": 128, "resource": 256, "fingerprint": 64}


def events_from_json(data: bytes | str) -> list[EventIn]:
    """The inbox's stored records back as `EventIn`s for processing."""
    return [EventIn.model_validate(record) for record in orjson.loads(data)]
