"""The tamper-evident audit ledger.

Each record carries the hash of the one before it; the hash is SHA-256 over a canonical
JSON encoding of the record's fields. Editing, deleting or reordering any row breaks the
chain at that row, and `verify` names it. The application only ever appends.

A hash chain stops nobody who can write the database: they recompute the hashes. So each
record is also signed (HMAC-SHA256) under a key kept outside the database (`Ledger`,
`baton.kernel.keyring`), the chain's head is stored signed beside it and checked against
the records both ways, and the head is copied now and then to an external witness, so
that even deleting the newest records and recomputing everything shows.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from baton.kernel.keyring import Keyring, Witness, read_witness, witness_message
from baton.store.models import AuditRecord

log = logging.getLogger("baton.audit")

GENESIS = "0" * 64
ACTOR_KINDS = ("human", "ai", "system")

# Values under keys like these are replaced before anything is written.
_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api[_-]?key|credential|private[_-]?key)", re.I)
MASK = "***"


@dataclass(frozen=True)
class Actor:
    """Who did it: a person, or an AI component with its model and version."""

    name: str
    kind: str = "system"
    version: str | None = None
    # a person acting with a token someone else minted for them: that someone, who has
    # held the secret too (four-eyes counts both; govern/flows.py)
    issued_by: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind must be one of {ACTOR_KINDS}, not {self.kind!r}")


SYSTEM = Actor("baton.audit", "system")


_SECRET_TEXT = re.compile(
    r"(?i)\b(pass(?:word)?|secret|token|api[_-]?key)(\s*[=:]\s*)(\S+)|\bbt_[A-Za-z0-9_-]{16,}"
)


def mask_text(value: str | None) -> str | None:
    """Mask `password=...`-style pairs and Baton tokens inside free text."""
    if not value:
        return value
    return _SECRET_TEXT.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{MASK}" if m.group(1) else MASK, value
    )


def mask_secrets(value: Any) -> Any:
    """Copy of `value` with secret-looking keys masked, recursively."""
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and _SECRET_KEY.search(k) else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


HASHED = (
    "seq",
    "ts",
    "actor",
    "actor_kind",
    "actor_version",
    "action",
    "subject",
    "inputs",
    "decision",
    "rationale",
    "outcome",
    "prev_hash",
)


def fields_hash(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical encoding of every field but the hash itself."""
    body = {name: fields[name] for name in HASHED}
    body["ts"] = _ts(body["ts"])
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def record_hash(record: AuditRecord) -> str:
    """The hash a stored record should carry."""
    return fields_hash({name: getattr(record, name) for name in HASHED})


_HEAD = "baton.audit.head"
_START = "baton.audit.start"  # the head when this transaction took the lock
_LOST = "baton.audit.lost"  # the stored head was blank or gone though records exist
LEDGER = "baton.audit.ledger"  # Session.info key: the Ledger this session signs with
LOCK_KEY = "audit.lock"
HEAD_LOST = "audit.head_lost"


@dataclass
class Ledger:
    """What signs and witnesses this database's chain; it lives outside the database.

    Put one in `Session.info[LEDGER]` (the runtime opens every database with one).
    Without it records are written unauthenticated, like those of old versions.
    """

    keyring: Keyring | None = None
    witness: Witness | None = None
    witness_every: int = 100  # appends between file witness entries
    witnessed: int = 0  # newest seq this process wrote to the witness file
    sent: int = 0  # newest seq this process posted to the witness webhook


def _ledger(session: Session) -> Ledger | None:
    return session.info.get(LEDGER)


def record_message(key_id: str, digest: str) -> str:
    return f"record:{key_id}:{digest}"


def head_message(key_id: str, seq: int, digest: str) -> str:
    return f"head:{key_id}:{seq}:{digest}"


@event.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # savepoints inside the transaction keep the head
        for key in (_HEAD, _START, _LOST):
            session.info.pop(key, None)


@event.listens_for(Session, "before_commit")
def _store_head(session: Session) -> None:
    """Record the chain's head beside it (signed), so deleting the newest records shows."""
    head = session.info.get(_HEAD)
    if head is None or session.in_nested_transaction():  # a savepoint's release
        return
    value = f"{head[0]}:{head[1]}"
    ledger = _ledger(session)
    if ledger is not None and ledger.keyring is not None:
        key_id, mac = ledger.keyring.mac(head_message(ledger.keyring.current, *head))
        value = f"{value}:{key_id}:{mac}"
    session.execute(text("UPDATE meta SET value = :v WHERE key = :k"), {"v": value, "k": LOCK_KEY})


@event.listens_for(Session, "after_commit")
def _witness_on_commit(session: Session) -> None:
    """Every `witness_every` appends, copy the head to the witness file."""
    ledger, head, start = _ledger(session), session.info.get(_HEAD), session.info.get(_START)
    if ledger is None or ledger.witness is None or ledger.keyring is None or head is None:
        return
    if start is not None and head[0] // ledger.witness_every > start[0] // ledger.witness_every:
        entry = ledger.witness.entry(ledger.keyring, head[0], head[1], _ts(datetime.now(UTC)))
        ledger.witness.write_file(entry, sync=False)
        ledger.witnessed = max(ledger.witnessed, head[0])


def witness(session: Session, at: datetime) -> dict[str, Any] | None:
    """Copy the stored head to the witness file and webhook where it moved since this
    process last did; the heartbeat calls this. Returns the entry, if there was news."""
    ledger = _ledger(session)
    if ledger is None or ledger.witness is None or ledger.keyring is None:
        return None
    head = _stored_head(session)
    if head is None or not head.seq or head.seq <= min(ledger.witnessed, ledger.sent):
        return None
    entry = ledger.witness.entry(ledger.keyring, head.seq, head.hash, _ts(at))
    if head.seq > ledger.witnessed:
        ledger.witness.write_file(entry)
        ledger.witnessed = head.seq
    if head.seq > ledger.sent and ledger.witness.post(entry):
        ledger.sent = head.seq
    return entry


def serialize(session: Session) -> None:
    """Take the audit chain's lock now (held to commit): writers that check-then-insert
    (execution limits) use it so concurrent transactions cannot both pass a check."""
    if session.info.get(_HEAD) is None:
        stored = _lock_chain(session)
        head = (stored.seq, stored.hash) if stored and stored.seq else _read_head(session)
        if (stored is None or not stored.seq) and head[0]:
            # the head was blanked or its row deleted while records exist: never let
            # this append quietly paper over it; it goes into the chain, signed
            session.info[_LOST] = "deleted" if stored is None else "blank"
            log.error(
                "audit head missing though the chain has records",
                extra={"head": session.info[_LOST], "chain_end": head[0]},
            )
        session.info[_HEAD] = session.info[_START] = head


def _read_head(session: Session) -> tuple[int, str]:
    last = session.execute(
        select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


@dataclass(frozen=True)
class StoredHead:
    """The head as stored in the meta row: `seq:hash[:key_id:mac]` (blank: seq 0)."""

    seq: int
    hash: str
    key_id: str | None = None
    mac: str | None = None

    @classmethod
    def parse(cls, value: str | None) -> StoredHead:
        parts = (value or "").split(":")
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1]:
            return cls(0, "")
        key_id, mac = (parts[2], parts[3]) if len(parts) >= 4 else (None, None)
        return cls(int(parts[0]), parts[1], key_id, mac)


def _stored_head(session: Session) -> StoredHead | None:
    value = session.scalar(text("SELECT value FROM meta WHERE key = :k"), {"k": LOCK_KEY})
    return None if value is None else StoredHead.parse(value)


def _lock_chain(session: Session) -> StoredHead | None:
    """Serialise appends until the caller commits, across threads and processes; return
    the stored head (None when its row was deleted: it is put back, blank).

    Updating one well-known row takes PostgreSQL's row lock and SQLite's write lock,
    both held to the end of the transaction, so no two appends read the same head.
    """
    row = session.execute(
        text("UPDATE meta SET value = value WHERE key = :k RETURNING value"), {"k": LOCK_KEY}
    ).first()
    if row is None:
        session.execute(text("INSERT INTO meta (key, value) VALUES (:k, '')"), {"k": LOCK_KEY})
        return None
    return StoredHead.parse(row[0])


_INSERT = AuditRecord.__table__.insert()  # Core, built once: appends sit on hot paths


def append(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject: str,
    at: datetime,
    inputs: dict[str, Any] | None = None,
    decision: str | None = None,
    rationale: str | None = None,
    outcome: str | None = None,
) -> None:
    """Append one record to the chain inside the caller's transaction."""
    serialize(session)  # first append of this transaction: lock, then read the head once
    lost = session.info.pop(_LOST, None)
    if lost:
        seq, digest = session.info[_HEAD]
        inputs_lost = {"stored_head": lost, "chain_end": {"seq": seq, "hash": digest}}
        why = f"the stored head was {lost} while the chain held {seq} records: "
        why += "records after it may have been deleted"
        _insert(session, SYSTEM, HEAD_LOST, "audit", at, inputs_lost, "continued", why, None)
    _insert(session, actor, action, subject, at, inputs, decision, rationale, outcome)


def _insert(
    session: Session,
    actor: Actor,
    action: str,
    subject: str,
    at: datetime,
    inputs: dict[str, Any] | None,
    decision: str | None,
    rationale: str | None,
    outcome: str | None,
) -> None:
    seq, prev_hash = session.info[_HEAD]
    fields: dict[str, Any] = {
        "seq": seq + 1,
        "ts": at.astimezone(UTC),
        "actor": actor.name,
        "actor_kind": actor.kind,
        "actor_version": actor.version,
        "action": action,
        "subject": subject,
        "inputs": orjson.loads(orjson.dumps(mask_secrets(inputs or {}), default=str)),
        "decision": mask_text(decision),
        "rationale": mask_text(rationale),
        "outcome": mask_text(outcome),
        "prev_hash": prev_hash,
    }
    fields["hash"] = fields_hash(fields)
    ledger = _ledger(session)
    if ledger is not None and ledger.keyring is not None:
        key_id = ledger.keyring.current
        fields["key_id"], fields["mac"] = ledger.keyring.mac(record_message(key_id, fields["hash"]))
    else:
        fields["key_id"] = fields["mac"] = None
    session.execute(_INSERT, fields)
    session.info[_HEAD] = (fields["seq"], fields["hash"])


@dataclass(frozen=True)
class Finding:
    """One way the ledger does not hold, named: `case` is a stable word for scripts."""

    case: str
    seq: int | None
    message: str


# the cases `verify` names, each with what it means
CASES = {
    "deleted": "records are missing from the chain or from its end",
    "reordered": "a record does not follow the one before it",
    "edited": "a record's content does not match its hash",
    "forged": "a record fails its MAC: altered with every hash recomputed, or forged",
    "appended": "records come after the stored head: appended behind Baton's back",
    "unknown-key": "a record names a key id the keyring does not hold",
    "head-blanked": "the stored head was blanked while the chain had records",
    "head-deleted": "the stored head's row was deleted",
    "head-forged": "the stored head fails its MAC",
    "witness-mismatch": "a record differs from what the external witness saw",
    "witness-forged": "a witness entry fails its MAC or is not an entry",
    "key-missing": "records are signed but no audit key was available to check them",
    "unauthenticated": "legacy records carry no MAC (refused with --strict)",
}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    problem: str | None = None
    broken_seq: int | None = None
    findings: tuple[Finding, ...] = ()
    legacy: int = 0  # unauthenticated records from before audit keys
    authenticated: int = 0
    witnessed: int | None = None  # the newest witness entry compared with the chain


def _walk(session: Session, batch: int = 2000) -> Iterator[AuditRecord]:
    last_seq = 0
    while True:
        rows = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.seq > last_seq)
            .order_by(AuditRecord.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_seq = rows[-1].seq
        session.expunge_all()


_FROM_LEDGER: Any = object()
MAX_FINDINGS = 50


class _Check:
    """Findings as the walk meets them; runs of records failing their MAC become one."""

    def __init__(self, head: StoredHead | None) -> None:
        self.findings: list[Finding] = []
        self.head = head
        self._run: tuple[int, int, bool] | None = None  # first, last, without any MAC

    def add(self, case: str, seq: int | None, message: str) -> None:
        self.close_run()
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(Finding(case, seq, message))

    def bad_mac(self, seq: int, missing: bool) -> None:
        if self._run and self._run[1] == seq - 1:
            self._run = (self._run[0], seq, self._run[2] and missing)
        else:
            self.close_run()
            self._run = (seq, seq, missing)

    def close_run(self) -> None:
        if self._run is None:
            return
        first, last, missing = self._run
        self._run = None
        span = f"record {first}" if first == last else f"records {first}..{last}"
        how = "carries no MAC although earlier records do" if missing else "fails its MAC"
        if self.head and self.head.seq and first > self.head.seq:
            self.add(
                "appended",
                first,
                f"{span} came after the stored head ({self.head.seq}) and {how}: appended "
                "behind Baton's back (a correct hash is not enough without the key)",
            )
        else:
            self.add(
                "forged",
                first,
                f"{span} {how}: altered with every hash after it recomputed, or forged, "
                "by someone without the audit key",
            )


def _witnessed(files: list[Path], keyring: Keyring | None, check: _Check) -> dict[int, str]:
    """seq → hash from every authentic witness entry in `files`."""
    seen: dict[int, str] = {}
    for path in files:
        for number, entry in read_witness(path):
            if entry is None:
                check.add("witness-forged", None, f"{path}:{number}: not a witness entry")
                continue
            seq, digest = entry["seq"], str(entry.get("hash"))
            if keyring is not None:
                ok = keyring.check(
                    entry.get("key_id"), witness_message(seq, digest), entry.get("mac")
                )
                if not ok:
                    why = (
                        "names a key id the keyring does not hold"
                        if ok is None
                        else ("fails its MAC")
                    )
                    check.add(
                        "witness-forged",
                        seq,
                        f"{path}:{number}: the witness entry for record {seq} {why}: forged",
                    )
                    continue
            seen[seq] = digest
    return seen


def verify(
    session: Session,
    *,
    keyring: Keyring | None = _FROM_LEDGER,
    witness_files: list[Path] | None = None,
    strict: bool = False,
) -> VerifyResult:
    """Walk the chain from the start and name every way it does not hold: hashes and
    order, each record's MAC (under the key outside the database), the stored head both
    ways against the records, and the newest entry of the external witness.

    Records from before audit keys (no MAC, all before the first signed one) verify as
    "unauthenticated legacy records"; with `strict` they fail.
    """
    ledger = _ledger(session)
    if keyring is _FROM_LEDGER:
        keyring = ledger.keyring if ledger else None
    if witness_files is None:
        own = ledger.witness.file if ledger and ledger.witness else None
        witness_files = [own] if own is not None else []
    head = _stored_head(session)
    check = _Check(head)
    seen = _witnessed(witness_files, keyring, check)
    prev_hash, expected, count, legacy, signed, last_signed = GENESIS, 1, 0, 0, 0, False
    for record in _walk(session):
        seq = record.seq
        if seq != expected:
            check.add(
                "deleted",
                expected,
                f"record {expected} is missing (next is {seq}): deleted or reordered",
            )
        elif record.prev_hash != prev_hash:
            check.add(
                "reordered",
                seq,
                f"record {seq} does not follow record {seq - 1}: "
                "the chain was reordered or a record before it was altered",
            )
        if record_hash(record) != record.hash:
            check.add(
                "edited", seq, f"record {seq} was altered: its content does not match its hash"
            )
        authentic = _check_mac(record, keyring, signed > 0, check)
        last_signed = record.mac is not None
        if last_signed:
            signed += 1
        elif not signed:
            legacy += 1
        if record.action == HEAD_LOST and authentic is not False:
            end = (record.inputs or {}).get("chain_end", {}).get("seq")
            how = (record.inputs or {}).get("stored_head", "missing")
            check.add(
                "head-blanked",
                seq,
                f"record {seq} reports the stored head was {how} when the chain ended at "
                f"record {end}: the newest records before it may have been deleted",
            )
        if seq in seen and seen[seq] != record.hash:
            check.add(
                "witness-mismatch",
                seq,
                f"record {seq} is not the record the witness saw: the chain was rewritten",
            )
        elif seq in seen and not last_signed and keyring is not None:
            check.add(
                "witness-mismatch",
                seq,
                f"record {seq} carries no MAC, but the witness saw it signed: MACs stripped",
            )
        prev_hash, expected, count = record.hash, seq + 1, count + 1
    check.close_run()
    last = expected - 1
    _check_head(head, last, count, prev_hash, keyring, signed > 0, check)
    newest = max(seen, default=None)
    if newest is not None and newest > last:
        check.add(
            "deleted",
            last + 1,
            f"the witness saw record {newest} but the chain ends at {last}: the newest "
            "records were deleted (or the database was restored from an older copy)",
        )
    if signed and keyring is None:
        check.add(
            "key-missing",
            None,
            f"{signed} records are signed but no audit key was given: their MACs, the "
            "head's and the witness's were not checked",
        )
    if strict and legacy:
        check.add(
            "unauthenticated", 1, f"records 1..{legacy} carry no MAC (written before audit keys)"
        )
    found = tuple(check.findings)
    first = found[0] if found else None
    return VerifyResult(
        not found,
        count,
        first.message if first else None,
        first.seq if first else None,
        found,
        legacy,
        signed,
        newest,
    )


def _check_mac(
    record: AuditRecord, keyring: Keyring | None, after_signed: bool, check: _Check
) -> bool | None:
    """True when the record's MAC verifies, False when it does not (recorded), None when
    it has none before any signed record (legacy) or there is no key to check with."""
    if record.mac is None:
        if after_signed:
            check.bad_mac(record.seq, missing=True)
            return False
        return None
    if keyring is None:
        return None
    ok = keyring.check(record.key_id, record_message(str(record.key_id), record.hash), record.mac)
    if ok is None:
        check.add(
            "unknown-key",
            record.seq,
            f"record {record.seq} is signed with key id {record.key_id!r}, which the keyring "
            "does not hold: forged, a rotated-out key removed from the keyring, or a "
            "replica signing with a keyring of its own",
        )
        return False
    if not ok:
        check.bad_mac(record.seq, missing=False)
        return False
    check.close_run()
    return True


def _check_head(
    head: StoredHead | None,
    last: int,
    count: int,
    last_hash: str,
    keyring: Keyring | None,
    any_signed: bool,
    check: _Check,
) -> None:
    """The stored head must be the last record walked, in both directions, and signed."""
    if head is None:
        check.add(
            "head-deleted",
            last or None,
            f"the stored head (meta row {LOCK_KEY!r}) was deleted: nothing vouches for where "
            f"the chain ends (it ends at record {last})",
        )
        return
    if not head.seq:
        if count:
            check.add(
                "head-blanked",
                last,
                f"the stored head is blank although the chain holds {count} records: it was "
                "blanked, and the newest records may have been deleted with it",
            )
        return
    if head.seq > last:
        check.add(
            "deleted",
            last + 1,
            f"record {last + 1} is missing: the chain ends at {last} but its head says "
            f"{head.seq} (the newest records were deleted)",
        )
    elif head.seq < last:
        if not any(f.case == "appended" for f in check.findings):
            check.add(
                "appended",
                head.seq + 1,
                f"records {head.seq + 1}..{last} come after the stored head ({head.seq}): "
                "appended behind Baton's back",
            )
    elif head.hash != last_hash:
        check.add("edited", last, f"record {last} was altered or replaced")
    if keyring is None:
        return
    if head.mac is None:
        if any_signed:
            check.add(
                "head-forged",
                head.seq,
                "the stored head carries no MAC although the records do: it was rewritten "
                "by someone without the audit key",
            )
        return
    ok = keyring.check(head.key_id, head_message(str(head.key_id), head.seq, head.hash), head.mac)
    if not ok:
        why = "names a key id the keyring does not hold" if ok is None else "fails its MAC"
        check.add(
            "head-forged",
            head.seq,
            f"the stored head {why}: it was rewritten by someone without the audit key",
        )


def records(
    session: Session,
    *,
    since: datetime | None = None,
    subject: str | None = None,
    action: str | None = None,
    limit: int = 100,
    after_seq: int = 0,
) -> list[AuditRecord]:
    """Query the ledger, oldest first."""
    query = select(AuditRecord).where(AuditRecord.seq > after_seq).order_by(AuditRecord.seq)
    if since is not None:
        query = query.where(AuditRecord.ts >= since)
    if subject is not None:
        query = query.where(AuditRecord.subject == subject)
    if action is not None:
        query = query.where(AuditRecord.action == action)
    return list(session.scalars(query.limit(limit)))


def to_dict(record: AuditRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "ts": _ts(record.ts),
        "actor": record.actor,
        "actor_kind": record.actor_kind,
        "actor_version": record.actor_version,
        "action": record.action,
        "subject": record.subject,
        "inputs": record.inputs,
        "decision": record.decision,
        "rationale": record.rationale,
        "outcome": record.outcome,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }
