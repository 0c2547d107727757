"""The people-on-duty commands, against the real API app in-process, with real tokens."""

from __future__ import annotations

import json

from tests.helpers import executions, pending, run_until


def test_kill_switch_roles_through_the_cli(cli, tokens):
    paused = cli(
        "pause", "--service", "checkout-api", "--reason", "drill", "--token", tokens["tia"]
    )
    assert paused.exit_code == 0 and "service:checkout-api" in paused.output
    denied = cli("resume", "--service", "checkout-api", "--token", tokens["tia"])
    assert denied.exit_code == 1 and "403" in denied.output and "govern" in denied.output
    ok = cli("resume", "--service", "checkout-api", "--token", tokens["lee"])
    assert ok.exit_code == 0 and "still paused: nothing" in ok.output
    viewer = cli("pause", "--all", "--token", tokens["vic"])
    assert viewer.exit_code == 1 and "403" in viewer.output


def test_approve_from_the_cli_with_a_changed_param(cli, tokens, demo):
    demo.run_for(5, humans=False)
    demo.inject("bad_deploy")
    assert run_until(demo, lambda: pending(demo))
    listed = json.loads(cli("approvals", "list", "--json", "--token", tokens["vic"]).stdout)
    approval_id = listed[0]["id"]
    assert listed[0]["dry_run"]["steps"][0]["with"]["service"] == "checkout-api"
    bad = cli(
        "approvals",
        "approve",
        str(approval_id),
        "--reason",
        "x",
        "--param",
        "service=$(id)",
        "--token",
        tokens["tia"],
    )
    assert bad.exit_code == 1 and "modified params rejected" in bad.output
    ok = cli("approvals", "approve", str(approval_id), "--reason", "fine", "--token", tokens["tia"])
    assert ok.exit_code == 0 and "execution" in ok.output
    assert executions(demo)[0].params == {"service": "checkout-api"}


def test_veto_from_the_cli(cli, tokens, demo):
    demo.run_for(5, humans=False)
    demo.inject("traffic_surge")
    assert run_until(demo, lambda: executions(demo))
    execution_id = executions(demo)[0].id
    bad = cli(
        "override",
        "veto",
        str(execution_id),
        "--category",
        "nope",
        "--reason",
        "x",
        "--token",
        tokens["tia"],
    )
    assert bad.exit_code == 1 and "category" in bad.output
    ok = cli(
        "override",
        "veto",
        str(execution_id),
        "--category",
        "bad_timing",
        "--reason",
        "peak hour",
        "--token",
        tokens["tia"],
    )
    assert ok.exit_code == 0 and "vetoed" in ok.output


def test_oncall_escalations_and_policy(cli, tokens, tmp_path):
    who = cli("oncall", "who", "web-portal", "--token", tokens["vic"]).output
    assert "web-portal: ana (rotation, rotation ops)" in who
    assert cli("escalations", "list", "--json", "--token", tokens["vic"]).exit_code == 0
    shown = cli("policy", "show", "--token", tokens["vic"])
    assert shown.exit_code == 0 and "directory-ldap: recommend" in shown.output
    new = tmp_path / "p.yaml"
    new.write_text("services:\n  directory-ldap: observe\n")
    denied = cli("policy", "apply", str(new), "--token", tokens["tia"])
    assert denied.exit_code == 1 and "403" in denied.output
    applied = cli("policy", "apply", str(new), "--token", tokens["lee"])
    assert applied.exit_code == 0 and "+  directory-ldap: observe" in applied.output


def test_silences_through_the_cli(cli, tokens):
    added = cli(
        "silences",
        "add",
        'service="orders-db"',
        "alertname=~High.*",
        "--comment",
        "failover drill",
        "--duration",
        "2h",
        "--token",
        tokens["tia"],
    )
    assert added.exit_code == 0 and "silence #1 until" in added.output
    listed = cli("silences", "list", "--json", "--token", tokens["vic"])
    assert json.loads(listed.output)[0]["matchers"] == ['service="orders-db"', "alertname=~High.*"]
    bad = cli("silences", "add", "orders-db", "--comment", "x", "--token", tokens["tia"])
    assert bad.exit_code == 1 and "matchers" in bad.output
    wrong = cli("silences", "add", 'a="b"', "--comment", "x", "--duration", "2w")
    assert wrong.exit_code == 2 and "--duration" in wrong.output
    denied = cli("silences", "expire", "1", "--token", tokens["vic"])
    assert denied.exit_code == 1 and "403" in denied.output
    assert cli("silences", "expire", "1", "--token", tokens["tia"]).exit_code == 0
    assert json.loads(cli("silences", "list", "--json", "--token", tokens["vic"]).output) == []
