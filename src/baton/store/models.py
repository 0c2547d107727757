"""SQLAlchemy 2 models for Baton's domain words (DESIGN.md §3).

Times are stored as UTC. JSON columns hold labels, evidence and parameters that vary
by source; everything a query filters on is a real column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Always hand back timezone-aware UTC, even from SQLite which forgets the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}


class Meta(Base):
    """Key/value facts about this database (e.g. that a demo created it)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Service(Base):
    __tablename__ = "services"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="service")
    host: Mapped[str | None] = mapped_column(String(128))
    owner: Mapped[str | None] = mapped_column(String(128))
    env: Mapped[str] = mapped_column(String(32), default="prod")
    criticality: Mapped[int] = mapped_column(Integer, default=2)  # 1 = most critical
    user_facing: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where it runs and what it shares: {"hosts": [...], "zone": ..., "shared": bool,
    # "endpoints": [...]}; empty for a catalogue that says nothing of it.
    placement: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dependencies: Mapped[list[ServiceDependency]] = relationship(
        foreign_keys="ServiceDependency.service_id", cascade="all, delete-orphan", lazy="selectin"
    )


class ServiceDependency(Base):
    """`service` needs `depends_on`: edges point upstream."""

    __tablename__ = "service_dependencies"
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on: Mapped[Service] = relationship(foreign_keys=[depends_on_id], lazy="joined")


class Event(Base):
    """A normalised signal, deduplicated by fingerprint while it is active."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(256))
    service: Mapped[str | None] = mapped_column(String(128))
    resource: Mapped[str | None] = mapped_column(String(256))
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    status: Mapped[str] = mapped_column(String(16), default="firing")
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    # Why it did not page, e.g. "silence:3", "maintenance:1", "inhibition:down-masks",
    # "flapping", "transient"; None when it went on to correlation.
    suppressed_by: Mapped[str | None] = mapped_column(String(128))
    held_until: Mapped[datetime | None]  # transient hold: not correlated before this
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    # What the alert is about, resolved from its labels (correlate/entities.py), e.g.
    # "node:ip-10-0-1-7", "workload:shop/cart"; where it runs, when the labels say; and
    # what reported it (an exporter is not what is in trouble).
    entity: Mapped[str | None] = mapped_column(String(256), index=True)
    host: Mapped[str | None] = mapped_column(String(256))
    reporter: Mapped[str | None] = mapped_column(String(128))
    __table_args__ = (Index("ix_events_fingerprint_status", "fingerprint", "status"),)


class InboxBatch(Base):
    """A received batch, committed before the sender got its 2xx and processed later.

    One row per request, not per alert, so acknowledging is one small insert; the rows
    double as the raw-event history, pruned by age and count once processed.
    """

    __tablename__ = "inbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(index=True)
    events: Mapped[str] = mapped_column(Text)  # JSON array of EventIn records
    count: Mapped[int] = mapped_column(Integer)
    group_key: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)  # why processing gave up on it
    # Events processed so far (signals at scale): a big batch is worked through in
    # bounded slices, each committing its effects with the new count.
    done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __table_args__ = (
        Index(
            "ix_inbox_pending",
            "id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
    )


class Incident(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    severity: Mapped[str] = mapped_column(String(16), default="warning", index=True)
    origin_service: Mapped[str | None] = mapped_column(String(128), index=True)
    services: Mapped[list[Any]] = mapped_column(default=list)
    grouping: Mapped[list[Any]] = mapped_column(default=list)
    triaged_origin: Mapped[str | None] = mapped_column(String(128))
    triage_after: Mapped[datetime | None]  # set by a veto: propose again no earlier than this
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]
    origin_set_by: Mapped[str | None] = mapped_column(String(128))  # a person pinned it
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))


class Silence(Base):
    """Mute alerts matching every matcher between starts_at and ends_at (Alertmanager's)."""

    __tablename__ = "silences"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    matchers: Mapped[list[Any]] = mapped_column(default=list)  # ['service="db"', ...]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class MaintenanceWindow(Base):
    """Planned work: alerts matching it are expected and do not page; may recur (RRULE)."""

    __tablename__ = "maintenance_windows"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    matchers: Mapped[list[Any]] = mapped_column(default=list)
    starts_at: Mapped[datetime]  # the first occurrence
    duration_s: Mapped[int] = mapped_column(Integer)
    rrule: Mapped[str | None] = mapped_column(Text)  # RFC 5545, in `timezone` wall time
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    until: Mapped[datetime | None]  # ended early (deleted) or last day
    created_by: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class CorrelationFeedback(Base):
    """A person correcting the correlator (merge, split, origin): labelled data to learn from."""

    __tablename__ = "correlation_feedback"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # merge | split | origin
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    other_incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reporter: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(512))
    body: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(16))
    service: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # the service desk (servicedesk/): who works it, where it came from, its SLA clock
    group: Mapped[str | None] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16), default="api")
    external_ref: Mapped[str | None] = mapped_column(String(256), index=True)
    due_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]  # waiting on the requester: the SLA clock stops
    breached_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    # field -> {"top": [[value, confidence], ...], "model": ..., "version": ...}
    suggestions: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class RunbookRecord(Base):
    """One version (content hash) of a runbook as it was loaded."""

    __tablename__ = "runbooks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    runbook_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(256))
    owner: Mapped[str | None] = mapped_column(String(128))
    risk: Mapped[str] = mapped_column(String(16))
    reversible: Mapped[bool] = mapped_column(Boolean, default=False)
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    loaded_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("runbook_id", "version"),)


class TrackRecord(Base):
    """A runbook's outcomes as learned, kept as running counts so reading them costs the
    same at the millionth run as at the first."""

    __tablename__ = "track_records"
    runbook_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger, default=0)  # succeeded, failed, rolled back
    succeeded: Mapped[int] = mapped_column(BigInteger, default=0)


class Proposal(Base):
    """What triage suggests doing, with evidence; only a proposal until decided."""

    __tablename__ = "proposals"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    runbook_id: Mapped[str] = mapped_column(String(128))
    runbook_version: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    confidence: Mapped[float] = mapped_column(Float)
    rationale: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    proposer: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="new")
    created_at: Mapped[datetime]


class Decision(Base):
    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), index=True)
    tier: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    decided_by: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime]


class Approval(Base):
    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    requested_by: Mapped[str] = mapped_column(String(128))
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    approvers: Mapped[list[Any]] = mapped_column(default=list)
    # everyone the approvals so far speak for: each approver, and whoever minted an
    # approver's token for them (four-eyes counts people, not names; govern/flows.py)
    counted_people: Mapped[list[Any]] = mapped_column(default=list)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # changed by a person, if so
    decided_by: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]


class Execution(Base):
    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_runbook_status", "runbook_id", "status"),
        Index("ix_executions_created_at", "created_at"),
        Index("ix_executions_runbook_created", "runbook_id", "created_at"),
        Index("ix_executions_runbook_finished", "runbook_id", "finished_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    runbook_id: Mapped[str] = mapped_column(String(128))
    runbook_version: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    verified: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    verify_deadline: Mapped[datetime | None]
    not_before: Mapped[datetime | None]  # end of the veto window of an `auto` execution
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[str | None] = mapped_column(Text)
    # Liveness of a running execution: the worker holding it beats; a stale beat means
    # the worker died and another may take the execution over (resume or interrupt).
    worker: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None]
    # The ending its runbook's track record counts (set when learned; a later ending,
    # a person's rollback say, replaces it there).
    learned_as: Mapped[str | None] = mapped_column(String(16))
    steps: Mapped[list[ExecutionStep]] = relationship(
        order_by="ExecutionStep.seq", cascade="all, delete-orphan", lazy="select"
    )


class ExecutionStep(Base):
    __tablename__ = "execution_steps"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    rendered: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class AuditRecord(Base):
    """One link of the tamper-evident audit chain. Never updated, never deleted."""

    __tablename__ = "audit_records"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    ts: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_version: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(128), index=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decision: Mapped[str | None] = mapped_column(Text)
    rationale: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # HMAC-SHA256 of the hash under the key `key_id` (kept outside the database);
    # NULL on records written before audit keys
    key_id: Mapped[str | None] = mapped_column(String(32))
    mac: Mapped[str | None] = mapped_column(String(64))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, the secret is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # who minted it for its user, when that was someone else (an admin over the API);
    # None: its user's own, or made at the host with `baton token create`
    issued_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Override(Base):
    """A human overruling an automation: veto, cancel or roll back, with a reason."""

    __tablename__ = "overrides"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    execution_id: Mapped[int] = mapped_column(ForeignKey("executions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # veto | cancel | rollback
    category: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class EscalationPolicy(Base):
    """Who to wake, in which order, for a service ('*' is the default policy)."""

    __tablename__ = "escalation_policies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service: Mapped[str] = mapped_column(String(128), unique=True)
    levels: Mapped[list[Any]] = mapped_column(default=list)
    ack_timeout_s: Mapped[int] = mapped_column(Integer, default=900)
    updated_at: Mapped[datetime]


class Rotation(Base):
    """A weekly (or other period) on-call rotation; hand-over at `start` + k * period."""

    __tablename__ = "rotations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    services: Mapped[list[Any]] = mapped_column(default=list)
    members: Mapped[list[Any]] = mapped_column(default=list)
    start: Mapped[datetime]
    period_s: Mapped[int] = mapped_column(Integer, default=7 * 24 * 3600)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    updated_at: Mapped[datetime]


class ShiftSwap(Base):
    """A temporary swap: `user` holds the rotation between start and end."""

    __tablename__ = "shift_swaps"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rotation_id: Mapped[int] = mapped_column(ForeignKey("rotations.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column(String(128))
    start: Mapped[datetime]
    end: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)


class Escalation(Base):
    """Something a human must look at, climbing the service's levels until acknowledged."""

    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(String(128), index=True)
    service: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    level: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    notified: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    next_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None]


class NotificationGroup(Base):
    """Incidents a route batches into one notification, and what was last said about them.

    Kept in the database so a restart neither loses a group still waiting out its
    group_wait nor re-sends every group that was already notified.
    """

    __tablename__ = "notification_groups"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # hash of route + group labels
    route: Mapped[str] = mapped_column(String(256))
    receiver: Mapped[str] = mapped_column(String(128))
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the group_by values
    members: Mapped[dict[str, Any]] = mapped_column(default=dict)  # incident id -> summary
    created_at: Mapped[datetime]
    next_flush_at: Mapped[datetime] = mapped_column(index=True)
    last_sent_at: Mapped[datetime | None]
    sent_digest: Mapped[str | None] = mapped_column(String(64))


# --- the service desk (servicedesk/) ---------------------------------------------------
class DeskOption(Base):
    """A value a ticket field may take (category, priority, group): configured data, so
    people and models only ever choose values that exist and are enabled."""

    __tablename__ = "desk_options"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    field: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sla_minutes: Mapped[int | None] = mapped_column(Integer)  # priorities: time to resolve
    __table_args__ = (UniqueConstraint("field", "value"),)


class TicketChange(Base):
    """One field change of a ticket and who or what made it (person, or model+version)."""

    __tablename__ = "ticket_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    field: Mapped[str] = mapped_column(String(16))
    old: Mapped[str | None] = mapped_column(String(256))
    new: Mapped[str | None] = mapped_column(String(256))
    actor: Mapped[str] = mapped_column(String(128))
    actor_kind: Mapped[str] = mapped_column(String(8))
    version: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime]
    reverted_by: Mapped[int | None] = mapped_column(BigInteger)  # the change that undid it


class TicketComment(Base):
    __tablename__ = "ticket_comments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, default=True)  # seen by the requester
    at: Mapped[datetime]


class AnswerDraft(Base):
    """A suggested answer to a requester: goes out only once an agent approves it."""

    __tablename__ = "answer_drafts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    article: Mapped[str | None] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]


class SelfServiceRequest(Base):
    """A password reset, unlock or catalogue request, and its identity check."""

    __tablename__ = "selfservice_requests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    item: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(24), default="verifying")
    code_hash: Mapped[str | None] = mapped_column(String(128))
    code_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# --- triage models (issue 16, part 2): versions, predictions, technicians' corrections ---
class TriageModelVersion(Base):
    """One trained triage model: its pickled pipeline, the rows it learned from (so a
    retrain can add corrections to them) and what training left out. Only one version
    of a name is active; older ones stay so every past prediction can be explained."""

    __tablename__ = "triage_models"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str] = mapped_column(String(32))  # SHA-256 prefix of `blob`
    label: Mapped[str] = mapped_column(String(128))
    text_columns: Mapped[list[Any]] = mapped_column(default=list)
    field_columns: Mapped[list[Any]] = mapped_column(default=list)
    threshold: Mapped[float] = mapped_column(Float)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    training: Mapped[bytes] = mapped_column(LargeBinary)  # zlib'd JSON [[fields, label]...]
    notes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))


class TriagePrediction(Base):
    """What a model said about one subject (e.g. `ticket:42`), with its version."""

    __tablename__ = "triage_predictions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    model_version: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(128), index=True)
    value: Mapped[str | None] = mapped_column(String(256))
    confidence: Mapped[float] = mapped_column(Float)
    top3: Mapped[list[Any]] = mapped_column(default=list)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime]


class TriageCorrection(Base):
    """A technician's value for a field a model predicted or should have: the next
    `baton triage retrain` learns from it (the latest correction of a subject wins)."""

    __tablename__ = "triage_corrections"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    subject: Mapped[str] = mapped_column(String(128))
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    predicted: Mapped[str | None] = mapped_column(String(256))
    value: Mapped[str] = mapped_column(String(256))
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("triage_predictions.id"))
    by: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    learned_in: Mapped[str | None] = mapped_column(String(32))  # model version that used it


# --- learning: the trust ledger's autonomy moves (issue 17) -----------------------------
class TrustMove(Base):
    """A proposed or applied change of one runbook's autonomy in one scope, with the
    evidence it rests on: a promotion waits for a lead; a demotion applies at once."""

    __tablename__ = "trust_moves"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    runbook_id: Mapped[str] = mapped_column(String(128), index=True)
    scope: Mapped[str] = mapped_column(String(160))  # env:prod | service:web
    kind: Mapped[str] = mapped_column(String(16))  # promote | demote
    status: Mapped[str] = mapped_column(String(16), index=True)  # recommended|accepted|...
    from_tier: Mapped[str] = mapped_column(String(16))
    to_tier: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)


class IncidentReview(Base):
    """A post-incident review: what contributed, what was learned, what to do next (the
    timeline itself is read from the audit ledger)."""

    __tablename__ = "incident_reviews"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), unique=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    factors: Mapped[list[Any]] = mapped_column(default=list)
    lessons: Mapped[list[Any]] = mapped_column(default=list)
    follow_ups: Mapped[list[Any]] = mapped_column(default=list)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# --- correlation: candidate indexes (correlate/candidates.py) -----------------------------
# Finding the incidents an alert may join by what it is about, never by scanning the open
# incidents: events by service (and when their trouble was first seen), by host, and an
# inverted index of the words of each incident's alerts.
Index("ix_events_service_first_seen", Event.service, Event.first_seen)
Index("ix_events_host", Event.host)
Index("ix_events_first_seen", Event.first_seen)
Index("ix_incidents_opened_at", Incident.opened_at)


class IncidentTerm(Base):
    """One word of an incident's alerts (name, identifying labels, summary): the inverted
    index that finds, for an alert the graph does not know, the incidents that read alike."""

    __tablename__ = "incident_terms"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    term: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[int] = mapped_column(BigId, ForeignKey("incidents.id"), index=True)
    __table_args__ = (Index("ix_incident_terms_term_incident", "term", "incident_id"),)


# --- the console: passwords and sign-in sessions ---------------------------------------
class Credential(Base):
    """A person's console password, as an scrypt hash with its own salt and cost."""

    __tablename__ = "credentials"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime]


class ConsoleSession(Base):
    """A signed-in browser: only the SHA-256 of its cookie is kept, with its CSRF token."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


# --- learn: KPI indexes (migration 0016) ------------------------------------------------
# The month's runs grouped by day, status and runbook, read from the index alone; and
# Baton's own proposals found by proposer without reading each proposal row.
Index(
    "ix_executions_kpi",
    Execution.created_at,
    Execution.status,
    Execution.runbook_id,
    Execution.verified,
    Execution.decision_id,
)
Index("ix_proposals_proposer", Proposal.proposer)


# --- signals at scale: the durable outbox ------------------------------------------------
class OutboxMessage(Base):
    """A message to deliver, written in the transaction of the change that causes it, so a
    crash between commit and delivery loses none; delivered afterwards, at least once,
    with `key` for the receiver to drop repeats."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # the idempotency key
    kind: Mapped[str] = mapped_column(String(40))  # what it is, e.g. "escalation"
    channel: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)  # next attempt, or a claim's end
    attempts: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None]
