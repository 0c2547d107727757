"""Model versions in the database: every prediction names its version, corrections are
kept, and a retrain learns from them (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from baton.kernel.audit import Actor, records
from baton.kernel.errors import Invalid, NotFound
from baton.store.db import Database
from baton.store.migrate import upgrade
from baton.store.models import TriageCorrection, TriagePrediction
from baton.triage import registry
from baton.triage.model import predict, train
from tests.triage.synthetic import tickets

TIA = Actor("tia", "human")


def _migrated(url: str):
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def db(db_url):
    """A migrated database, SQLite and PostgreSQL (no platform: nothing else is needed)."""
    yield from _migrated(db_url)


@pytest.fixture
def lite(tmp_path):
    """SQLite only, for the retrain logic: the first test covers storage on both."""
    yield from _migrated(f"sqlite:///{tmp_path / 'triage.db'}")


def _store(db, clock):
    model = train(
        "category", tickets(per_class=10), text_columns=["subject", "body"], label="category"
    )
    with db.session() as s:
        registry.save(s, model, tickets(per_class=10), by=TIA, at=clock.now())
    return model


@pytest.fixture
def stored(db, clock):
    return _store(db, clock)


def test_predictions_record_their_version_and_bad_corrections_are_refused(db, clock, stored):
    fields = {"subject": "disk", "body": "my disk quota is full"}
    with db.session() as s:
        model = registry.active(s, "category")
        assert model.version == stored.version and model.classes == stored.classes
        p = predict(model, fields, allowed={"storage", "access"})
        row = registry.record(s, model, "ticket:7", p, at=clock.now(), inputs={"ticket": 7})
        assert row.model_version == stored.version and row.value == "storage"
        assert row.applied == (p.confidence >= model.threshold)
        (said,) = records(s, action="triage.predicted")
        assert said.subject == "ticket:7" and "calibrated confidence" in said.rationale
        assert said.actor == "baton.triage.category" and said.actor_version == stored.version
        (made,) = records(s, action="triage.model.trained")
        assert made.actor == "tia" and stored.version in made.decision

    with db.session() as s:
        with pytest.raises(Invalid):
            registry.correct(
                s,
                "category",
                "ticket:1",
                {"subject": "x", "body": "y"},
                " ",
                by=TIA,
                at=clock.now(),
            )
        with pytest.raises(Invalid, match="text column"):
            registry.correct(
                s, "category", "ticket:1", {"subject": "x"}, "access", by=TIA, at=clock.now()
            )
        with pytest.raises(NotFound):
            registry.correct(
                s,
                "category",
                "ticket:1",
                {"subject": "x", "body": "y"},
                "access",
                by=TIA,
                at=clock.now(),
                prediction_id=999,
            )
        with pytest.raises(NotFound):
            registry.active(s, "priority")
        with pytest.raises(Invalid):
            registry.set_threshold(s, "category", 1.5, by=TIA, at=clock.now())
        registry.set_threshold(s, "category", 0.95, by=TIA, at=clock.now())
    with db.session() as s:
        assert registry.active(s, "category").threshold == 0.95  # the cached model too
        (moved,) = records(s, action="triage.threshold.set")
        assert moved.actor == "tia" and moved.decision == "threshold 0.95"


def test_corrections_are_stored_and_used_by_retrain(lite, clock):
    db, stored = lite, _store(lite, clock)
    new_class = {"subject": "fax", "body": "the fax machine eats paper"}
    with db.session() as s:
        model = registry.active(s, "category")
        first = registry.record(s, model, "ticket:1", predict(model, new_class), at=clock.now())
        for i in range(1, 5):  # technicians teach a class the export never had
            registry.correct(
                s,
                "category",
                f"ticket:{i}",
                new_class,
                "fax",
                by=TIA,
                at=clock.now(),
                prediction_id=first.id if i == 1 else None,
            )
        registry.correct(s, "category", "ticket:4", new_class, "fax ", by=TIA, at=clock.now())
        result = registry.retrain(s, "category", by=TIA, at=clock.now())
    assert result["previous_version"] == stored.version != result["version"]
    assert result["corrections_used"] == 4 and result["corrections_superseded"] == 1
    with db.session() as s:
        retrained = registry.active(s, "category")
        assert retrained.version == result["version"] and "fax" in retrained.classes
        assert predict(retrained, new_class).value == "fax"
        corrections = s.scalars(select(TriageCorrection).order_by(TriageCorrection.id)).all()
        assert corrections[0].predicted == s.get(TriagePrediction, first.id).value
        assert {c.learned_in for c in corrections} == {result["version"]}
        assert [v.active for v in registry.versions(s, "category")] == [False, True]
        # the old version still loads, to explain what it predicted
        assert registry.active(s, "category", stored.version).version == stored.version
        assert len(records(s, action="triage.corrected")) == 5
        assert len(records(s, action="triage.model.trained")) == 2
