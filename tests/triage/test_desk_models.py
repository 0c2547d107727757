"""The desk files tickets through the trained models once they exist (SQLite platform)."""

from __future__ import annotations

import shutil

import pytest

from baton.kernel.audit import Actor, records
from baton.kernel.clock import SimulatedClock
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from baton.runtime.triage_models import ticket_fields
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
