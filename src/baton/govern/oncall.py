"""On-call rotations and escalation policies: "who is on call for S now" is one call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.govern.audit import Actor, append
from baton.runtime.clock import UtcDatetime
from baton.store.models import EscalationPolicy, OncallOverride, Rotation

DEFAULT = "*"  # the escalation policy for services without their own
WEEK_S = 7 * 24 * 3600


class RotationIn(BaseModel):
    """A rotation: `members` take turns, handing over at `start` + k x `period_s`."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    services: list[str] = Field(min_length=1)
    members: list[str] = Field(min_length=1)
    start: UtcDatetime
    period_s: int = Field(default=WEEK_S, ge=3600)


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targets: list[str] = Field(min_length=1, description="users, or 'oncall' for the rotation")
    delay_s: int = Field(default=900, ge=0, description="wait before the next level")
    channels: list[str] = Field(default_factory=list, description="webhook:URL, slack:URL, ...")


class EscalationPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: str = Field(min_length=1, max_length=128)
    levels: list[LevelIn] = Field(min_length=1)
    ack_timeout_s: int = Field(default=900, ge=60, description="unacknowledged incident → escalate")


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rotation: str
    user: str = Field(min_length=1, max_length=128)
    start: UtcDatetime
    end: UtcDatetime
    reason: str | None = None


@dataclass(frozen=True)
class OnCall:
    service: str
    user: str | None
    rotation: str | None
    source: str  # rotation | override | nobody
    until: datetime | None


def put_rotation(session: Session, data: RotationIn, actor: Actor, at: datetime) -> Rotation:
    row = session.scalar(select(Rotation).where(Rotation.name == data.name)) or Rotation(
        name=data.name
    )
    row.services, row.members = list(data.services), list(data.members)
    row.start, row.period_s, row.updated_at = data.start, data.period_s, at
    session.add(row)
    session.flush()
    append(
        session,
        actor=actor,
        action="oncall.rotation",
        subject=f"rotation:{row.name}",
        at=at,
        inputs=data.model_dump(mode="json"),
        decision="saved",
    )
    return row


def put_policy(
    session: Session, data: EscalationPolicyIn, actor: Actor, at: datetime
) -> EscalationPolicy:
    row = session.scalar(
        select(EscalationPolicy).where(EscalationPolicy.service == data.service)
    ) or EscalationPolicy(service=data.service)
    row.levels = [level.model_dump() for level in data.levels]
    row.ack_timeout_s, row.updated_at = data.ack_timeout_s, at
    session.add(row)
    session.flush()
    append(
        session,
        actor=actor,
        action="oncall.escalation_policy",
        subject=f"service:{data.service}",
        at=at,
        inputs=data.model_dump(mode="json"),
        decision="saved",
    )
    return row


def add_override(session: Session, data: OverrideIn, actor: Actor, at: datetime) -> OncallOverride:
    rotation = session.scalar(select(Rotation).where(Rotation.name == data.rotation))
    if rotation is None:
        raise LookupError(f"no rotation {data.rotation!r}")
    if data.end <= data.start:
        raise ValueError("an on-call override must end after it starts")
    row = OncallOverride(
        rotation_id=rotation.id, user=data.user, start=data.start, end=data.end, reason=data.reason
    )
    session.add(row)
    session.flush()
    append(
        session,
        actor=actor,
        action="oncall.override",
        subject=f"rotation:{rotation.name}",
        at=at,
        inputs=data.model_dump(mode="json"),
        decision=f"{data.user} holds it",
    )
    return row


def _rotation_for(session: Session, service: str) -> Rotation | None:
    rotations = list(session.scalars(select(Rotation).order_by(Rotation.id)))
    return next((r for r in rotations if service in r.services), None) or next(
        (r for r in rotations if DEFAULT in r.services), None
    )


def who_is_on_call(session: Session, service: str, at: datetime) -> OnCall:
    """The person holding `service`'s pager at `at`: an override wins over the rotation."""
    rotation = _rotation_for(session, service)
    if rotation is None:
        return OnCall(service, None, None, "nobody", None)
    override = session.scalar(
        select(OncallOverride)
        .where(
            OncallOverride.rotation_id == rotation.id,
            OncallOverride.start <= at,
            OncallOverride.end > at,
        )
        .order_by(OncallOverride.id.desc())
    )
    if override is not None:
        return OnCall(service, override.user, rotation.name, "override", override.end)
    elapsed = (at - rotation.start).total_seconds()
    if elapsed < 0:
        return OnCall(service, None, rotation.name, "nobody", rotation.start)
    turn = int(elapsed // rotation.period_s)
    until = rotation.start.timestamp() + (turn + 1) * rotation.period_s
    return OnCall(
        service,
        rotation.members[turn % len(rotation.members)],
        rotation.name,
        "rotation",
        datetime.fromtimestamp(until, UTC),
    )


def policy_for(session: Session, service: str | None) -> EscalationPolicy | None:
    return session.scalar(
        select(EscalationPolicy).where(EscalationPolicy.service == (service or DEFAULT))
    ) or session.scalar(select(EscalationPolicy).where(EscalationPolicy.service == DEFAULT))


def to_dict(o: OnCall) -> dict[str, Any]:
    return {
        "service": o.service,
        "user": o.user,
        "rotation": o.rotation,
        "source": o.source,
        "until": o.until,
    }
