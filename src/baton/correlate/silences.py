"""Silences and maintenance windows: people saying "alerts like these are expected now".

A silence is one-off (Alertmanager's: matchers, start, end, author, comment). A
maintenance window is planned work that may recur: an RRULE evaluated in the window's own
time zone, so "Sundays 02:00 Europe/Berlin" stays at 02:00 local across DST changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.correlate.matchers import parse_all
from baton.kernel.audit import Actor, append
from baton.kernel.clock import UtcDatetime
from baton.store.models import MaintenanceWindow, Silence


def _matchers(texts: list[str]) -> list[str]:
    parse_all(texts)
    return texts


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[str] = Field(min_length=1, max_length=20)
    starts_at: UtcDatetime | None = None  # default: now
    ends_at: UtcDatetime
    comment: str = Field(min_length=1, max_length=2000)

    _check = field_validator("matchers")(_matchers)


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    matchers: list[str] = Field(min_length=1, max_length=20)
    starts_at: UtcDatetime
    duration_s: int = Field(ge=60, le=7 * 86400)
    rrule: str | None = Field(default=None, max_length=500)
    timezone: str = "UTC"
    comment: str = Field(min_length=1, max_length=2000)

    _check = field_validator("matchers")(_matchers)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _rule(self) -> MaintenanceIn:
        if self.rrule is not None:
            try:
                _rule(self.rrule, self.starts_at, self.timezone)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"rrule: {exc}") from None
        return self


def _created(
    session: Session,
    kind: str,
    row: Any,
    view: Callable[[Any], dict[str, Any]],
    actor: Actor,
    at: datetime,
    comment: str | None,
) -> None:
    """Store a new silence or window and record who made it and why."""
    session.add(row)
    session.flush()
    append(
        session,
        actor=actor,
        action=f"{kind}.created",
        subject=f"{kind}:{row.id}",
        at=at,
        inputs=view(row),
        decision="created",
        rationale=comment,
    )


def create_silence(session: Session, data: SilenceIn, actor: Actor, at: datetime) -> Silence:
    starts = data.starts_at or at
    if data.ends_at <= max(starts, at):
        raise ValueError("ends_at: must be after starts_at and in the future")
    silence = Silence(
        matchers=data.matchers,
        starts_at=starts,
        ends_at=data.ends_at,
        created_by=actor.name,
        comment=data.comment,
        created_at=at,
    )
    _created(session, "silence", silence, silence_dict, actor, at, data.comment)
    return silence


def expire_silence(session: Session, silence_id: int, actor: Actor, at: datetime) -> Silence:
    silence = session.get(Silence, silence_id)
    if silence is None:
        raise LookupError(f"no silence {silence_id}")
    if silence.ends_at > at:
        silence.ends_at = max(at, silence.starts_at)
        append(
            session,
            actor=actor,
            action="silence.expired",
            subject=f"silence:{silence.id}",
            at=at,
            decision="expired",
        )
    return silence


def list_silences(session: Session, at: datetime, active_only: bool = False) -> list[Silence]:
    query = select(Silence).order_by(Silence.id.desc())
    if active_only:
        query = query.where(Silence.starts_at <= at, Silence.ends_at > at)
    return list(session.scalars(query.limit(500)))


def active_silences(session: Session, at: datetime) -> list[Silence]:
    query = select(Silence).where(Silence.starts_at <= at, Silence.ends_at > at)
    return list(session.scalars(query.order_by(Silence.id)))


def _rule(text: str, first: datetime, zone: str) -> rrule:
    local = first.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return rrulestr(text, dtstart=local, forceset=False, ignoretz=True)  # type: ignore[return-value]


def occurrence_at(window: MaintenanceWindow, at: datetime) -> datetime | None:
    """The start (UTC) of the occurrence of `window` that covers `at`, if any.

    Occurrences are generated in wall-clock time of the window's zone and only then
    turned into instants, which is what keeps a recurring window at the same local hour
    on both sides of a DST change.
    """
    if at < window.starts_at or (window.until is not None and at >= window.until):
        return None
    length = timedelta(seconds=window.duration_s)
    if not window.rrule:
        return window.starts_at if at < window.starts_at + length else None
    zone = ZoneInfo(window.timezone)
    rule = _rule(window.rrule, window.starts_at, window.timezone)
    local_now = at.astimezone(zone).replace(tzinfo=None)
    for start in reversed(
        rule.between(local_now - length - timedelta(days=1), local_now, inc=True)
    ):
        begins = start.replace(tzinfo=zone).astimezone(UTC)
        if begins <= at < begins + length:
            return begins
    return None


def create_window(
    session: Session, data: MaintenanceIn, actor: Actor, at: datetime
) -> MaintenanceWindow:
    window = MaintenanceWindow(
        name=data.name,
        matchers=data.matchers,
        starts_at=data.starts_at,
        duration_s=data.duration_s,
        rrule=data.rrule,
        timezone=data.timezone,
        created_by=actor.name,
        comment=data.comment,
        created_at=at,
    )
    _created(session, "maintenance", window, window_dict, actor, at, data.comment)
    return window


def end_window(session: Session, window_id: int, actor: Actor, at: datetime) -> MaintenanceWindow:
    window = session.get(MaintenanceWindow, window_id)
    if window is None:
        raise LookupError(f"no maintenance window {window_id}")
    if window.until is None or window.until > at:
        window.until = at
        append(
            session,
            actor=actor,
            action="maintenance.ended",
            subject=f"maintenance:{window.id}",
            at=at,
            decision="ended",
        )
    return window


def list_windows(session: Session) -> list[MaintenanceWindow]:
    return list(session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.id.desc())))


def open_windows(session: Session, at: datetime) -> list[MaintenanceWindow]:
    """Windows that have begun and not ended; `occurrence_at` says if one covers `at`."""
    query = select(MaintenanceWindow).where(
        MaintenanceWindow.starts_at <= at,
        MaintenanceWindow.until.is_(None) | (MaintenanceWindow.until > at),
    )
    return list(session.scalars(query.order_by(MaintenanceWindow.id)))


def silence_dict(s: Silence) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": s.matchers,
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "created_by": s.created_by,
        "comment": s.comment,
    }


def window_dict(w: MaintenanceWindow) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "matchers": w.matchers,
        "starts_at": w.starts_at.isoformat(),
        "duration_s": w.duration_s,
        "rrule": w.rrule,
        "timezone": w.timezone,
        "until": w.until.isoformat() if w.until else None,
        "created_by": w.created_by,
        "comment": w.comment,
    }
