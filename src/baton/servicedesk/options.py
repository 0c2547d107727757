"""The values ticket fields may take, as configured data.

People and models both choose from here, so a model can never invent a category, and
disabling a value takes it out of everyone's hands at once. A fresh desk gets a small
default set; `set_option` changes it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.errors import Invalid
from baton.store.models import DeskOption

FIELDS = ("category", "priority", "group")
DEFAULTS: dict[str, dict[str, int | None]] = {
    "category": {
        "access": None,
        "email": None,
        "network": None,
        "storage": None,
        "application": None,
        "other": None,
    },
    # priority -> minutes to resolve
    "priority": {"critical": 60, "high": 240, "normal": 1440, "low": 4320},
    "group": {
        "service-desk": None,
        "identity": None,
        "network": None,
        "storage": None,
        "applications": None,
        "messaging": None,
    },
}


def ensure_defaults(session: Session) -> None:
    """Seed the default options once, on a desk that has none."""
    if session.scalar(select(DeskOption.id).limit(1)) is not None:
        return
    for field, values in DEFAULTS.items():
        for value, minutes in values.items():
            session.add(DeskOption(field=field, value=value, enabled=True, sla_minutes=minutes))
    session.flush()


def enabled(session: Session, field: str) -> dict[str, DeskOption]:
    ensure_defaults(session)
    rows = session.scalars(
        select(DeskOption).where(DeskOption.field == field, DeskOption.enabled.is_(True))
    )
    return {o.value: o for o in rows}


def check(session: Session, field: str, value: str | None) -> None:
    """Refuse a value that does not exist or is disabled (None clears the field)."""
    if field not in FIELDS or value is None:
        return
    if value not in enabled(session, field):
        raise Invalid(f"{field} {value!r} is not an enabled option", field)


def sla_minutes(session: Session, priority: str | None) -> int | None:
    option = enabled(session, "priority").get(priority or "")
    return option.sla_minutes if option else None


def set_option(
    session: Session, field: str, value: str, enabled_: bool, sla: int | None = None
) -> DeskOption:
    if field not in FIELDS:
        raise Invalid(f"field must be one of {FIELDS}", "field")
    value = value.strip()
    if not value or len(value) > 64:
        raise Invalid("value must be 1-64 characters", "value")
    ensure_defaults(session)
    option = session.scalar(
        select(DeskOption).where(DeskOption.field == field, DeskOption.value == value)
    )
    if option is None:
        option = DeskOption(field=field, value=value)
        session.add(option)
    option.enabled = enabled_
    if sla is not None:
        option.sla_minutes = sla
    session.flush()
    return option


def listing(session: Session) -> list[DeskOption]:
    ensure_defaults(session)
    return list(session.scalars(select(DeskOption).order_by(DeskOption.field, DeskOption.id)))
