"""A drill runs on its own database to a scorecard read from its ledger and the truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from baton.harness.drill import Drill, on_record
from baton.runtime.settings import Settings
from baton.store.models import Incident
from tests.helpers import pending

ROOT = Path(__file__).resolve().parents[2]


def test_a_drill_runs_to_its_scorecard_without_touching_production(tmp_path):
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    prod = Settings(home=tmp_path, runbooks_dir=tmp_path / "runbooks")
    drill = Drill.start(prod, "tess", "bad_deploy", seed=3)
    try:
        assert drill.demo.platform.settings.db_url != prod.db_url
        for _ in range(40):
            drill.step()
            if pending(drill.demo):
                break
        [approval] = pending(drill.demo)  # the AI waits for the trainee
        commands = drill.demo.platform.commands
        with drill.demo.platform.db.session() as s:
            incident = s.scalars(select(Incident).order_by(Incident.id)).first().id
        commands.acknowledge(incident, drill.trainee)
        commands.approve(approval.id, drill.trainee, "the deploy broke it")
        for _ in range(40):
            if drill.fixed():
                break
            drill.step()
        card = drill.scorecard()
    finally:
        drill.close()
    assert card["origin_found"] and card["right_runbook"], str(card)
    assert card["time_to_acknowledge_s"] > 0 and card["time_to_fix_s"] > 0
    assert card["decisions"] == [
        f"incident.acknowledged incident:{incident}",
        f"approval.approved approval:{approval.id}",
    ]
    assert card["agreed_with_truth"] == 1 and card["unnecessary_or_harmful"] == 0
    assert [c["drill"] for c in on_record(prod)] == ["tess/001"]
    production = prod.db_url.removeprefix("sqlite:///")
    assert not Path(production).exists()  # the production database was never even created


def test_unknown_scenarios_are_named(tmp_path):
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    with pytest.raises(ValueError, match="choose one of"):
        Drill.start(Settings(home=tmp_path, runbooks_dir=tmp_path / "runbooks"), "x", "nope")
