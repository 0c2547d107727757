"""The everyday views from the CLI (incidents, executions and logs, tickets, KPIs, the
approval queue, the policy's tiers), against the real API app in-process."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from baton.cli import app
from tests.helpers import executions, pending, run_until


def _clean(text):
    """What a person must never be shown."""
    assert "None" not in text and "{{" not in text and "…" not in text, text


def test_version():
    from baton import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == __version__


def test_incidents_executions_tickets_and_kpis(cli, tokens, demo):
    demo.run_for(5, humans=False)
    demo.inject("disk_full")
    assert run_until(demo, lambda: any(e.status == "succeeded" for e in executions(demo)))
    vic = tokens["vic"]
    listed = cli("incidents", "list", "--token", vic, "--json")
    incidents = json.loads(listed.stdout)
    assert listed.exit_code == 0 and incidents
    table = cli("incidents", "list", "--token", vic)
    assert table.exit_code == 0 and incidents[0]["title"] in table.stdout.replace("\n", "")
    shown = cli("incidents", "show", str(incidents[-1]["id"]), "--token", vic)
    assert shown.exit_code == 0 and "alerts" in shown.stdout and "proposals" in shown.stdout
    missing = cli("incidents", "show", "9999", "--token", vic)
    assert missing.exit_code == 1 and "404" in missing.output
    runs = json.loads(cli("executions", "list", "--json", "--token", vic).stdout)
    done = next(r for r in runs if r["status"] == "succeeded")
    detail = cli("executions", "show", str(done["id"]), "--token", vic)
    assert detail.exit_code == 0 and done["runbook_id"] in detail.stdout
    _clean(detail.stdout)
    logs = cli("executions", "logs", str(done["id"]), "--token", vic)
    assert logs.exit_code == 0 and "end: succeeded" in logs.stdout
    assert "[1] step" in logs.stdout
    tickets = cli("tickets", "list", "--json", "--token", vic)
    assert tickets.exit_code == 0 and isinstance(json.loads(tickets.stdout), list)
    kpis = cli("kpis", "--token", vic)
    assert kpis.exit_code == 0 and "KPIs" in kpis.stdout
    assert json.loads(cli("kpis", "--json", "--token", vic).stdout)


def test_approvals_list_shows_what_a_person_decides_on(cli, tokens, demo):
    demo.run_for(5, humans=False)
    demo.inject("bad_deploy")
    assert run_until(demo, lambda: pending(demo))
    shown = cli("approvals", "list", "--token", tokens["vic"])
    assert shown.exit_code == 0
    text = shown.stdout
    for label in ("incident", "evidence", "dry run steps", "risk", "track record", "expires"):
        assert label in text, label
    assert "rollback-deploy" in text and "checkout-api" in text
    _clean(text)
    data = json.loads(cli("approvals", "list", "--json", "--token", tokens["vic"]).stdout)
    assert data[0]["runbook"]["track_record"]["runs"] >= 0


def test_policy_show_says_why_each_runbook_has_its_tier(cli, tokens):
    shown = cli("policy", "show", "--token", tokens["vic"])
    assert shown.exit_code == 0
    tiers = json.loads(cli("policy", "show", "--json", "--token", tokens["vic"]).stdout)["tiers"]
    by = {(t["runbook"], t["env"]): t for t in tiers}
    compress = by[("compress-large-logs", "prod")]
    assert compress["tier"] == "approve" and "real host" in compress["reasons"][0]
    assert by[("clear-disk", "prod")]["tier"] == "auto"  # the demo attaches the sandbox
    assert "directory-ldap" not in shown.stdout or "recommend" in shown.stdout


def test_live_demo_keeps_a_persons_minutes_and_shows_their_approvals(demo):
    """Simulated time runs `speed` times faster in live mode; what people must meet does
    not, and an approval made through the API is shown before the run it allowed."""
    from datetime import timedelta

    from baton.kernel.audit import Actor
    from baton.store.models import Approval, Escalation

    seen = []
    demo.observer = lambda kind, data: seen.append((kind, data))
    chosen = demo.give_people_real_time(60)
    assert chosen["approval_ttl_s"] == 3600 * 60 and chosen["ack_timeout_s"] == 900 * 60
    demo.run_for(5, humans=False)
    demo.inject("bad_deploy")
    assert run_until(demo, lambda: pending(demo))
    [approval] = pending(demo)
    assert approval.expires_at - approval.created_at == timedelta(hours=60)  # one real hour
    demo.run_for(30, humans=False)  # half a simulated hour: not yet escalated for want of ack
    with demo.platform.db.session() as s:
        assert s.query(Escalation).count() == 0
        assert s.get(Approval, approval.id).status == "pending"
    demo.platform.commands.approve(approval.id, Actor("maria", "human"), "checked the deploy")
    demo.step()
    kinds = [(k, d.get("by")) for k, d in seen]
    approved = kinds.index(("human.approves", "maria"))
    queued = next(i for i, (k, _) in enumerate(kinds) if k == "execution.queued")
    assert approved < queued  # the approval before the run it allowed
