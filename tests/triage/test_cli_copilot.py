"""`baton copilot ...` against the real API app in-process, with real tokens."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from baton import cli_copilot, cli_oversight
from baton.api.app import create_app
from baton.cli import app
from baton.govern.rbac import create_token


@pytest.fixture
def run(shared, monkeypatch):
    p, clock, _ = shared
    with p.db.session() as s:
        tok = create_token(s, name="tess", role="technician", at=clock.now())[1]
        viewer = create_token(s, name="val", role="viewer", at=clock.now())[1]
    api = create_app(p)
    monkeypatch.setattr(
        cli_oversight,
        "_client",
        lambda token: TestClient(api, headers={"Authorization": f"Bearer {token}"}),
    )
    monkeypatch.setattr(cli_copilot.out, "width", 240)
    return lambda *args, token=tok: CliRunner().invoke(app, [*args, "--token", token]), viewer


def test_investigate_ask_and_fix_from_the_cli(run, shared):
    invoke, viewer = run
    incident = str(shared[2])
    shown = invoke("copilot", "investigate", incident)
    assert shown.exit_code == 0, shown.output
    assert "orders-db" in shown.output and "recycle-db-connections" in shown.output
    assert "alert:" in shown.output and "flagged" in shown.output
    data = json.loads(invoke("copilot", "investigate", incident, "--json").stdout)
    assert data["causes"][0]["service"] == "orders-db"
    asked = invoke("copilot", "ask", incident, "who owns orders-db?")
    assert (
        asked.exit_code == 0 and "team-data" in asked.output and "owner:orders-db" in asked.output
    )
    denied = invoke("copilot", "fix", incident, "--reason", "x", token=viewer)
    assert denied.exit_code == 1 and "403" in denied.output
    fixed = invoke("copilot", "fix", incident, "--reason", "evidence is clear")
    assert fixed.exit_code == 0 and "tier approve" in fixed.output and "approval" in fixed.output
