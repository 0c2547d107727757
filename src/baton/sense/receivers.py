"""Receivers: one parser per wire format, each turning a request body into a `Batch`.

Formats: Alertmanager's API v2 (`postableAlerts`, what Prometheus sends), the
Alertmanager webhook (version "4"), Grafana alerting's webhook, PagerDuty Events API v2
and Baton's generic JSON. Bodies are decoded and type-checked in one pass by msgspec
against the structs below (no model object per alert in Python); the error names the
field. A *source* is a named sender with one format and, optionally, an HMAC-SHA256
signing secret; the built-in sources cover the usual senders.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import Meta, Struct, field
from pydantic import BaseModel, ConfigDict, Field

from baton.kernel.errors import Invalid
from baton.kernel.shape import check_shape
from baton.sense.normalize import (
    DEFAULT_LIMITS,
    EventRecord,
    FieldLimits,
    SignalError,
    Status,
    check_range,
    event_record,
    fingerprint,
)

Format = Literal["alertmanager-api", "alertmanager-webhook", "grafana", "pagerduty", "generic"]


class SourceConfig(BaseModel):
    """A named sender: the format it posts and, optionally, the secret it signs with."""

    model_config = ConfigDict(extra="forbid")

    format: Format
    signing_secret: str | None = Field(
        default=None, description="Name of the HMAC-SHA256 key (BATON_SECRET_<NAME> or file)"
    )
    signature_header: str = "X-Baton-Signature"


BUILTIN_SOURCES: dict[str, SourceConfig] = {
    "alertmanager": SourceConfig(format="alertmanager-api"),
    "alertmanager-webhook": SourceConfig(format="alertmanager-webhook"),
    "grafana": SourceConfig(format="grafana"),
    "pagerduty": SourceConfig(format="pagerduty"),
    "generic": SourceConfig(format="generic"),
}


def lookup_source(name: str, configured: dict[str, SourceConfig]) -> SourceConfig:
    """The source called `name` (configured ones override built-ins); KeyError if unknown."""
    found = configured.get(name) or BUILTIN_SOURCES.get(name)
    if found is None:
        known = ", ".join(sorted({*BUILTIN_SOURCES, *configured}))
        raise KeyError(f"unknown source {name!r}; known sources: {known}")
    return found


@dataclass
class Batch:
    """One accepted request: its events, and the sender's group key when it has one."""

    source: str
    events: list[EventRecord]
    group_key: str | None = None


# --- wire formats ------------------------------------------------------------------------
Short = Annotated[str, Meta(max_length=256)]
Text = Annotated[str, Meta(max_length=4096)]


class Alert(Struct, kw_only=True):
    """Alertmanager's `postableAlert`."""

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: Text | None = None


class SentAlert(Alert, kw_only=True):
    """An alert in a notification: it says whether it fires and has its fingerprint."""

    status: Literal["firing", "resolved"]
    fingerprint: Annotated[str, Meta(max_length=64)] | None = None


class AlertList(Struct):
    alerts: list[Alert]


class Notification(Struct):
    """Alertmanager webhook (version "4") and Grafana webhook bodies."""

    alerts: list[SentAlert]
    version: str = ""
    groupKey: Annotated[str, Meta(max_length=2048)] | None = None


class PagerDutyPayload(Struct):
    summary: Annotated[str, Meta(min_length=1, max_length=1024)]
    source: Annotated[str, Meta(min_length=1, max_length=255)]
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: datetime | None = None
    component: Short | None = None
    group: Short | None = None
    class_: Short | None = field(default=None, name="class")
    # any JSON, kept undecoded: its shape is checked apart (`_details`)
    custom_details: msgspec.Raw = field(default_factory=lambda: msgspec.Raw(b"null"))


class PagerDutyEvent(Struct):
    event_action: Literal["trigger", "acknowledge", "resolve"]
    routing_key: str | None = None
    dedup_key: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    payload: PagerDutyPayload | None = None


class GenericEvent(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=256)]
    service: Annotated[str, Meta(max_length=128)] | None = None
    resource: Short | None = None
    severity: Annotated[str, Meta(max_length=32)] = "warning"
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    fingerprint: Annotated[str, Meta(max_length=64)] | None = None


class GenericBatch(Struct):
    events: list[GenericEvent]


_PATH_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\.\.\.\]")


def _field(path: str, body: bytes, root: str) -> str:
    """msgspec's `$[0].labels[...]` as `alerts[0].labels.<key>`, the key found in the body."""
    if path == "$":
        return "body"
    name = root if path.startswith("$[") else ""
    node: Any = None
    if "[...]" in path:
        try:
            node = orjson.loads(body)
        except orjson.JSONDecodeError:  # too deep to walk again: name the map, not the key
            node = None
    for match in _PATH_PART.finditer(path):
        key, index = match.group(1), match.group(2)
        if key is not None:
            name = f"{name}.{key}" if name else key
            node = node.get(key) if isinstance(node, dict) else None
        elif index is not None:
            name += f"[{index}]"
            node = node[int(index)] if isinstance(node, list) else None
        else:  # a map value: name the first key whose value is not a string
            bad = [k for k, v in node.items() if not isinstance(v, str)] if node else []
            name += f".{bad[0]}" if bad else "[...]"
    return name


def _decode(decoder: msgspec.json.Decoder, body: bytes, root: str) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        place = _field(where.rstrip("`") or "$", body, root)
        missing = re.match(r"Object (missing required|contains unknown) field `(.+)`", message)
        if missing:
            place = f"{place}.{missing.group(2)}" if place != "body" else missing.group(2)
            message = "is required" if missing.group(1).startswith("missing") else "unknown field"
        raise SignalError(place, message) from None
    except msgspec.DecodeError as exc:
        raise SignalError("body", f"malformed JSON: {exc}" if body else "empty body") from None
    except RecursionError:  # skipping an unchecked value (custom_details) nests in C too
        raise SignalError("body", "nested deeper than 1,000 levels") from None


def _utc(value: datetime | None) -> datetime | None:
    """UTC, or None for Go's zero time (what Alertmanager sends for "not set")."""
    if value is None or value.year == 1:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _alert_event(
    alert: Alert,
    where: str,
    now: datetime,
    source: str,
    sent: SentAlert | None,
    limits: FieldLimits,
) -> EventRecord:
    labels = alert.labels
    if not labels.get("alertname"):
        raise SignalError(f"{where}.labels", "label 'alertname' is required (non-empty)")
    starts, ends = _utc(alert.startsAt), _utc(alert.endsAt)
    check_range(starts, ends, where, ("startsAt", "endsAt"))
    if sent is None:
        status: Status = "resolved" if ends is not None and ends <= now else "firing"
    else:
        status = sent.status
    return event_record(
        source=source,
        labels=labels,
        annotations=alert.annotations,
        status=status,
        starts_at=starts or now,
        ends_at=ends or now,
        fingerprint_=sent.fingerprint if sent else None,
        where=where,
        limits=limits,
    )


def _non_empty(items: list[Any], where: str) -> list[Any]:
    if not items:
        raise SignalError(where, "no alerts or events in the batch")
    return items


_ALERTS = msgspec.json.Decoder(list[Alert] | AlertList)


def alertmanager_api(
    body: bytes, now: datetime, source: str, limits: FieldLimits = DEFAULT_LIMITS
) -> Batch:
    """Alertmanager API v2 `postableAlerts`: resolved when endsAt is not in the future."""
    decoded = _decode(_ALERTS, body, "alerts")
    alerts = _non_empty(decoded.alerts if isinstance(decoded, AlertList) else decoded, "alerts")
    return Batch(
        source,
        [_alert_event(a, f"alerts[{i}]", now, source, None, limits) for i, a in enumerate(alerts)],
    )


_NOTIFICATION = msgspec.json.Decoder(Notification)


def _notification(
    body: bytes, now: datetime, source: str, version: str | None, limits: FieldLimits
) -> Batch:
    note = _decode(_NOTIFICATION, body, "alerts")
    if version is not None and note.version != version:
        raise SignalError("version", f"expected {version!r}, got {note.version!r}")
    events = [
        _alert_event(a, f"alerts[{i}]", now, source, a, limits)
        for i, a in enumerate(_non_empty(note.alerts, "alerts"))
    ]
    return Batch(source, events, note.groupKey)


def alertmanager_webhook(
    body: bytes, now: datetime, source: str, limits: FieldLimits = DEFAULT_LIMITS
) -> Batch:
    """Alertmanager's webhook receiver payload, version "4": one notification group."""
    return _notification(body, now, source, "4", limits)


def grafana(body: bytes, now: datetime, source: str, limits: FieldLimits = DEFAULT_LIMITS) -> Batch:
    """Grafana alerting's webhook contact point (Alertmanager-shaped alerts)."""
    return _notification(body, now, source, None, limits)


_PAGERDUTY = msgspec.json.Decoder(PagerDutyEvent)
_PD_STATUS: dict[str, Status] = {"acknowledge": "acknowledged", "resolve": "resolved"}


def _details(raw: msgspec.Raw) -> dict[str, str]:
    """PagerDuty custom_details as annotations: strings kept, anything else as JSON.

    Any JSON may come here, so its shape is bounded before it is decoded into Python
    objects or written back out."""
    try:
        value = msgspec.json.decode(raw)  # exact integers, however big: checked next
        check_shape(value, "payload.custom_details")
    except RecursionError:
        raise SignalError("payload.custom_details", "nested too deeply") from None
    except Invalid as exc:
        field = exc.field or "payload.custom_details"
        raise SignalError(field, str(exc).removeprefix(f"{field}: ")) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        return {"details": orjson.dumps(value).decode()}
    return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in value.items()}


def pagerduty(
    body: bytes, now: datetime, source: str, limits: FieldLimits = DEFAULT_LIMITS
) -> Batch:
    """PagerDuty Events API v2: trigger, acknowledge or resolve one alert by dedup_key.

    A trigger without a dedup_key gets Baton's fingerprint, which the reply hands back as
    the dedup_key to acknowledge or resolve it later, as PagerDuty does. Mapping:
    class (else summary) -> name, component (else group) -> service, source -> resource.
    """
    event = _decode(_PAGERDUTY, body, "body")
    if event.event_action != "trigger":
        if event.dedup_key is None:
            raise SignalError("dedup_key", f"is required to {event.event_action}")
        labels = {"alertname": "pagerduty", "dedup_key": event.dedup_key}
        record = event_record(
            source=source,
            labels=labels,
            annotations={},
            status=_PD_STATUS[event.event_action],
            starts_at=now,
            ends_at=now,
            fingerprint_=event.dedup_key,
            name=event.dedup_key[:256],
            where="body",
            limits=limits,
        )
        return Batch(source, [record])
    detail = event.payload
    if detail is None:
        raise SignalError("payload", "is required to trigger")
    name = (detail.class_ or detail.summary)[:256]
    labels = {"alertname": name, "source": detail.source, "severity": detail.severity}
    extra = {"component": detail.component, "group": detail.group, "class": detail.class_}
    labels.update({k: v for k, v in extra.items() if v})
    record = event_record(
        source=source,
        labels=labels,
        annotations={"summary": detail.summary, **_details(detail.custom_details)},
        status="firing",
        starts_at=_utc(detail.timestamp) or now,
        ends_at=None,
        fingerprint_=event.dedup_key or fingerprint(labels),
        name=name,
        service=detail.component or detail.group,
        resource=detail.source,
        severity=detail.severity,
        where="payload",
        limits=limits,
    )
    return Batch(source, [record])


_GENERIC = msgspec.json.Decoder(list[GenericEvent] | GenericBatch)


def _generic_event(
    item: GenericEvent, now: datetime, source: str, where: str, limits: FieldLimits
) -> EventRecord:
    labels = {"alertname": item.name, **item.labels}
    if item.service:
        labels.setdefault("service", item.service)
    check_range(_utc(item.starts_at), _utc(item.ends_at), where, ("starts_at", "ends_at"))
    return event_record(
        source=source,
        labels=labels,
        annotations=item.annotations,
        status=item.status,
        starts_at=_utc(item.starts_at) or now,
        ends_at=_utc(item.ends_at),
        fingerprint_=item.fingerprint,
        name=item.name,
        service=item.service,
        resource=item.resource,
        severity=item.severity,
        where=where,
        limits=limits,
    )


def generic(body: bytes, now: datetime, source: str, limits: FieldLimits = DEFAULT_LIMITS) -> Batch:
    """Baton's own JSON events, for anything that is not an alert manager."""
    decoded = _decode(_GENERIC, body, "events")
    items = decoded.events if isinstance(decoded, GenericBatch) else decoded
    items = _non_empty(items, "events")
    return Batch(
        source,
        [_generic_event(e, now, source, f"events[{i}]", limits) for i, e in enumerate(items)],
    )


Parser = Callable[[bytes, datetime, str, FieldLimits], Batch]
PARSERS: dict[str, Parser] = {
    "alertmanager-api": alertmanager_api,
    "alertmanager-webhook": alertmanager_webhook,
    "grafana": grafana,
    "pagerduty": pagerduty,
    "generic": generic,
}


def parse(
    source: str,
    config: SourceConfig,
    body: bytes,
    now: datetime,
    limits: FieldLimits = DEFAULT_LIMITS,
) -> Batch:
    """Validate and normalise one request body from `source`; SignalError names the field."""
    return PARSERS[config.format](body, now, source, limits)
