"""On-call rotations and escalation policies: "who is on call for S now" is one call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.audit import Actor, append
from baton.kernel.clock import UtcDatetime
from baton.kernel.errors import Invalid, NotFound
from baton.store.models import EscalationPolicy, Rotation, ShiftSwap

DEFAULT = "*"  # the escalation policy and rotation for services without their own
WEEK_S = 7 * 24 * 3600
DEFAULT_ACK_TIMEOUT_S = 900
# A channel is a kind and a name; its address (a webhook URL, which is a secret, or mail
# recipients) comes from BATON_CHANNEL_<NAME> at delivery.
CHANNEL = r"^(slack|webhook|email):[A-Za-z0-9_-]{1,64}$"


class RotationIn(BaseModel):
    """Members take turns, handing over at `start` + k x `period_s` in local wall time."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    services: list[str] = Field(min_length=1)
    members: list[str] = Field(min_length=1)
    start: UtcDatetime
    period_s: int = Field(default=WEEK_S, ge=3600, le=366 * 24 * 3600)
    timezone: str = Field(default="UTC", description="IANA zone the hand-over time keeps")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targets: list[str] = Field(min_length=1, description="users, or 'oncall' for the rotation")
    delay_s: int = Field(
        default=DEFAULT_ACK_TIMEOUT_S, ge=0, le=86400, description="wait before the next level"
    )
    channels: list[str] = Field(
        default_factory=list, description="slack:NAME, webhook:NAME or email:NAME"
    )

    @field_validator("channels")
    @classmethod
    def _named(cls, channels: list[str]) -> list[str]:
        bad = [c for c in channels if not re.fullmatch(CHANNEL, c)]
        if bad:
            raise ValueError(
                f"{bad[0]!r}: use slack:NAME, webhook:NAME or email:NAME; the URL or "
                "mail addresses go in the BATON_CHANNEL_<NAME> environment variable"
            )
        return channels


class EscalationPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: str = Field(min_length=1, max_length=128)
    levels: list[LevelIn] = Field(min_length=1, max_length=10)
    ack_timeout_s: int = Field(
        default=DEFAULT_ACK_TIMEOUT_S,
        ge=60,
        le=86400,
        description="unacknowledged incident → escalate",
    )


class ShiftSwapIn(BaseModel):
    """Someone holds a rotation's pager for a while instead of the scheduled person."""

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
    source: str  # rotation | swap | nobody
    until: datetime | None


def _upsert(session: Session, model: Any, key: str, value: str) -> Any:
    row = session.scalar(select(model).where(getattr(model, key) == value))
    return row if row is not None else model(**{key: value})


def put_rotation(session: Session, data: RotationIn, actor: Actor, at: datetime) -> Rotation:
    row = _upsert(session, Rotation, "name", data.name)
    row.services, row.members = list(data.services), list(data.members)
    row.start, row.period_s, row.timezone, row.updated_at = (
        data.start,
        data.period_s,
        data.timezone,
        at,
    )
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


def put_escalation_policy(
    session: Session, data: EscalationPolicyIn, actor: Actor, at: datetime
) -> EscalationPolicy:
    row = _upsert(session, EscalationPolicy, "service", data.service)
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


def add_swap(session: Session, data: ShiftSwapIn, actor: Actor, at: datetime) -> ShiftSwap:
    rotation = session.scalar(select(Rotation).where(Rotation.name == data.rotation))
    if rotation is None:
        raise NotFound(f"no rotation {data.rotation!r}")
    if data.end <= data.start:
        raise Invalid("a shift swap must end after it starts", "end")
    row = ShiftSwap(
        rotation_id=rotation.id, user=data.user, start=data.start, end=data.end, reason=data.reason
    )
    session.add(row)
    session.flush()
    append(
        session,
        actor=actor,
        action="oncall.swap",
        subject=f"rotation:{rotation.name}",
        at=at,
        inputs=data.model_dump(mode="json"),
        decision=f"{data.user} holds it",
    )
    return row


def _rotation_for(session: Session, service: str) -> Rotation | None:
    """The service's own rotation (lowest id if several), else the default one."""
    rows = list(session.scalars(select(Rotation).order_by(Rotation.id)))
    return next((r for r in rows if service in r.services), None) or next(
        (r for r in rows if DEFAULT in r.services), None
    )


def _turn(rotation: Rotation, at: datetime) -> tuple[int, datetime]:
    """Whose turn it is at `at` and when it ends, counted in the rotation's wall time so
    a 09:00 hand-over stays at 09:00 across daylight-saving changes."""
    zone = ZoneInfo(rotation.timezone or "UTC")
    start = rotation.start.astimezone(zone).replace(tzinfo=None)
    now = at.astimezone(zone).replace(tzinfo=None)
    turn = int((now - start).total_seconds() // rotation.period_s)
    until = (start + timedelta(seconds=(turn + 1) * rotation.period_s)).replace(tzinfo=zone)
    return turn, until.astimezone(UTC)


def who_is_on_call(session: Session, service: str, at: datetime) -> OnCall:
    """The person holding `service`'s pager at `at`: a shift swap wins over the rotation."""
    rotation = _rotation_for(session, service)
    if rotation is None:
        return OnCall(service, None, None, "nobody", None)
    return _holder(session, rotation, service, at)


def everyone_on_call(session: Session, at: datetime) -> list[OnCall]:
    """Who holds each rotation's pager now (for "who is on call?" without a service)."""
    rotations = session.scalars(select(Rotation).order_by(Rotation.name))
    return [_holder(session, r, ", ".join(r.services), at) for r in rotations]


def _holder(session: Session, rotation: Rotation, service: str, at: datetime) -> OnCall:
    swap = session.scalar(
        select(ShiftSwap)
        .where(
            ShiftSwap.rotation_id == rotation.id,
            ShiftSwap.start <= at,
            ShiftSwap.end > at,
        )
        .order_by(ShiftSwap.id.desc())
    )
    if swap is not None:
        return OnCall(service, swap.user, rotation.name, "swap", swap.end)
    if at < rotation.start:
        return OnCall(service, None, rotation.name, "nobody", rotation.start)
    turn, until = _turn(rotation, at)
    return OnCall(
        service, rotation.members[turn % len(rotation.members)], rotation.name, "rotation", until
    )


def escalation_policy_for(session: Session, service: str | None) -> EscalationPolicy | None:
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
