"""The desk files tickets through the trained models once they exist (SQLite platform)."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from baton.kernel.audit import Actor, records
from baton.kernel.clock import SimulatedClock
from baton.kernel.errors import Invalid
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from baton.runtime.triage_models import ticket_fields
from baton.store.models import TriageCorrection, TriagePrediction
from baton.triage import registry
from baton.triage.model import train
from tests.conftest import ROOT, START
from tests.triage.synthetic import tickets


@pytest.fixture
def platform(tmp_path):
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'baton.db'}",
        runbooks_dir=tmp_path / "runbooks",
    )
    p = Platform(settings, SimulatedClock(START)).start()
    yield p
    p.close()


def test_filed_tickets_use_the_category_model_and_only_enabled_values(platform):
    desk = platform.desk
    keyword = desk.file("ann", "disk", "my laptop screen is broken")  # no model yet
    assert keyword.category != "hardware"
    model = train("category", tickets(per_class=10), text_columns=["subject", "body"])
    with platform.db.session() as s:
        registry.save(s, model, tickets(per_class=10), by=Actor("lee", "human"), at=START)
    # 'hardware' is not a desk option: the model may only pick among enabled ones
    ticket = desk.file("ann", "quota", "my disk quota is full, the share has no space")
    assert ticket.category == "storage"
    with platform.db.session() as s:
        applied = [
            r
            for r in records(s, subject=f"ticket:{ticket.id}", limit=1000)
            if r.actor == "baton.triage.category"
        ]
    assert applied and applied[0].actor_version == model.version
    desk.set_option("category", "storage", False, None)
    later = desk.file("ann", "quota", "my disk quota is full, the share has no space")
    assert later.category != "storage"


def test_ticket_fields_map_subject_and_body_by_name():
    assert ticket_fields(["Subject", "body"], "s", "b") == {"Subject": "s", "body": "b"}
    assert ticket_fields(["Document"], "s", "b") == {"Document": "s\nb"}


def test_predictions_are_kept_and_a_technicians_change_is_a_correction(platform):
    desk = platform.desk
    examples = tickets(per_class=10)
    model = train("category", examples, text_columns=["subject", "body"], threshold=0.99)
    with platform.db.session() as s:
        registry.save(s, model, examples, by=Actor("lee", "human"), at=START)
    # a bar of 0.99 (stored with the model, not the desk's default) -> only suggested
    ticket = desk.file("ann", "quota", "my disk quota is full, the share has no space")
    assert ticket.category is None and "category" in (ticket.suggestions or {})
    with platform.db.session() as s:
        kept = s.scalars(
            select(TriagePrediction).where(TriagePrediction.subject == f"ticket:{ticket.id}")
        ).all()
        assert [(k.model_name, k.model_version, k.applied) for k in kept] == [
            ("category", model.version, False)
        ]
    desk.update(ticket.id, "category", "storage", Actor("kim", "human"))
    with platform.db.session() as s:
        fixes = s.scalars(select(TriageCorrection)).all()
        assert [(f.subject, f.value, f.prediction_id, f.by) for f in fixes] == [
            (f"ticket:{ticket.id}", "storage", kept[0].id, "kim")
        ]
        assert fixes[0].fields["subject"] == "quota"
        result = registry.retrain(s, "category", by=Actor("lee", "human"), at=START)
    assert result["corrections_used"] == 1


def test_a_lower_stored_threshold_applies_and_the_api_takes_corrections(platform):
    examples = tickets(per_class=10)
    model = train("category", examples, text_columns=["subject", "body"], threshold=0.05)
    with platform.db.session() as s:
        registry.save(s, model, examples, by=Actor("lee", "human"), at=START)
    ticket = platform.desk.file("ann", "quota", "my disk quota is full, the share has no space")
    assert ticket.category == "storage"
    out = platform.commands.correct_triage(
        "category", "mail:77", {"subject": "s", "body": "b"}, "email", Actor("kim", "human")
    )
    assert out["value"] == "email" and out["prediction"] is None
    with pytest.raises(Invalid):
        platform.commands.correct_triage("category", "x", {}, "email", Actor("kim", "human"))
