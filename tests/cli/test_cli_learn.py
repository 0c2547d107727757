"""`baton kpis`, `baton trust`, `baton review` and `baton replay policy` against the demo."""

from __future__ import annotations

import json

import pytest

from tests.helpers import executions, run_until

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_kpis_trust_review_and_replay_from_the_cli(cli, tokens, demo, tmp_path):
    demo.run_for(5, humans=True)
    demo.inject("disk_full")
    assert run_until(demo, lambda: any(e.verified for e in executions(demo)), minutes=90)
    vic, lee = tokens["vic"], tokens["lee"]

    shown = cli("kpis", "--since", "7d", "--token", vic)
    assert shown.exit_code == 0, shown.stdout
    assert "automation.time_saved_min" in shown.stdout and "None" not in shown.stdout
    figures = json.loads(
        cli("kpis", "--since", "7d", "--bucket", "week", "--json", "--token", vic).stdout
    )
    assert figures["automation"]["verified_fixes"] >= 1 and figures["period"]["bucket"] == "week"
    narrowed = json.loads(
        cli("kpis", "--since", "7d", "--runbook", "no-such", "--json", "--token", vic).stdout
    )
    assert narrowed["automation"]["executions"] == 0

    ledger = json.loads(cli("trust", "ledger", "--json", "--token", vic).stdout)
    assert any(r["runbook"] == "clear-disk" and r["proposals"] >= 1 for r in ledger)
    assert cli("trust", "review", "--token", vic).exit_code == 1  # leads only
    assert cli("trust", "review", "--token", lee).exit_code == 0

    page = tmp_path / "weekly.html"
    made = cli("review", "weekly", "--since", "7d", "--out", str(page), "--token", vic)
    assert made.exit_code == 0 and "<svg" in page.read_text()

    candidate = tmp_path / "candidate.yaml"
    candidate.write_text("environments: {prod: observe, staging: observe}\n")
    replayed = cli(
        "replay", "policy", "--since", "7d", "--policy", str(candidate), "--json", "--token", lee
    )
    assert replayed.exit_code == 0, replayed.stdout
    result = json.loads(replayed.stdout)
    assert result["proposals"] >= 1 and result["less_autonomy"] >= 1
    assert result["blocked"]["after"] == result["proposals"]

    # a post-incident lesson proposes a runbook change: shown as a diff, applied by a lead
    from baton.kernel.audit import Actor
    from baton.learn.review import Lesson, ReviewIn

    path = demo.platform.settings.runbooks_path / "clear-disk.yaml"
    text = path.read_text()
    assert "risk: low" in text
    incident = executions(demo)[0].incident_id
    lesson = Lesson(
        text="clearing disk is riskier",
        runbook="clear-disk",
        proposed=text.replace("risk: low", "risk: medium"),
    )
    demo.platform.commands.save_review(incident, ReviewIn(lessons=[lesson]), Actor("tia", "human"))
    shown = cli("review", "lesson", str(incident), "0", "--token", vic)
    assert shown.exit_code == 0 and "+risk: medium" in shown.stdout and "applies" in shown.stdout
    assert cli("review", "apply", str(incident), "0", "--token", tokens["tia"]).exit_code == 1
    assert path.read_text() == text  # a technician cannot apply it
    applied = cli("review", "apply", str(incident), "0", "--token", lee)
    assert applied.exit_code == 0 and "applied to clear-disk.yaml by lee" in applied.stdout
    assert "risk: medium" in path.read_text()
