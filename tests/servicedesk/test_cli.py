"""`baton tickets ...` against the real API app in-process."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from baton import cli_oversight
from baton.api.app import create_app
from baton.cli import app
from baton.govern.rbac import create_token


@pytest.fixture
def run(shared, monkeypatch):
    with shared.db.session() as s:
        secret = create_token(s, name="lee", role="lead", at=shared.clock.now())[1]
    api = create_app(shared)
    monkeypatch.setattr(
        cli_oversight,
        "_client",
        lambda token: TestClient(api, headers={"Authorization": f"Bearer {secret}"}),
    )
    monkeypatch.setattr(cli_oversight.out, "width", 240)
    return lambda *args: CliRunner().invoke(app, list(args))


def test_show_set_move_and_comment(run, shared, tmp_path):
    ticket = shared.desk.file("ann@example.org", "Outlook cannot send mail", "<b>stuck</b>")
    shown = run("tickets", "show", str(ticket.id))
    assert shown.exit_code == 0, shown.output
    assert "Outlook cannot send mail" in shown.output and "baton.servicedesk (ai)" in shown.output
    assert run("tickets", "set", str(ticket.id), "priority", "low").exit_code == 0
    bad = run("tickets", "set", str(ticket.id), "priority", "nope")
    assert bad.exit_code == 1 and "not an enabled option" in bad.output
    assert run("tickets", "move", str(ticket.id), "in_progress").exit_code == 0
    assert run("tickets", "comment", str(ticket.id), "looking", "--internal").exit_code == 0
    data = shared.desk.show(ticket.id)
    assert data["status"] == "in_progress" and data["comments"][-1]["public"] is False
    assert data["history"][-2]["by"]["name"] == "lee"


def test_options_and_kb(run, tmp_path):
    added = run("tickets", "options", "--field", "group", "--value", "desktop")
    assert added.exit_code == 0 and "desktop" in added.output
    page = tmp_path / "a.md"
    page.write_text("Hold the power button for ten seconds.")
    assert (
        run(
            "tickets", "kb", "put", "laptop-freeze", "--title", "Laptop froze", "--file", str(page)
        ).exit_code
        == 0
    )
    listed = run("tickets", "kb", "list", "--json")
    assert "laptop-freeze" in listed.output
