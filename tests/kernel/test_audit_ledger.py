"""The audit ledger against someone who can write the database: each tamper case the
probe found is named by `verify`, on SQLite and on PostgreSQL.

The attacker here holds the database (any SQL, triggers off) but not the key file and
not the witness file; they know the hashing scheme and recompute hashes freely.
"""

from __future__ import annotations

import json
import stat
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from baton.cli import app
from baton.kernel.audit import (
    GENESIS,
    LEDGER,
    Actor,
    Ledger,
    append,
    fields_hash,
    verify,
    witness,
)
from baton.kernel.keyring import Witness, load_keyring, read_witness, rotate
from baton.store.db import Database
from baton.store.migrate import upgrade
from baton.store.models import AuditRecord

ACTOR = Actor("tester", "human")


@pytest.fixture
def key_path(tmp_path):
    return tmp_path / "audit.key"


@pytest.fixture
def witness_path(tmp_path):
    return tmp_path / "audit-witness.jsonl"


def _open(url, key_path, witness_path, every=1000):
    keyring = load_keyring(key_path, create=True)
    ledger = Ledger(keyring, Witness(witness_path), every)
    return Database(url, session_info={LEDGER: ledger})


@pytest.fixture
def db(db_url, key_path, witness_path):
    upgrade(db_url)
    database = _open(db_url, key_path, witness_path)
    yield database
    database.dispose()


def _chain(db, clock, n=6, start=0):
    with db.session() as s:
        for i in range(start, start + n):
            append(
                s,
                actor=ACTOR,
                action="test.step",
                subject=f"thing:{i}",
                at=clock.now() + timedelta(seconds=i),
                inputs={"i": i},
                rationale=f"because {i}",
            )


def _witness_now(db, clock):
    with db.session() as s:
        return witness(s, clock.now())


def _sql(db, *statements, **params):
    """The attacker: raw SQL with the append-only trigger switched off."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(
                text("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
            )
        for statement in statements:
            conn.execute(text(statement), params)
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only"))


def _verify(db, **kw):
    with db.session() as s:
        return verify(s, **kw)


def _cases(result):
    return [f.case for f in result.findings]


def _rows(db):
    columns = [c.name for c in AuditRecord.__table__.columns]
    with db.session() as s:
        records = s.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
        return [{c: getattr(r, c) for c in columns} for r in records]


def _rehash_from(db, rows, first):
    """Recompute every hash from record `first` on (as an attacker would) and write them."""
    prev = rows[first - 2]["hash"] if first > 1 else GENESIS
    for row in rows[first - 1 :]:
        row["prev_hash"] = prev
        row["hash"] = fields_hash(row)
        prev = row["hash"]
        _sql(
            db,
            "UPDATE audit_records SET rationale = :r, prev_hash = :p, hash = :h WHERE seq = :s",
            r=row["rationale"],
            p=row["prev_hash"],
            h=row["hash"],
            s=row["seq"],
        )
    return prev


def test_a_signed_chain_verifies_and_the_key_file_is_private(db, clock, key_path):
    _chain(db, clock)
    result = _verify(db)
    assert result.ok, result.findings
    assert result.records == 6 and result.authenticated == 6 and result.legacy == 0
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with db.engine.connect() as conn:
        macs = conn.execute(text("SELECT key_id, mac FROM audit_records")).all()
    keyring = load_keyring(key_path)
    assert all(key_id == keyring.current and len(mac) == 64 for key_id, mac in macs)
    assert keyring.current.encode() not in key_path.read_bytes()[:0]  # the key is not in the db
    with db.engine.connect() as conn:
        dumped = " ".join(str(v) for v in conn.execute(text("SELECT * FROM meta")).all())
    assert next(iter(keyring.keys.values())).hex() not in dumped


def test_deleted_last_rows_and_blanked_head_are_named(db, clock):
    _chain(db, clock)
    _witness_now(db, clock)  # the heartbeat copied the head (6) out of the database
    _sql(
        db,
        "DELETE FROM audit_records WHERE seq >= 5",
        "UPDATE meta SET value = '' WHERE key = 'audit.lock'",
    )
    result = _verify(db)
    assert not result.ok
    assert "head-blanked" in _cases(result) and "deleted" in _cases(result)
    assert any("witness saw record 6" in f.message for f in result.findings)
    # the next append does not quietly paper over it: the discrepancy goes into the chain
    _chain(db, clock, 1, start=10)
    after = _verify(db)
    assert not after.ok and "head-blanked" in _cases(after)
    lost = [r for r in _rows(db) if r["action"] == "audit.head_lost"]
    assert len(lost) == 1 and lost[0]["inputs"]["chain_end"]["seq"] == 4 and lost[0]["mac"]


def test_a_blanked_head_is_named_even_without_a_witness(db, clock):
    _chain(db, clock)
    _sql(db, "UPDATE meta SET value = '' WHERE key = 'audit.lock'")
    result = _verify(db, witness_files=[])
    assert not result.ok and _cases(result) == ["head-blanked"]


def test_deleted_head_row_is_named_and_appends_record_it(db, clock):
    _chain(db, clock)
    _sql(db, "DELETE FROM meta WHERE key = 'audit.lock'")
    result = _verify(db)
    assert not result.ok and "head-deleted" in _cases(result)
    _chain(db, clock, 1, start=10)  # appends go on, and say what they found
    after = _verify(db)
    assert not after.ok and "head-blanked" in _cases(after)
    assert "was deleted" in after.findings[0].message


def test_deleted_newest_record_is_named(db, clock):
    _chain(db, clock)
    _sql(db, "DELETE FROM audit_records WHERE seq = 6")
    result = _verify(db)
    assert not result.ok and result.broken_seq == 6 and "deleted" in _cases(result)


def test_appended_forged_record_with_a_correct_hash_is_named(db, clock):
    _chain(db, clock)
    last = _rows(db)[-1]
    forged = {
        **last,
        "seq": 7,
        "actor": "alice",
        "action": "approval.granted",
        "rationale": "looks fine",
        "prev_hash": last["hash"],
        "key_id": None,
        "mac": None,
    }
    forged["hash"] = fields_hash(forged)
    columns = ", ".join(forged)
    values = ", ".join(f":{k}" for k in forged)
    forged["inputs"] = json.dumps(forged["inputs"])
    _sql(db, f"INSERT INTO audit_records ({columns}) VALUES ({values})", **forged)
    result = _verify(db)
    assert not result.ok and _cases(result) == ["appended"] and result.broken_seq == 7
    # moving the head up to it as well: the head has no valid MAC, the record none at all
    _sql(db, "UPDATE meta SET value = :v WHERE key = 'audit.lock'", v=f"7:{forged['hash']}")
    moved = _verify(db)
    assert not moved.ok and {"forged", "head-forged"} <= set(_cases(moved))


def test_forged_record_with_a_made_up_mac_fails_it(db, clock):
    _chain(db, clock)
    _sql(db, "UPDATE audit_records SET mac = :m WHERE seq = 2", m="0" * 64)
    result = _verify(db)
    assert not result.ok and _cases(result) == ["forged"] and result.broken_seq == 2


def test_edited_record_with_every_hash_recomputed_fails_its_mac(db, clock):
    _chain(db, clock)
    _witness_now(db, clock)
    rows = _rows(db)
    rows[2]["rationale"] = "nothing to see here"
    new_last = _rehash_from(db, rows, 3)
    _sql(db, "UPDATE meta SET value = :v WHERE key = 'audit.lock'", v=f"6:{new_last}")
    result = _verify(db)
    assert not result.ok and result.broken_seq == 3
    assert _cases(result)[0] == "forged" and "records 3..6" in result.problem
    assert {"head-forged", "witness-mismatch"} <= set(_cases(result))
    # without the witness, the MAC alone still names it
    assert "forged" in _cases(_verify(db, witness_files=[]))


def test_a_record_signed_with_an_unknown_key_id_is_named(db, clock):
    _chain(db, clock)
    _sql(db, "UPDATE audit_records SET key_id = 'kdeadbeef' WHERE seq = 4")
    result = _verify(db)
    assert not result.ok and _cases(result) == ["unknown-key"] and result.broken_seq == 4
    assert "kdeadbeef" in result.problem


def test_deleting_the_newest_records_and_recomputing_everything_is_caught_by_the_witness(
    db, clock, db_url, key_path, witness_path
):
    """The database holder replays a head value they saved earlier (validly signed):
    nothing inside the database can tell; the witness outside it can."""
    _chain(db, clock, 4)
    with db.engine.connect() as conn:
        saved_head = conn.execute(text("SELECT value FROM meta WHERE key = 'audit.lock'")).scalar()
    _chain(db, clock, 3, start=4)
    _witness_now(db, clock)
    _sql(
        db,
        "DELETE FROM audit_records WHERE seq > 4",
        "UPDATE meta SET value = :v WHERE key = 'audit.lock'",
        v=saved_head,
    )
    assert _verify(db, witness_files=[]).ok  # inside the database it all holds together
    result = _verify(db)
    assert not result.ok and _cases(result) == ["deleted"] and result.witnessed == 7
    assert "witness saw record 7 but the chain ends at 4" in result.problem


def test_a_forged_witness_entry_is_named(db, clock, witness_path):
    _chain(db, clock)
    _witness_now(db, clock)
    with open(witness_path, "a") as handle:
        handle.write(
            json.dumps({"seq": 2, "hash": "f" * 64, "key_id": "x", "mac": "0" * 64}) + "\n"
        )
        handle.write("not json\n")
    result = _verify(db)
    assert not result.ok and _cases(result).count("witness-forged") == 2


def test_the_witness_file_gets_a_signed_entry_every_n_appends(
    db_url, key_path, witness_path, clock
):
    upgrade(db_url)
    db = _open(db_url, key_path, witness_path, every=5)
    for i in range(12):
        _chain(db, clock, 1, start=i)
    entries = [e for _, e in read_witness(witness_path)]
    assert [e["seq"] for e in entries] == [5, 10]
    assert _witness_now(db, clock)["seq"] == 12  # the heartbeat adds the tail
    assert _witness_now(db, clock) is None  # nothing new: nothing written
    assert _verify(db).ok and _verify(db).witnessed == 12
    db.dispose()


def test_the_witness_webhook_receives_each_new_head(
    db_url, key_path, witness_path, clock, http_peer
):
    url, seen = http_peer
    upgrade(db_url)
    keyring = load_keyring(key_path, create=True)
    db = Database(
        db_url, session_info={LEDGER: Ledger(keyring, Witness(witness_path, f"{url}/ok"))}
    )
    _chain(db, clock, 3)
    _witness_now(db, clock)
    _chain(db, clock, 2, start=3)
    _witness_now(db, clock)
    bodies = [body for path, _, body in seen if path == "/ok"]
    assert [b["seq"] for b in bodies] == [3, 5]
    assert keyring.check(bodies[-1]["key_id"], f"witness:5:{bodies[-1]['hash']}", bodies[-1]["mac"])
    # what the webhook kept can be handed to verify like any witness file
    kept = witness_path.parent / "webhook.jsonl"
    kept.write_text("".join(json.dumps(b) + "\n" for b in bodies))
    _sql(
        db,
        "DELETE FROM audit_records WHERE seq = 5",
        "UPDATE meta SET value = '' WHERE key = 'audit.lock'",
    )
    result = _verify(db, witness_files=[kept])
    assert not result.ok and "deleted" in _cases(result)
    db.dispose()


def test_a_failing_witness_webhook_pauses_and_the_file_still_gets_the_head(
    db_url, key_path, witness_path, clock, http_peer
):
    url, seen = http_peer
    upgrade(db_url)
    keyring = load_keyring(key_path, create=True)
    sink = Witness(witness_path, f"{url}/fail")
    db = Database(db_url, session_info={LEDGER: Ledger(keyring, sink)})
    _chain(db, clock, 2)
    assert _witness_now(db, clock)["seq"] == 2
    _chain(db, clock, 1, start=2)
    _witness_now(db, clock)  # within the pause: the dead receiver is not asked again
    assert [path for path, _, _ in seen] == ["/fail"]
    assert [e["seq"] for _, e in read_witness(witness_path)] == [2, 3]
    db.dispose()


def test_a_rotated_key_keeps_old_records_verifiable(db_url, key_path, witness_path, clock):
    upgrade(db_url)
    db = _open(db_url, key_path, witness_path)
    _chain(db, clock, 3)
    db.dispose()
    first = load_keyring(key_path).current
    second = rotate(key_path)
    db = _open(db_url, key_path, witness_path)
    _chain(db, clock, 3, start=3)
    result = _verify(db)
    assert result.ok and result.authenticated == 6, result.findings
    ids = [r["key_id"] for r in _rows(db)]
    assert ids == [first] * 3 + [second] * 3
    # a keyring that lost the old key cannot vouch for the old records
    key_path.write_text(
        "\n".join(line for line in key_path.read_text().splitlines() if not line.startswith(first))
        + "\n"
    )
    db.dispose()
    db = _open(db_url, key_path, witness_path)
    lost = _verify(db)
    assert not lost.ok and _cases(lost)[:3] == ["unknown-key"] * 3
    db.dispose()


def test_legacy_records_verify_as_unauthenticated_and_strict_refuses_them(
    db_url, key_path, witness_path, clock
):
    upgrade(db_url)
    old = Database(db_url)  # what every version before audit keys wrote
    _chain(old, clock, 4)
    old.dispose()
    db = _open(db_url, key_path, witness_path)
    _chain(db, clock, 2, start=4)
    result = _verify(db)
    assert result.ok and result.legacy == 4 and result.authenticated == 2
    strict = _verify(db, strict=True)
    assert not strict.ok and _cases(strict) == ["unauthenticated"]
    # but a record without a MAC after signed ones is a forgery, not legacy
    _sql(db, "UPDATE audit_records SET key_id = NULL, mac = NULL WHERE seq = 6")
    stripped = _verify(db)
    assert not stripped.ok and "forged" in _cases(stripped) and stripped.broken_seq == 6
    db.dispose()


def test_an_old_database_migrates_and_verifies_as_legacy(db_url, key_path, witness_path, clock):
    """Records written at migration 0006 (no key columns), including a blank head from
    before the stored head existed, still verify after the upgrade."""
    upgrade(db_url, "0006")
    engine = Database(db_url).engine
    prev = GENESIS
    with engine.begin() as conn:
        for seq in range(1, 5):
            row = {
                "seq": seq,
                "ts": clock.now() + timedelta(seconds=seq),
                "actor": "old",
                "actor_kind": "system",
                "actor_version": None,
                "action": "legacy.step",
                "subject": f"s:{seq}",
                "inputs": {"n": seq},
                "decision": None,
                "rationale": None,
                "outcome": None,
                "prev_hash": prev,
            }
            row["hash"] = prev = fields_hash(row)
            row["inputs"] = json.dumps(row["inputs"])
            cols = ", ".join(row)
            conn.execute(
                text(
                    f"INSERT INTO audit_records ({cols}) VALUES ({', '.join(':' + c for c in row)})"
                ),
                row,
            )
        conn.execute(text("UPDATE meta SET value = '' WHERE key = 'audit.lock'"))
    engine.dispose()
    upgrade(db_url)
    db = _open(db_url, key_path, witness_path)
    result = _verify(db)
    assert result.ok and result.legacy == 4, result.findings
    _chain(db, clock, 2, start=10)  # no head_lost: the migration filled the head
    after = _verify(db)
    assert after.ok and after.legacy == 4 and after.authenticated == 2
    assert not [r for r in _rows(db) if r["action"] == "audit.head_lost"]
    db.dispose()


def test_without_the_key_signed_records_are_not_called_intact(db, clock, db_url):
    _chain(db, clock)
    unkeyed = Database(db_url)
    with unkeyed.session() as s:
        result = verify(s)
    unkeyed.dispose()
    assert not result.ok and _cases(result) == ["key-missing"]


def test_cli_verify_names_the_case_and_rotates_keys(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("BATON_HOME", str(home))
    monkeypatch.delenv("BATON_DATABASE_URL", raising=False)
    monkeypatch.delenv("BATON_CONFIG", raising=False)
    runner = CliRunner()
    made = runner.invoke(app, ["token", "create", "--name", "alice", "--role", "lead"])
    assert made.exit_code == 0, made.output
    assert (home / "audit.key").exists()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output and "1 signed" in ok.output
    rotated = runner.invoke(app, ["audit", "rotate-key"])
    assert rotated.exit_code == 0 and "new audit key" in rotated.output
    runner.invoke(app, ["token", "create", "--name", "bob", "--role", "lead"])
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    db = Database(f"sqlite:///{home / 'baton.db'}")
    _sql(db, "UPDATE meta SET value = '' WHERE key = 'audit.lock'")
    db.dispose()
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "head-blanked" in broken.output
    as_json = runner.invoke(app, ["audit", "verify", "--json"])
    report = json.loads(as_json.output.strip().splitlines()[0])
    assert report["ok"] is False and report["findings"][0]["case"] == "head-blanked"


def test_the_platform_signs_and_witnesses_on_its_heartbeat(platform, settings):
    platform.scheduler.tick()
    entries = [e for _, e in read_witness(settings.audit_witness_path)]
    assert entries and entries[-1]["seq"] >= 1
    with platform.db.session() as s:
        result = verify(s)
    assert result.ok and result.authenticated == result.records and result.witnessed
