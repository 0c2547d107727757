"""The tamper-evident audit ledger.

Each record carries the hash of the one before it; the hash is SHA-256 over a canonical
JSON encoding of the record's fields. Editing, deleting or reordering any row breaks the
chain at that row, and `verify` names it. The application only ever appends.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from baton.store.models import AuditRecord

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
LOCK_KEY = "audit.lock"


@event.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # savepoints inside the transaction keep the head
        session.info.pop(_HEAD, None)


@event.listens_for(Session, "before_commit")
def _store_head(session: Session) -> None:
    """Record the chain's head beside it, so deleting the newest records shows too."""
    head = session.info.get(_HEAD)
    if head is not None and not session.in_nested_transaction():  # a savepoint's release
        session.execute(
            text("UPDATE meta SET value = :v WHERE key = :k"),
            {"v": f"{head[0]}:{head[1]}", "k": LOCK_KEY},
        )


def serialize(session: Session) -> None:
    """Take the audit chain's lock now (held to commit): writers that check-then-insert
    (execution limits) use it so concurrent transactions cannot both pass a check."""
    if session.info.get(_HEAD) is None:
        session.info[_HEAD] = _lock_chain(session) or _read_head(session)


def _read_head(session: Session) -> tuple[int, str]:
    last = session.execute(
        select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


def _lock_chain(session: Session) -> tuple[int, str] | None:
    """Serialise appends until the caller commits, across threads and processes; return
    the stored head when the lock row holds one.

    Updating one well-known row takes PostgreSQL's row lock and SQLite's write lock,
    both held to the end of the transaction, so no two appends read the same head.
    """
    row = session.execute(
        text("UPDATE meta SET value = value WHERE key = :k RETURNING value"), {"k": LOCK_KEY}
    ).first()
    if row is None:
        raise RuntimeError("the audit chain's lock row is missing; run `baton db upgrade`")
    seq, _, digest = (row[0] or "").partition(":")
    return (int(seq), digest) if seq.isdigit() and digest else None


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
    session.execute(_INSERT, fields)
    session.info[_HEAD] = (fields["seq"], fields["hash"])


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    problem: str | None = None
    broken_seq: int | None = None


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


def verify(session: Session) -> VerifyResult:
    """Walk the chain from the start; report the first record that does not hold."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    for record in _walk(session):
        if record.seq != expected_seq:
            return VerifyResult(
                False,
                count,
                f"record {expected_seq} is missing (next is {record.seq}): deleted or reordered",
                expected_seq,
            )
        if record.prev_hash != prev_hash:
            return VerifyResult(
                False,
                count,
                f"record {record.seq} does not follow record {record.seq - 1}: "
                "the chain was reordered or a record before it was altered",
                record.seq,
            )
        if record_hash(record) != record.hash:
            return VerifyResult(
                False,
                count,
                f"record {record.seq} was altered: its content does not match its hash",
                record.seq,
            )
        prev_hash, expected_seq, count = record.hash, expected_seq + 1, count + 1
    return _check_head(session, count, prev_hash)


def _check_head(session: Session, count: int, last_hash: str) -> VerifyResult:
    """The stored head must be the last record we walked: catches deleted tails."""
    stored = session.scalar(text("SELECT value FROM meta WHERE key = :k"), {"k": LOCK_KEY})
    if not stored:
        return VerifyResult(True, count)
    seq_text, _, head_hash = stored.partition(":")
    head_seq = int(seq_text)
    if head_seq > count:
        first = count + 1
        return VerifyResult(
            False,
            count,
            f"record {first} is missing: the chain ends at {count} but its head says {head_seq} "
            "(the newest records were deleted)",
            first,
        )
    if head_seq == count and head_hash != last_hash:
        return VerifyResult(False, count, f"record {count} was altered or replaced", count)
    return VerifyResult(True, count)


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
