"""Ingest: every receiver's format, signatures, bad input, the inbox and retention."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from baton.api.app import create_app
from baton.govern.rbac import create_token
from baton.sense.normalize import SignalError
from baton.sense.receivers import PARSERS, SourceConfig
from baton.sense.signature import sign
from baton.store.models import Event, InboxBatch
from tests.conftest import START


@pytest.fixture
def client(platform):
    return TestClient(create_app(platform))


@pytest.fixture
def headers(platform):
    with platform.db.session() as s:
        _, secret = create_token(s, name="sender", role="ingest", at=platform.clock.now())
    return {"Authorization": f"Bearer {secret}"}


def stored(platform):
    """(inbox batches, events) in the database."""
    with platform.db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(InboxBatch)),
            list(s.scalars(select(Event).order_by(Event.id))),
        )


def post(client, headers, path, body, **extra):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=content, headers={**headers, **extra})


def webhook(status="firing", version="4", fingerprint="a1b2c3d4e5f60718"):
    return {
        "version": version,
        "groupKey": '{}:{service="checkout"}',
        "status": status,
        "receiver": "baton",
        "groupLabels": {"service": "checkout"},
        "commonLabels": {"service": "checkout"},
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "HighLatency", "service": "checkout", "instance": "web-1"},
                "annotations": {"summary": "p99 above 2s"},
                "startsAt": "2026-03-02T07:55:00.123456789Z",
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-03-02T08:00:00Z",
                "generatorURL": "http://prometheus/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def test_alertmanager_api_is_acknowledged_then_processed(client, headers, platform):
    alerts = [
        {"labels": {"alertname": "DiskFull", "service": "db", "instance": "db-1"}},
        {"labels": {"alertname": "Gone", "service": "db"}, "endsAt": "2026-03-02T07:00:00Z"},
    ]
    resp = post(client, headers, "/api/v2/alerts", alerts)
    assert resp.status_code == 200 and resp.json()["accepted"] == 2
    assert stored(platform) == (1, [])  # durable first; processing comes after
    assert platform.drain.process_inbox() == 1
    events = stored(platform)[1]
    assert [(e.name, e.resource, e.status) for e in events] == [("DiskFull", "db-1", "firing")]
    assert platform.drain.process_inbox() == 0  # processed once, not replayed


def test_alertmanager_webhook_keeps_its_fingerprint_and_group(client, headers, platform):
    resp = post(client, headers, "/api/v1/ingest/alertmanager-webhook", webhook())
    assert resp.status_code == 200
    assert resp.json()["group_key"] == '{}:{service="checkout"}'
    platform.drain.process_inbox()
    [event] = stored(platform)[1]
    assert event.fingerprint == "a1b2c3d4e5f60718" and event.service == "checkout"
    assert event.starts_at.microsecond == 123457  # nanoseconds rounded, zone kept as UTC
    resolved = post(client, headers, "/api/v1/ingest/alertmanager-webhook", webhook("resolved"))
    assert resolved.status_code == 200
    platform.drain.process_inbox()
    [event] = stored(platform)[1]
    assert event.status == "resolved"


def test_webhook_version_is_checked(client, headers, platform):
    resp = post(client, headers, "/api/v1/ingest/alertmanager-webhook", webhook(version="3"))
    assert resp.status_code == 400 and "version" in resp.json()["error"]["message"]


def test_grafana_webhook(client, headers, platform):
    body = webhook(version="1", fingerprint="graf-1")
    body.update({"orgId": 1, "title": "[FIRING:1] HighLatency", "state": "alerting"})
    body["alerts"][0].update({"values": {"A": 2.3}, "dashboardURL": "", "panelURL": ""})
    assert post(client, headers, "/api/v1/ingest/grafana", body).status_code == 200
    platform.drain.process_inbox()
    [event] = stored(platform)[1]
    assert (event.source, event.fingerprint) == ("grafana", "graf-1")


def test_pagerduty_trigger_acknowledge_resolve_by_dedup_key(client, headers, platform):
    trigger = {
        "routing_key": "R0ut1ngKey",
        "event_action": "trigger",
        "dedup_key": "disk-db-1",
        "payload": {
            "summary": "Disk 95% full on db-1",
            "source": "db-1",
            "severity": "critical",
            "component": "postgres",
            "class": "disk",
            "custom_details": {"free_gb": 3, "mount": "/var"},
        },
    }
    resp = post(client, headers, "/v2/enqueue", trigger)
    assert resp.status_code == 202
    assert resp.json()["dedup_key"] == "disk-db-1" and resp.json()["status"] == "success"
    ack = {"routing_key": "R0ut1ngKey", "event_action": "acknowledge", "dedup_key": "disk-db-1"}
    assert post(client, headers, "/v2/enqueue", ack).status_code == 202
    platform.drain.process_inbox()
    [event] = stored(platform)[1]
    assert (event.name, event.service, event.resource) == ("disk", "postgres", "db-1")
    assert event.severity == "critical" and event.status == "firing"
    assert event.annotations["free_gb"] == "3" and event.occurrences == 1
    resolve = {"routing_key": "R0ut1ngKey", "event_action": "resolve", "dedup_key": "disk-db-1"}
    assert post(client, headers, "/v2/enqueue", resolve).status_code == 202
    platform.drain.process_inbox()
    [event] = stored(platform)[1]
    assert event.status == "resolved"


def test_pagerduty_without_dedup_key_gets_one_back(client, headers, platform):
    body = {
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "h", "severity": "info"},
    }
    key = post(client, headers, "/v2/enqueue", body).json()["dedup_key"]
    resolve = {"event_action": "resolve", "dedup_key": key}
    assert post(client, headers, "/v2/enqueue", resolve).status_code == 202
    platform.drain.process_inbox()
    [event] = stored(platform)[1]
    assert event.fingerprint == key and event.status == "resolved"


def test_generic_events(client, headers, platform):
    body = {"events": [{"name": "BackupFailed", "service": "backup", "fingerprint": "bk-1"}]}
    assert post(client, headers, "/api/v1/events", body).status_code == 200
    platform.drain.process_inbox()
    [event] = stored(platform)[1]
    assert (event.source, event.fingerprint, event.labels["service"]) == (
        "generic",
        "bk-1",
        "backup",
    )


BAD = [
    ("/api/v2/alerts", b"{not json", "malformed JSON"),
    ("/api/v2/alerts", b"", "empty body"),
    ("/api/v2/alerts", b"[]", "no alerts"),
    ("/api/v2/alerts", b'[{"annotations": {}}]', "alerts[0].labels: is required"),
    ("/api/v2/alerts", b'[{"labels": {"alertname": "A", "x": 7}}]', "alerts[0].labels.x"),
    ("/api/v2/alerts", b'[{"labels": {"alertname": "A"}, "startsAt": 5}]', "alerts[0].startsAt"),
    (
        "/api/v2/alerts",
        b'[{"labels": {"alertname": "A"}, "startsAt": "2026-03-02T08:00:00Z",'
        b' "endsAt": "2026-03-02T07:00:00Z"}]',
        "alerts[0].endsAt: is before startsAt",
    ),
    ("/api/v1/ingest/alertmanager-webhook", b'{"version": "4"}', "alerts: is required"),
    (
        "/api/v1/ingest/alertmanager-webhook",
        b'{"version": "4", "alerts": [{"labels": {"alertname": "A"}}]}',
        "alerts[0].status: is required",
    ),
    ("/v2/enqueue", b'{"event_action": "explode"}', "event_action"),
    ("/v2/enqueue", b'{"event_action": "resolve"}', "dedup_key: is required to resolve"),
    ("/v2/enqueue", b'{"event_action": "trigger"}', "payload: is required to trigger"),
    (
        "/v2/enqueue",
        b'{"event_action": "trigger", "payload": {"summary": "s", "source": "h"}}',
        "payload.severity: is required",
    ),
    ("/api/v1/events", b'{"events": [{"name": "X", "bogus": 1}]}', "events[0].bogus"),
    ("/api/v1/events", b'[{"name": ""}]', "events[0].name"),
    # longer than the events table keeps: refused now, not lost in processing later
    (
        "/api/v2/alerts",
        b'[{"labels": {"alertname": "A"}}, {"labels": {"alertname": "' + b"x" * 300 + b'"}}]',
        "alerts[1].name: is longer than 256 characters",
    ),
    ("/api/v1/events", b'[{"name": "X", "service": "' + b"s" * 200 + b'"}]', "events[0].service"),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD)
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(
    client, headers, platform, path, body, field
):
    resp = post(client, headers, path, body)
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["error"]["message"]
    assert stored(platform) == (0, [])


def test_one_bad_alert_rejects_the_whole_batch(client, headers, platform):
    good = {"labels": {"alertname": "Good"}}
    resp = post(client, headers, "/api/v2/alerts", [good] * 10 + [{"labels": {"x": "y"}}])
    assert resp.status_code == 400 and "alerts[10].labels" in resp.json()["error"]["message"]
    assert stored(platform) == (0, [])


def test_unknown_source_is_404_naming_it(client, headers, platform):
    resp = post(client, headers, "/api/v1/ingest/nagios", [{"name": "x"}])
    assert resp.status_code == 404 and "unknown source 'nagios'" in resp.json()["error"]["message"]
    assert stored(platform) == (0, [])


def test_oversized_body_is_413_and_configurable(client, headers, platform):
    platform.settings.max_body_bytes = 4096
    big = [{"labels": {"alertname": "A", "pad": "x" * 5000}}]
    assert post(client, headers, "/api/v2/alerts", big).status_code == 413
    platform.settings.max_body_bytes = 100_000
    assert post(client, headers, "/api/v2/alerts", big).status_code == 200


@pytest.fixture
def signed(platform, monkeypatch):
    """A 'grafana-prod' source whose posts must be signed with GRAFANA_KEY."""
    monkeypatch.setenv("BATON_SECRET_GRAFANA_KEY", "s3cret-hmac-key")
    platform.settings.sources = {
        "grafana-prod": SourceConfig(
            format="grafana",
            signing_secret="GRAFANA_KEY",
            signature_header="X-Grafana-Alerting-Signature",
        )
    }
    return "/api/v1/ingest/grafana-prod"


def test_hmac_signature_good(client, headers, platform, signed):
    body = orjson.dumps(webhook(version="1"))
    sig = sign(body, "s3cret-hmac-key")
    resp = post(client, headers, signed, body, **{"X-Grafana-Alerting-Signature": sig})
    assert resp.status_code == 200
    bare_hex = sig.removeprefix("sha256=")
    resp = post(client, headers, signed, body, **{"X-Grafana-Alerting-Signature": bare_hex})
    assert resp.status_code == 200
    assert stored(platform)[0] == 2


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (None, "missing"),
        ("sha256=" + "0" * 64, "does not match"),
        (sign(b"another body", "s3cret-hmac-key"), "does not match"),
        (sign(orjson.dumps(webhook(version="1")), "wrong-key"), "does not match"),
        ("sha256=" + "zz" * 32, "does not match"),
    ],
)
def test_hmac_signature_bad_or_missing(client, headers, platform, signed, signature, message):
    extra = {} if signature is None else {"X-Grafana-Alerting-Signature": signature}
    resp = post(client, headers, signed, orjson.dumps(webhook(version="1")), **extra)
    assert resp.status_code == 401
    assert "X-Grafana-Alerting-Signature" in resp.json()["error"]["message"]
    assert message in resp.json()["error"]["message"]
    assert stored(platform) == (0, [])


def test_signing_key_not_set_is_refused_not_accepted(
    client, headers, platform, signed, monkeypatch
):
    monkeypatch.delenv("BATON_SECRET_GRAFANA_KEY")
    resp = post(client, headers, signed, webhook(version="1"))
    assert resp.status_code == 503 and stored(platform) == (0, [])


def test_anonymous_senders_are_refused_before_the_body_is_read(client, platform):
    for path in ("/api/v1/ingest/grafana", "/v2/enqueue", "/api/v1/ingest/nope"):
        assert client.post(path, content=b"{garbage").status_code == 401
    assert stored(platform) == (0, [])


def test_a_batch_that_cannot_be_processed_is_set_aside(client, headers, platform, monkeypatch):
    post(client, headers, "/api/v2/alerts", [{"labels": {"alertname": "First"}}])
    post(client, headers, "/api/v2/alerts", [{"labels": {"alertname": "Second"}}])
    real = platform.pipelines.ingest.run

    def fail_first(ctx, events):
        if events[0].name == "First":
            raise RuntimeError("correlation bug")
        return real(ctx, events)

    monkeypatch.setattr(platform.pipelines.ingest, "run", fail_first)
    assert platform.drain.process_inbox() == 2
    assert [e.name for e in stored(platform)[1]] == ["Second"]
    with platform.db.session() as s:
        first = s.scalars(select(InboxBatch).order_by(InboxBatch.id)).first()
        assert first.processed_at is not None and "correlation bug" in first.error


def test_processing_claims_each_batch_once(client, headers, platform):
    from baton.sense import inbox

    post(client, headers, "/api/v2/alerts", [{"labels": {"alertname": "Once"}}])
    with platform.db.session() as s:
        [seen] = inbox.pending(s, 10)
    assert platform.drain.process_inbox() == 1
    with pytest.raises(inbox.Contended), platform.db.session() as s:
        inbox.advance(s, seen, 1, platform.clock.now())  # a second processor's stale view
    assert platform.drain.process_inbox() == 0
    [stored_event] = stored(platform)[1]
    assert stored_event.occurrences == 1


def test_retention_by_age_and_count_never_drops_unprocessed(client, headers, platform):
    platform.settings.inbox_max_events = 3
    for i in range(4):
        post(client, headers, "/api/v2/alerts", [{"labels": {"alertname": f"A{i}"}}])
    assert platform.drain.prune_inbox() == 0  # nothing processed yet: all of it is owed work
    platform.drain.process_inbox()
    post(client, headers, "/api/v2/alerts", [{"labels": {"alertname": "Late"}}])
    assert platform.drain.prune_inbox() == 2  # the newest 3 events kept; A0, A1 dropped
    with platform.db.session() as s:
        left = [orjson.loads(b.events)[0]["name"] for b in s.scalars(select(InboxBatch))]
    assert left == ["A2", "A3", "Late"]
    platform.settings.inbox_max_events = 1000
    platform.clock.advance(timedelta(seconds=platform.settings.inbox_max_age_s + 1))
    platform.scheduler.tick()  # processes "Late", then prunes by age
    with platform.db.session() as s:
        assert s.scalar(select(func.count()).select_from(InboxBatch)) == 0
    assert {e.name for e in stored(platform)[1]} >= {"A0", "A1", "A2", "A3", "Late"}


def test_metrics_show_the_processing_backlog(client, headers, platform):
    platform.settings.metrics_public = True
    post(client, headers, "/api/v2/alerts", [{"labels": {"alertname": f"B{i}"}} for i in range(3)])
    assert "baton_inbox_backlog_events 3.0" in client.get("/metrics").text
    platform.drain.process_inbox()
    assert "baton_inbox_backlog_events 0.0" in client.get("/metrics").text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
alert_like = st.fixed_dictionaries(
    {"labels": st.dictionaries(st.sampled_from(["alertname", "service", "x"]), json_values)},
    optional={
        "annotations": json_values,
        "startsAt": st.sampled_from(["2026-03-02T08:00:00Z", "bad", 3]),
        "status": st.sampled_from(["firing", "resolved", "odd", 1]),
        "fingerprint": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(sorted(PARSERS)),
    payload=json_values
    | st.lists(alert_like, max_size=3)
    | st.builds(
        lambda alerts, version: {"version": version, "alerts": alerts},
        st.lists(alert_like, max_size=3),
        st.sampled_from(["4", "1", 4]),
    ),
)
def test_any_body_is_a_batch_or_a_signal_error(fmt, payload):
    """Whatever arrives, a receiver answers with events or a field-named error, never a crash."""
    try:
        batch = PARSERS[fmt](orjson.dumps(payload), START, "src")
    except SignalError as exc:
        assert exc.field and exc.message
        return
    assert batch.events and all(e["name"] and e["labels"] for e in batch.events)
