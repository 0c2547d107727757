"""Roles, permissions and API tokens.

Roles are what people are given; permissions are what endpoints and commands check.
Tokens are random 256-bit secrets shown once; only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.errors import Invalid, NotFound
from baton.store.models import ApiToken, User


class Role(StrEnum):
    VIEWER = "viewer"
    TECHNICIAN = "technician"
    LEAD = "lead"
    ADMIN = "admin"
    INGEST = "ingest"


class Permission(StrEnum):
    READ = "read"  # see incidents, tickets, runbooks, executions, KPIs
    INGEST = "ingest"  # post signals (alerts, events, tickets)
    OPERATE = "operate"  # acknowledge, approve/reject, pause automation
    GOVERN = "govern"  # accountable for AI operations: policy, resume, audit
    ADMIN = "admin"  # tokens and users


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.TECHNICIAN: frozenset({Permission.READ, Permission.INGEST, Permission.OPERATE}),
    Role.LEAD: frozenset(
        {Permission.READ, Permission.INGEST, Permission.OPERATE, Permission.GOVERN}
    ),
    Role.ADMIN: frozenset(Permission),
    Role.INGEST: frozenset({Permission.INGEST}),
}

LAST_USED_GRANULARITY = timedelta(minutes=1)
TOKEN_PREFIX = "bt_"  # noqa: S105 - a public marker, not a secret


def parse_role(value: str) -> Role:
    """The Role named `value`, or ValueError listing the valid ones."""
    try:
        return Role(value)
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise Invalid(f"unknown role {value!r}; valid roles: {valid}", "role") from None


def allows(role: Role | str, permission: Permission) -> bool:
    return permission in GRANTS.get(Role(role), frozenset())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the user its token belongs to, and who minted that token
    when it was someone else (who has seen the secret too)."""

    name: str
    role: Role
    token_id: int | None = None
    issued_by: str | None = None

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)


def create_token(
    session: Session, *, name: str, role: str, at: datetime, issued_by: str | None = None
) -> tuple[ApiToken, str]:
    """Create a token for user `name` (created if new); return the row and the secret.

    `issued_by` is the person minting it over the API; when that is not `name`, the
    token speaks for both of them (see govern/flows.py `approve`). Tokens made at the
    host (`baton token create`) have none: host access is the root of trust."""
    parsed = parse_role(role)
    if not name or len(name) > 128 or not name.isprintable():
        raise Invalid("must be 1-128 printable characters", "name")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, role=parsed.value, created_at=at)
        session.add(user)
        session.flush()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        role=parsed.value,
        prefix=secret[len(TOKEN_PREFIX) :][:8],
        token_hash=hash_token(secret),
        user_id=user.id,
        issued_by=issued_by if issued_by != name else None,
        created_at=at,
    )
    session.add(token)
    session.flush()
    return token, secret


def authenticate(session: Session, secret: str, at: datetime) -> Principal | None:
    """The principal for a presented token, or None if unknown or revoked."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or token.revoked_at is not None:
        return None
    if token.last_used_at is None or at - token.last_used_at > LAST_USED_GRANULARITY:
        token.last_used_at = at  # coarse on purpose: reads should not all become writes
    return Principal(
        name=token.name, role=Role(token.role), token_id=token.id, issued_by=token.issued_by
    )


def revoke_token(session: Session, token_id: int, at: datetime) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no token with id {token_id}")
    token.revoked_at = token.revoked_at or at
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))
