"""Hostile input never gets a 5xx: shapes, integer ranges, per-field limits, one log line.

Each case here was a 500 (or a stored megabyte) before issue 11; see docs/security.md.
"""

from __future__ import annotations

import logging

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from baton.api.app import create_app
from baton.govern.rbac import create_token
from baton.store.models import InboxBatch

MAX_ID = 2**63 - 1  # the database's largest integer


@pytest.fixture
def client(platform):
    return TestClient(create_app(platform), raise_server_exceptions=False)


@pytest.fixture
def admin(platform):
    with platform.db.session() as s:
        _, secret = create_token(s, name="root", role="admin", at=platform.clock.now())
    return {"Authorization": f"Bearer {secret}"}


def batches(platform) -> int:
    with platform.db.session() as s:
        return s.scalar(select(func.count()).select_from(InboxBatch))


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


def refused(resp, status: int, field: str) -> None:
    assert resp.status_code == status, resp.text
    assert field in resp.json()["error"]["message"], resp.text


# --- nesting and integers at decode time -------------------------------------------------
@pytest.mark.parametrize("depth", [300, 1_100, 50_000])
def test_deep_labels_and_annotations_are_a_400_naming_the_map(client, admin, platform, depth):
    for where in (b"labels", b"annotations"):
        body = b'[{"labels": {"alertname": "A"}, "' + where + b'": {"k": ' + nested(depth) + b"}}]"
        if where == b"labels":
            body = b'[{"labels": {"alertname": "A", "k": ' + nested(depth) + b"}}]"
        refused(
            client.post("/api/v2/alerts", content=body, headers=admin),
            400,
            f"alerts[0].{where.decode()}",
        )
        body = b'{"events": [{"name": "X", "' + where + b'": {"k": ' + nested(depth) + b"}}]}"
        refused(
            client.post("/api/v1/events", content=body, headers=admin),
            400,
            f"events[0].{where.decode()}",
        )
    assert batches(platform) == 0


def _pagerduty(details: bytes) -> bytes:
    return (
        b'{"event_action": "trigger", "payload": {"summary": "s", "source": "h", '
        b'"severity": "critical", "custom_details": ' + details + b"}}"
    )


@pytest.mark.parametrize(
    "details",
    [
        nested(300),
        nested(600),
        b'{"a": ' + nested(40, b'{"b": 1}') + b"}",
        b'{"n": 18446744073709551616}',
        b'{"n": 9223372036854775808}',
        b'{"n": [1, 2, -9223372036854775809]}',
    ],
)
def test_pagerduty_custom_details_are_bounded(client, admin, platform, details):
    resp = client.post("/v2/enqueue", content=_pagerduty(details), headers=admin)
    refused(resp, 400, "payload.custom_details")
    assert batches(platform) == 0


def test_json_too_deep_to_decode_is_a_400(client, admin, platform):
    resp = client.post("/v2/enqueue", content=_pagerduty(nested(50_000)), headers=admin)
    refused(resp, 400, "body: nested deeper than 1,000 levels")
    assert batches(platform) == 0


def test_pagerduty_custom_details_within_bounds_are_kept(client, admin, platform):
    details = b'{"n": 9223372036854775807, "deep": ' + nested(20) + b', "s": "text"}'
    assert client.post("/v2/enqueue", content=_pagerduty(details), headers=admin).status_code == 202


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/runbooks/restart-service/dry-run",
            b'{"params": {"x": 18446744073709551615}}',
            "params.x",
        ),
        (
            "/api/v1/runbooks/restart-service/dry-run",
            b'{"params": {"x": ' + nested(2_000) + b"}}",
            "malformed JSON",
        ),
        (
            "/api/v1/runbooks/restart-service/dry-run",
            b'{"params": {"x": ' + nested(100) + b"}}",
            "nested deeper",
        ),
        ("/api/v1/incidents/1/merge", b'{"incidents": [9223372036854775808]}', "incidents"),
        (
            "/api/v1/runbooks/restart-service/executions",
            b'{"reason": "r", "incident_id": 9223372036854775808}',
            "incident_id",
        ),
    ],
)
def test_json_bodies_are_bounded_too(client, admin, path, body, field):
    resp = client.post(path, content=body, headers=admin)
    assert resp.status_code in (400, 422), resp.text
    assert field in resp.json()["error"]["message"]


def _integer_parameters(app):
    """(method, path template, where, name) of every integer parameter in the contract."""
    for path, operations in app.openapi()["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                if param["schema"].get("type") == "integer" or any(
                    s.get("type") == "integer" for s in param["schema"].get("anyOf", [])
                ):
                    yield method.upper(), path, param["in"], param["name"]


@pytest.mark.parametrize("value", [MAX_ID + 1, 99999999999999999999, -(2**63) - 1, 0, -1])
def test_every_integer_parameter_is_range_checked(client, admin, value):
    found = list(_integer_parameters(client.app))
    assert len(found) >= 20, found  # the probe found 25; each one is exercised here
    for method, template, where, name in found:
        url = template
        query = {}
        for other in (
            "incident_id",
            "execution_id",
            "approval_id",
            "token_id",
            "escalation_id",
            "silence_id",
            "window_id",
        ):
            url = url.replace("{" + other + "}", str(value) if other == name else "1")
        if where == "query":
            query[name] = str(value)
        url = (
            url.replace("{runbook_id}", "nope")
            .replace("{service}", "web")
            .replace("{source}", "generic")
        )
        resp = client.request(method, url, params=query, headers=admin, content=b"{}")
        assert resp.status_code < 500, (method, url, name, resp.text)
        if (where == "path" and value > MAX_ID) or value < 0:
            assert resp.status_code in (404, 422), (method, url, name, resp.status_code)


def test_the_largest_id_is_a_404_not_a_500(client, admin):
    for url in ("/api/v1/incidents/9223372036854775807", "/api/v1/executions/9223372036854775807"):
        assert client.get(url, headers=admin).status_code == 404


def test_approving_a_missing_approval_with_params_is_404(client, admin):
    body = {"reason": "looks right", "params": {"service": "web"}}
    resp = client.post("/api/v1/approvals/424242/approve", json=body, headers=admin)
    refused(resp, 404, "no approval 424242")
    resp = client.post("/api/v1/approvals/424242/approve", json={"reason": "r"}, headers=admin)
    assert resp.status_code == 404


def test_a_500_is_one_json_log_line_and_the_error_shape(platform, admin, caplog):
    app = create_app(platform)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    # raise_server_exceptions: Starlette's ServerErrorMiddleware re-raises what reaches
    # it, which is what made uvicorn log every 500 a second time as plain text
    client = TestClient(app, raise_server_exceptions=True)
    with caplog.at_level(logging.ERROR):
        resp = client.get("/api/v1/boom", headers=admin)
    assert resp.status_code == 500
    assert resp.json() == {
        "error": {"code": "internal", "message": "internal error; see the server log"}
    }
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].name == "baton.api" and errors[0].exc_info


def test_uvicorn_lines_are_json_like_ours(capsys):
    from baton.runtime.logging import configure_logging

    configure_logging("INFO", "json")
    logging.getLogger("uvicorn.error").error("something odd")  # uvicorn may set its level
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert orjson.loads(line)["logger"] == "uvicorn.error"


# --- limits on every field --------------------------------------------------------------
def _bodies(labels: dict[str, str], annotations: dict[str, str]):
    """The same alert in each receiver's format: (path, body, where)."""
    alert = {"labels": {"alertname": "A", **labels}, "annotations": annotations}
    sent = {**alert, "status": "firing"}
    yield "/api/v2/alerts", [alert], "alerts[0]"
    yield "/api/v1/ingest/alertmanager-webhook", {"version": "4", "alerts": [sent]}, "alerts[0]"
    yield "/api/v1/ingest/grafana", {"alerts": [sent]}, "alerts[0]"
    yield (
        "/api/v1/events",
        {"events": [{"name": "A", "labels": labels, "annotations": annotations}]},
        "events[0]",
    )
    if not labels:  # PagerDuty has no labels of its own: its details become annotations
        payload = {"summary": "s", "source": "h", "severity": "info", "custom_details": annotations}
        yield "/v2/enqueue", {"event_action": "trigger", "payload": payload}, "payload"


CASES = [
    ({f"l{i}": "v" for i in range(128)}, {}, "labels", "more than 128 labels"),
    ({"k" * 257: "v"}, {}, "labels.kkk", "key longer than 256 bytes"),
    ({"big": "v" * (16 * 1024 + 1)}, {}, "labels.big", "value longer than 16384 bytes"),
    ({"utf": "é" * 8193}, {}, "labels.utf", "value longer than 16384 bytes"),  # bytes, not chars
    ({"nul": "a\x00b"}, {}, "labels.nul", "control characters"),
    ({"esc": "a\x1b[31mred"}, {}, "labels.esc", "control characters"),
    ({"line": "a\nb"}, {}, "labels.line", "control characters"),
    ({}, {"summary": "a\x00b"}, "annotations.summary", "control characters"),
    ({}, {"summary": "\x07bell"}, "annotations.summary", "control characters"),
    ({}, {"a": "x" * 40_000, "b": "y" * 30_000}, "annotations", "larger than 65536 bytes"),
]


@pytest.mark.parametrize(("labels", "annotations", "where", "message"), CASES)
def test_field_limits_are_the_same_in_every_receiver(
    client, admin, platform, labels, annotations, where, message
):
    for path, body, prefix in _bodies(labels, annotations):
        resp = client.post(path, content=orjson.dumps(body), headers=admin)
        assert resp.status_code == 400, (path, resp.text)
        text = resp.json()["error"]["message"]
        assert f"{prefix}.{where}" in text and message in text, (path, text)
    assert batches(platform) == 0


def test_limits_leave_ordinary_alerts_alone(client, admin, platform):
    labels = {f"l{i}": "v" * 100 for i in range(127)}  # alertname makes 128
    annotations = {"summary": "line one\n\tline two", "description": "d" * 60_000}
    for path, body, _ in _bodies(labels, annotations):
        resp = client.post(path, content=orjson.dumps(body), headers=admin)
        assert resp.status_code in (200, 202), (path, resp.text)


def test_field_limits_are_settings(client, admin, platform):
    platform.settings.max_labels = 3
    body = [{"labels": {"alertname": "A", "a": "1", "b": "2", "c": "3"}}]
    refused(client.post("/api/v2/alerts", json=body, headers=admin), 400, "more than 3 labels")
    platform.settings.max_labels = 128
    assert client.post("/api/v2/alerts", json=body, headers=admin).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/events",
            {
                "events": [
                    {
                        "name": "X",
                        "starts_at": "2026-03-02T08:00:00Z",
                        "ends_at": "2026-03-02T07:00:00Z",
                    }
                ]
            },
            "events[0].ends_at: is before starts_at",
        ),
        (
            "/api/v1/events",
            [
                {
                    "name": "X",
                    "status": "resolved",
                    "starts_at": "2026-03-02T08:00:00+01:00",
                    "ends_at": "2026-03-02T06:30:00Z",
                }
            ],
            "events[0].ends_at: is before starts_at",
        ),
        (
            "/api/v2/alerts",
            [
                {
                    "labels": {"alertname": "A"},
                    "startsAt": "2026-03-02T08:00:00Z",
                    "endsAt": "2026-03-02T07:00:00Z",
                }
            ],
            "alerts[0].endsAt: is before startsAt",
        ),
        (
            "/api/v1/ingest/grafana",
            {
                "alerts": [
                    {
                        "status": "resolved",
                        "labels": {"alertname": "A"},
                        "startsAt": "2026-03-02T08:00:00Z",
                        "endsAt": "2026-03-02T07:00:00Z",
                    }
                ]
            },
            "alerts[0].endsAt: is before startsAt",
        ),
    ],
)
def test_time_ranges_are_checked_the_same_way_everywhere(
    client, admin, platform, path, body, field
):
    refused(client.post(path, json=body, headers=admin), 400, field)
    assert batches(platform) == 0
