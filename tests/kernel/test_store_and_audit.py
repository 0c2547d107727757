from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from baton.kernel.audit import MASK, Actor, append, verify
from baton.store.db import Database
from baton.store.migrate import head_revision, is_current, upgrade

TABLES = {
    "services",
    "service_dependencies",
    "events",
    "incidents",
    "tickets",
    "runbooks",
    "proposals",
    "decisions",
    "approvals",
    "executions",
    "execution_steps",
    "audit_records",
    "users",
    "api_tokens",
    "meta",
}


@pytest.fixture
def db(db_url):
    upgrade(db_url)
    database = Database(db_url)
    yield database
    database.dispose()


def test_migrations_create_every_table_and_are_current(db):
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    assert is_current(db.engine)
    assert head_revision()
    upgrade(db.url)  # idempotent


def _chain(db, clock, n=5):
    with db.session() as s:
        for i in range(n):
            append(
                s,
                actor=Actor("tester", "human"),
                action="test.step",
                subject=f"thing:{i}",
                at=clock.now() + timedelta(seconds=i),
                inputs={"i": i, "password": "hunter2"},
                rationale=f"because {i}",
            )


def test_chain_verifies_and_masks_secrets(db, clock):
    _chain(db, clock)
    with db.session() as s:
        result = verify(s)
        assert result.ok and result.records == 5
        dump = s.execute(text("SELECT inputs FROM audit_records")).scalars().all()
    assert all("hunter2" not in str(x) for x in dump)
    assert any(MASK in str(x) for x in dump)


def _tamper(db, sql):
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(
                text("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
            )
        conn.execute(text(sql))


@pytest.mark.parametrize(
    "sql, seq, words",
    [
        ("UPDATE audit_records SET rationale = 'nothing to see' WHERE seq = 3", 3, "altered"),
        ("DELETE FROM audit_records WHERE seq = 2", 2, "missing"),
        (
            "UPDATE audit_records SET ts = ts WHERE seq = 4; "
            "UPDATE audit_records SET subject = 'thing:x' WHERE seq = 4",
            4,
            "altered",
        ),
    ],
)
def test_tampering_is_detected_and_named(db, clock, sql, seq, words):
    _chain(db, clock)
    for statement in sql.split("; "):
        _tamper(db, statement)
    with db.session() as s:
        result = verify(s)
    assert not result.ok
    assert result.broken_seq == seq
    assert words in result.problem and str(seq) in result.problem


def test_deleting_the_newest_records_is_detected(db, clock):
    _chain(db, clock)
    _tamper(db, "DELETE FROM audit_records WHERE seq >= 4")
    with db.session() as s:
        result = verify(s)
    assert not result.ok and result.broken_seq == 4
    assert "record 4 is missing" in result.problem and "newest" in result.problem


def test_models_match_migrations(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from baton.store.models import Base

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_secrets_in_free_text_are_masked(db, clock):
    with db.session() as s:
        append(
            s,
            actor=Actor("t", "human"),
            action="x",
            subject="y",
            at=clock.now(),
            rationale="login with password=hunter2 and bt_abcdefghijklmnopqrstuvwxyz",
        )
    with db.session() as s:
        text_ = s.execute(text("SELECT rationale FROM audit_records")).scalar_one()
    assert "hunter2" not in text_ and "bt_abc" not in text_


def test_reordering_is_detected(db, clock):
    _chain(db, clock)
    # swap the contents of records 2 and 3 (keeping their sequence numbers)
    _tamper(db, "UPDATE audit_records SET seq = 100 WHERE seq = 2")
    _tamper(db, "UPDATE audit_records SET seq = 2 WHERE seq = 3")
    _tamper(db, "UPDATE audit_records SET seq = 3 WHERE seq = 100")
    with db.session() as s:
        result = verify(s)
    assert not result.ok and result.broken_seq == 2


@pytest.mark.postgres
def test_postgres_refuses_audit_updates(pg_url, clock):
    upgrade(pg_url)
    db = Database(pg_url)
    _chain(db, clock, 2)
    with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET rationale = 'x'"))
    with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records"))
    db.dispose()


def test_concurrent_appends_keep_one_chain(db, clock):
    import threading

    def writer(k):
        for i in range(10):
            with db.session() as s:
                append(
                    s,
                    actor=Actor(f"w{k}", "system"),
                    action="t",
                    subject=f"{k}:{i}",
                    at=clock.now(),
                )

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.session() as s:
        result = verify(s)
    assert result.ok and result.records == 40
