"""Request dependencies: the platform, a session, and the authenticated principal."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from baton.act import secrets
from baton.api.errors import ApiError
from baton.govern.rbac import Permission, Principal, authenticate, hash_token
from baton.kernel.audit import Actor
from baton.kernel.errors import Invalid, Refused
from baton.kernel.shape import check_shape
from baton.runtime.platform import Platform
from baton.sense.signature import verify_slack

TOKEN_CACHE_S = 2.0
TOKEN_CACHE_SIZE = 10_000


async def platform(request: Request) -> Platform:
    return request.app.state.platform


def session(p: Platform = Depends(platform)) -> Iterator[Session]:
    with p.db.session() as s:
        yield s


def credentials(header: str) -> str:
    """The bearer secret in an Authorization header; 401 when there is none."""
    scheme, _, secret = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "unauthorized", "Authorization header must be 'Bearer <token>'")
    return secret.strip()


Known = dict[str, tuple[float, Principal | None]]


def cached(known: Known, secret: str) -> Principal | None:
    """A recently seen token's principal; 401 at once for a recently refused one.

    Senders post many batches a second with the same token; looking it up each time
    would cost a database round trip per request. A token revoked through this API is
    dropped from the cache at once; one revoked elsewhere stops working within
    TOKEN_CACHE_S.
    """
    hit = known.get(hash_token(secret))
    if hit is None or hit[0] <= time.monotonic():
        return None
    if hit[1] is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token")
    return hit[1]


def look_up(known: Known, p: Platform, secret: str) -> Principal:
    """The token's principal from the database (blocking: call it off the event loop)."""
    with p.db.session() as s:
        principal = authenticate(s, secret, p.clock.now())
    if len(known) >= TOKEN_CACHE_SIZE:  # guessed tokens must not grow it without bound
        known.clear()
    known[hash_token(secret)] = (time.monotonic() + TOKEN_CACHE_S, principal)
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token")
    return principal


def _permitted(request: Request, principal: Principal, permission: Permission) -> Principal:
    if not principal.can(permission):
        raise ApiError(
            403,
            "forbidden",
            f"role {principal.role.value!r} lacks the {permission.value!r} permission",
        )
    request.state.principal = principal
    return principal


def forget_tokens(request: Request) -> None:
    """Drop cached principals (after a token is revoked)."""
    request.app.state.principals.clear()


def authorize(request: Request, p: Platform, permission: Permission) -> Principal:
    """The caller, who must hold `permission` (401 without a token, 403 without it)."""
    secret = credentials(request.headers.get("authorization", ""))
    known = request.app.state.principals
    principal = cached(known, secret) or look_up(known, p, secret)
    return _permitted(request, principal, permission)


def require(permission: Permission) -> Callable[..., Any]:
    """Dependency form of `authorize`. The caller was authenticated by `Authenticate`
    before its body was read; this checks the permission (and authenticates itself when
    the app runs without that middleware)."""

    async def check(request: Request, p: Platform = Depends(platform)) -> Principal:
        principal = getattr(request.state, "authenticated", None)
        if principal is None:
            secret = credentials(request.headers.get("authorization", ""))
            known = request.app.state.principals
            principal = cached(known, secret)
            if principal is None:
                principal = await run_in_threadpool(look_up, known, p, secret)
        return _permitted(request, principal, permission)

    check.permission = permission  # type: ignore[attr-defined]  # read by the RBAC matrix test
    return check


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.name, "human", issued_by=principal.issued_by)


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON, with a clear 4xx when it is not.

    Routes take their body through this dependency (declared after the auth check),
    never as a FastAPI body parameter, so an anonymous caller gets 401 before any
    parsing, whatever it sent. Size, rate and memory are bounded by `BodyLimit`.
    """
    return parse_json(await request.body())


def parse_json(body: bytes) -> Any:
    if not body:
        raise ApiError(400, "bad_request", "empty body: expected JSON")
    try:
        value = orjson.loads(body)
        check_shape(value)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "bad_request", f"malformed JSON: {exc}") from None
    except Invalid as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return value


def parsed(model: Any) -> Callable[..., Any]:
    """Dependency: the JSON body validated as `model`; 422 naming the first bad field."""
    adapter = TypeAdapter(model)

    def validate(payload: Any = Depends(json_body)) -> Any:
        try:
            return adapter.validate_python(payload)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "body"
            raise ApiError(422, "invalid", f"{loc}: {err['msg']}") from None

    validate.body_model = model  # type: ignore[attr-defined]  # the contract declares it
    return validate


def verified_slack(request: Request, body: bytes, key: str, now: float) -> None:
    """401 unless the request carries Slack's signature of `body` within the replay
    window (every Slack door: events, button clicks, slash commands)."""
    try:
        verify_slack(
            body,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
            key,
            now,
        )
    except Refused as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None


def slack_signing_key(p: Platform) -> str:
    """The Slack app's signing secret, by the NAME the settings give; Slack sends no
    bearer token, so without it nothing can authenticate a Slack request (401)."""
    name = p.settings.slack_signing_secret
    if not name:
        raise ApiError(401, "unauthorized", "Slack requests are off: no signing secret is set")
    try:
        return secrets.resolve([name])[f"secret.{name}"]
    except KeyError:
        raise ApiError(503, "unavailable", "the Slack signing secret is not set") from None
