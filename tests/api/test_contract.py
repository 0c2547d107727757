"""The OpenAPI document is the contract, and a fuzzer holds the server to it.

The static tests read the document: every body declared, the bearer scheme, every error
in the one shape. The integration test starts a real `baton serve` with a token of each
role and runs schemathesis against its /openapi.json (>= 2,000 cases), failing on any
5xx; it is required on CI and skipped elsewhere when schemathesis is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from baton.api.app import create_app
from tests.conftest import ROOT
from tests.helpers import free_port

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
METHODS = ("get", "post", "put", "delete")


@pytest.fixture
def doc(platform):
    return TestClient(create_app(platform)).get("/openapi.json").json()


def operations(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method in METHODS:
                yield path, method, op


def test_every_body_is_declared(doc, platform):
    app = create_app(platform)
    client = TestClient(app)
    no_body = {
        ("post", "/api/v1/incidents/{incident_id}/acknowledge"),
        ("post", "/api/v1/runbooks/reload"),
        ("post", "/api/v1/escalations/{escalation_id}/acknowledge"),
        ("post", "/api/v1/tickets/changes/{change_id}/revert"),
        ("post", "/api/v1/desk/answers/{draft_id}/approve"),
        ("post", "/api/v1/desk/answers/{draft_id}/reject"),
        ("post", "/api/v1/desk/selfservice/{request_id}/approve"),
        ("post", "/api/v1/trust/review"),
        ("post", "/api/v1/approvals/{approval_id}/chat-post"),
        ("post", "/api/v1/incidents/{incident_id}/review/lessons/{lesson}/apply"),
    }
    not_json = {  # telemetry in its own wire formats
        ("post", "/api/v1/write"): "application/x-protobuf",
        ("post", "/api/v1/logs"): "application/x-ndjson",
    }
    for path, method, op in operations(doc):
        if method in ("post", "put") and (method, path) not in no_body:
            wanted = not_json.get((method, path), "application/json")
            assert wanted in op.get("requestBody", {}).get("content", {}), (method, path)
    receivers = doc["paths"]["/api/v2/alerts"]["post"]["requestBody"]["content"]
    alert = receivers["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/AlertList"} in alert["anyOf"]
    assert "labels" in doc["components"]["schemas"]["Alert"]["required"]
    assert client.get("/openapi.json").status_code == 200  # public


def test_bearer_scheme_everywhere_but_the_public_paths(doc):
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert doc["security"] == [{"bearer": []}]
    for path, _, op in operations(doc):
        if path in ("/healthz", "/readyz", "/api/v1/desk/slack/events"):  # Slack signs
            assert op["security"] == []
        elif path != "/metrics":
            assert "security" not in op or op["security"] == [{"bearer": []}]


def test_every_error_is_declared_in_the_one_shape(doc):
    error = {"$ref": "#/components/schemas/Error"}
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, method, op in operations(doc):
        codes = {c for c in op["responses"] if c.startswith(("4", "5"))}
        if path not in ("/healthz", "/readyz", "/metrics", "/api/v1/desk/slack/events"):
            assert {"401", "403"} <= codes, (method, path)
        if "{" in path:
            assert {"404", "422"} <= codes, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "422"} <= codes, (method, path)
        for code in codes:
            assert op["responses"][code]["content"]["application/json"]["schema"] == error


# --- schemathesis against a real server -----------------------------------------------
# admin: every phase (coverage alone makes ~2,900 cases); the other roles mostly meet
# 403, so random fuzzing is enough for them and keeps the run near a minute
ROLES = {
    "admin": "coverage,fuzzing,stateful",
    "lead": "fuzzing",
    "technician": "fuzzing",
    "viewer": "fuzzing",
    "ingest": "fuzzing",
}


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        if ON_CI:
            pytest.fail("schemathesis is required on CI (pip install -e '.[dev]')")
        pytest.skip("schemathesis not installed (pip install -e '.[dev]')")
    return found


@pytest.mark.integration
def test_schemathesis_finds_no_5xx_with_a_token_of_each_role(tmp_path):
    runner = _schemathesis()
    baton = str(Path(sys.executable).parent / "baton")
    runbooks = tmp_path / "runbooks"  # the fuzzer PUTs policies: never the checkout's
    shutil.copytree(ROOT / "runbooks", runbooks)
    env = {
        **os.environ,
        "BATON_HOME": str(tmp_path / "home"),
        "BATON_RUNBOOKS_DIR": str(runbooks),
        "BATON_LOG_LEVEL": "WARNING",
    }
    env.pop("BATON_DATABASE_URL", None)
    env.pop("BATON_CONFIG", None)
    tokens = {
        role: subprocess.run(
            [baton, "token", "create", "--name", f"fuzz-{role}", "--role", role],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for role in ROLES
    }
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [baton, "serve", "--port", str(port), "--tick-s", "1"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, (
                "baton serve did not start"
            )
            time.sleep(0.2)
        total, failures = 0, []
        for role, phases in ROLES.items():
            report = tmp_path / f"{role}.json"
            argv = [
                runner, "run", f"{base}/openapi.json",
                "--header", f"Authorization: Bearer {tokens[role]}",
                "--checks", "not_a_server_error",
                "--phases", phases,
                "--max-examples", "5",
                "--seed", "11",
                "--workers", "2",
                "--request-timeout", "10",
                "--report", "json", "--report-json-path", str(report),
            ]  # fmt: skip
            if role == "admin":  # it would revoke its own token and fuzz the rest as nobody
                argv += ["--exclude-path", "/api/v1/tokens/{token_id}"]
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=170, cwd=tmp_path
            )  # its cache (.schemathesis/) goes to tmp_path
            result = orjson.loads(report.read_bytes())
            total += result["test_cases"]["generated"]
            if result["failures"]:  # a check failed: a 5xx
                failures.append((role, result["failures"], done.stdout[-4000:]))
            # schemathesis' own errors (a generator hiccup) are not the server's; a
            # server that died or stopped answering is
            assert server.poll() is None, f"baton serve died during the {role} run"
        assert not failures, failures
        assert total >= 2_000, total
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(20)
        log.close()
    lines = (tmp_path / "serve.log").read_text().splitlines()
    for line in lines:  # every log line is one JSON object; no 500 was logged
        assert line.startswith("{"), f"not a JSON log line: {line[:300]}"
        record = orjson.loads(line)
        assert record["msg"] != "unhandled error", record
