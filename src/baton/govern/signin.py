"""Console sign-in: passwords and browser sessions.

Passwords are stored as scrypt hashes (memory-hard, in the standard library) with a
random salt and the cost parameters beside them, so the cost can rise later without
breaking old hashes. A session is a random 256-bit cookie secret of which only the
SHA-256 is kept, with its own CSRF token; the role is read from the user at each
request, so a changed role applies at once. The permission check is rbac's, the same
one the API makes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.govern.rbac import Principal, Role, hash_token, parse_role
from baton.kernel.errors import Invalid
from baton.store.models import ConsoleSession, Credential, User

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 12
SESSION_TTL = timedelta(hours=12)


def hash_password(password: str, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024
    )
    enc = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${enc(salt).decode()}${enc(digest).decode()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


# spent on unknown names too, so timing does not tell which names exist
_DECOY = hash_password(secrets.token_urlsafe(16))


def set_password(
    session: Session, name: str, role: str | None, password: str, at: datetime
) -> User:
    """Give `name` a console password (creating the user with `role` if new)."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"must be at least {MIN_PASSWORD} characters", "password")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        if role is None:
            raise Invalid(f"no user {name!r}: give a role to create one", "role")
        if not name or len(name) > 128 or not name.isprintable():
            raise Invalid("must be 1-128 printable characters", "name")
        user = User(name=name, role=parse_role(role).value, created_at=at)
        session.add(user)
        session.flush()
    elif role is not None:
        user.role = parse_role(role).value
    cred = session.get(Credential, user.id)
    if cred is None:
        session.add(
            Credential(user_id=user.id, password_hash=hash_password(password), updated_at=at)
        )
    else:
        cred.password_hash, cred.updated_at = hash_password(password), at
    return user


def check_password(session: Session, name: str, password: str) -> User | None:
    """The user when `password` is theirs; None otherwise (same work either way)."""
    user = session.scalar(select(User).where(User.name == name))
    cred = session.get(Credential, user.id) if user is not None else None
    if cred is None:
        password_matches(password, _DECOY)
        return None
    return user if password_matches(password, cred.password_hash) else None


def open_session(session: Session, user: User, at: datetime) -> tuple[str, ConsoleSession]:
    """A new browser session; returns the cookie secret (shown once) and the row."""
    secret = secrets.token_urlsafe(32)
    row = ConsoleSession(
        secret_hash=hash_token(secret),
        user_id=user.id,
        csrf=secrets.token_urlsafe(32),
        created_at=at,
        expires_at=at + SESSION_TTL,
    )
    session.add(row)
    session.flush()
    return secret, row


def find_session(
    session: Session, secret: str, at: datetime
) -> tuple[Principal, ConsoleSession] | None:
    """The principal and session of a cookie, or None when unknown, closed or expired."""
    if not secret:
        return None
    row = session.scalar(
        select(ConsoleSession).where(ConsoleSession.secret_hash == hash_token(secret))
    )
    if row is None or row.closed_at is not None or row.expires_at <= at:
        return None
    user = session.get(User, row.user_id)
    if user is None:
        return None
    return Principal(name=user.name, role=Role(user.role)), row


def close_session(session: Session, secret: str, at: datetime) -> ConsoleSession | None:
    row = session.scalar(
        select(ConsoleSession).where(ConsoleSession.secret_hash == hash_token(secret))
    )
    if row is not None and row.closed_at is None:
        row.closed_at = at
    return row
