"""Receivers: one parser per wire format, each turning a request body into a `Batch`.

Formats: Alertmanager's API v2 (`postableAlerts`, what Prometheus sends), the
Alertmanager webhook (version "4"), Grafana alerting's webhook, PagerDuty Events API v2
and Baton's generic JSON. A *source* is a named sender with one format and, optionally,
an HMAC-SHA256 signing secret; the built-in sources cover the usual senders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from baton.sense.normalize import (
    SEVERITIES,
    EventRecord,
    SignalError,
    Status,
    at,
    batch_of,
    event_record,
    mapping,
    string_map,
    text,
    timestamp,
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


Parser = Callable[[Any, datetime, str], Batch]


def _alert(alert: dict[str, Any], where: str, now: datetime, source: str, *, sent: bool):
    """One Alertmanager-style alert; `sent` alerts (webhooks) carry status and fingerprint."""
    labels = string_map(alert, "labels", where, required=True)
    if not labels:
        raise SignalError(at(where, "labels"), "must not be empty")
    if "alertname" not in labels:
        raise SignalError(at(where, "labels"), "label 'alertname' is required")
    starts = timestamp(alert, "startsAt", where)
    ends = timestamp(alert, "endsAt", where)
    if starts and ends and ends < starts:
        raise SignalError(at(where, "endsAt"), "is before startsAt")
    text(alert, "generatorURL", where, max_len=4096)
    source_print = None
    if sent:
        status = text(alert, "status", where, required=True)
        if status not in ("firing", "resolved"):
            raise SignalError(at(where, "status"), "expected 'firing' or 'resolved'")
        source_print = text(alert, "fingerprint", where, max_len=64)
    else:
        status = "resolved" if ends is not None and ends <= now else "firing"
    return event_record(
        source=source,
        labels=labels,
        annotations=string_map(alert, "annotations", where),
        status=status,  # type: ignore[arg-type]
        starts_at=starts or now,
        ends_at=ends or now,
        fingerprint_=source_print,
    )


def alertmanager_api(payload: Any, now: datetime, source: str) -> Batch:
    """Alertmanager API v2 `postableAlerts`: resolved when endsAt is not in the future."""
    alerts = batch_of(payload, "alerts")
    return Batch(
        source,
        [
            _alert(mapping(a, f"alerts[{i}]"), f"alerts[{i}]", now, source, sent=False)
            for i, a in enumerate(alerts)
        ],
    )


def _grouped(payload: Any, now: datetime, source: str, version: str | None) -> Batch:
    body = mapping(payload, "body")
    if version is not None and body.get("version") != version:
        raise SignalError("version", f"expected {version!r}, got {body.get('version')!r}")
    alerts = body.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise SignalError("alerts", "expected a non-empty array of alerts")
    events = [
        _alert(mapping(a, f"alerts[{i}]"), f"alerts[{i}]", now, source, sent=True)
        for i, a in enumerate(alerts)
    ]
    return Batch(source, events, text(body, "groupKey", "", max_len=2048))


def alertmanager_webhook(payload: Any, now: datetime, source: str) -> Batch:
    """Alertmanager's webhook receiver payload, version "4": one notification group."""
    return _grouped(payload, now, source, "4")


def grafana(payload: Any, now: datetime, source: str) -> Batch:
    """Grafana alerting's webhook contact point (Alertmanager-shaped alerts)."""
    return _grouped(payload, now, source, None)


_PD_ACTIONS: dict[str, Status] = {
    "trigger": "firing",
    "acknowledge": "acknowledged",
    "resolve": "resolved",
}


def _details(value: Any) -> dict[str, str]:
    """PagerDuty custom_details as annotations: strings kept, anything else as JSON."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        return {"details": orjson.dumps(value).decode()}
    return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in value.items()}


def pagerduty(payload: Any, now: datetime, source: str) -> Batch:
    """PagerDuty Events API v2: trigger, acknowledge or resolve one alert by dedup_key.

    A trigger without a dedup_key gets Baton's fingerprint, which the reply hands back as
    the dedup_key to acknowledge or resolve it later, as PagerDuty does.
    """
    body = mapping(payload, "body")
    action = text(body, "event_action", "", required=True)
    if action not in _PD_ACTIONS:
        raise SignalError("event_action", "expected 'trigger', 'acknowledge' or 'resolve'")
    dedup_key = text(body, "dedup_key", "", max_len=64)
    if action != "trigger":
        if dedup_key is None:
            raise SignalError("dedup_key", f"is required to {action}")
        labels = {"alertname": "pagerduty", "dedup_key": dedup_key}
        event = event_record(
            source=source,
            labels=labels,
            annotations={},
            status=_PD_ACTIONS[action],
            starts_at=now,
            ends_at=now,
            fingerprint_=dedup_key,
            name=dedup_key,
        )
        return Batch(source, [event])
    if "payload" not in body:
        raise SignalError("payload", "is required to trigger")
    detail = mapping(body["payload"], "payload")
    summary = text(detail, "summary", "payload", required=True)
    severity = text(detail, "severity", "payload", required=True)
    if severity not in SEVERITIES:
        raise SignalError("payload.severity", f"expected one of {', '.join(SEVERITIES)}")
    extra = {k: text(detail, k, "payload", max_len=255) for k in ("component", "group", "class")}
    where = text(detail, "source", "payload", required=True, max_len=255)
    name = (extra["class"] or summary or "")[:256]
    labels = {"alertname": name, "source": where or "", "severity": severity or ""}
    labels.update({k: v for k, v in extra.items() if v})
    event = event_record(
        source=source,
        labels=labels,
        annotations={"summary": summary or "", **_details(detail.get("custom_details"))},
        status="firing",
        starts_at=timestamp(detail, "timestamp", "payload") or now,
        ends_at=None,
        fingerprint_=dedup_key,
        name=name,
        service=extra["component"] or extra["group"],
        resource=where,
        severity=severity,
    )
    return Batch(source, [event])


_GENERIC_FIELDS = {
    "name",
    "service",
    "resource",
    "severity",
    "status",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "fingerprint",
}


def _generic_event(item: dict[str, Any], where: str, now: datetime, source: str) -> EventRecord:
    unknown = sorted(set(item) - _GENERIC_FIELDS)
    if unknown:
        raise SignalError(at(where, unknown[0]), "unknown field")
    name = text(item, "name", where, required=True, max_len=256) or ""
    service = text(item, "service", where, max_len=128)
    status = text(item, "status", where) or "firing"
    if status not in ("firing", "resolved"):
        raise SignalError(at(where, "status"), "expected 'firing' or 'resolved'")
    labels = {"alertname": name, **string_map(item, "labels", where)}
    if service:
        labels.setdefault("service", service)
    return event_record(
        source=source,
        labels=labels,
        annotations=string_map(item, "annotations", where),
        status=status,  # type: ignore[arg-type]
        starts_at=timestamp(item, "starts_at", where) or now,
        ends_at=timestamp(item, "ends_at", where),
        fingerprint_=text(item, "fingerprint", where, max_len=64),
        name=name,
        service=service,
        resource=text(item, "resource", where, max_len=256),
        severity=text(item, "severity", where, max_len=32),
    )


def generic(payload: Any, now: datetime, source: str) -> Batch:
    """Baton's own JSON events, for anything that is not an alert manager."""
    items = batch_of(payload, "events")
    return Batch(
        source,
        [
            _generic_event(mapping(e, f"events[{i}]"), f"events[{i}]", now, source)
            for i, e in enumerate(items)
        ],
    )


PARSERS: dict[str, Parser] = {
    "alertmanager-api": alertmanager_api,
    "alertmanager-webhook": alertmanager_webhook,
    "grafana": grafana,
    "pagerduty": pagerduty,
    "generic": generic,
}


def parse(source: str, config: SourceConfig, payload: Any, now: datetime) -> Batch:
    """Validate and normalise one request body from `source`; SignalError names the field."""
    return PARSERS[config.format](payload, now, source)
