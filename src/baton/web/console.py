"""The console's plumbing: templates, sign-in sessions, CSRF, security headers.

Sessions are HttpOnly, SameSite=Strict cookies (Secure behind TLS) naming a row of
`console_sessions`; each session has its own CSRF token that every form posts back.
The Content-Security-Policy allows only Baton's own scripts and styles, none inline, so
hostile alert text that slipped past escaping still could not run.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from baton.govern import killswitch
from baton.govern.rbac import Permission, Principal
from baton.govern.signin import find_session
from baton.kernel.audit import Actor
from baton.kernel.errors import BatonError, Invalid
from baton.runtime.platform import Platform

PREFIX = "/console"
COOKIE = "baton_session"
SIGNIN_COOKIE = "baton_signin"
HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html", "svg"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class SignInNeeded(Exception):
    """No valid session: the browser is sent to the sign-in page."""


class Forbidden(Exception):
    def __init__(self, principal: Principal, permission: Permission) -> None:
        super().__init__(f"role {principal.role.value!r} lacks the {permission.value!r} permission")


@dataclass(frozen=True)
class Viewer:
    """The signed-in person on this request, with their session's CSRF token."""

    principal: Principal
    csrf: str
    secret: str

    @property
    def actor(self) -> Actor:
        return Actor(self.principal.name, "human")

    def can(self, permission: str) -> bool:
        return self.principal.can(Permission(permission))


@dataclass(frozen=True)
class Posted:
    """A checked form post: who sent it and its fields."""

    v: Viewer
    form: FormData

    def text(self, name: str) -> str:
        return str(self.form.get(name) or "").strip()

    def reason(self) -> str:
        """The reason a person gave: required, as the API requires it."""
        reason = self.text("reason")[:2000]
        if not reason:
            raise Invalid("give a reason", "reason")
        return reason

    def ids(self, name: str) -> list[int]:
        return [int(x) for x in self.form.getlist(name) if str(x).isdigit()]


class CsrfMismatch(Exception):
    """A form post without this session's CSRF token: refused whatever it asks."""


def platform_of(request: Request) -> Platform:
    return request.app.state.platform


def _look_up(p: Platform, secret: str) -> Viewer | None:
    with p.db.session() as s:
        found = find_session(s, secret, p.clock.now())
        return Viewer(found[0], found[1].csrf, secret) if found else None


async def viewer(request: Request) -> Viewer:
    """The signed-in person (sign-in page otherwise); they must be allowed to read."""
    secret = request.cookies.get(COOKIE, "")
    found = await run_in_threadpool(_look_up, platform_of(request), secret) if secret else None
    if found is None:
        raise SignInNeeded()
    return _allowed(found, Permission.READ)


def _allowed(v: Viewer, permission: Permission) -> Viewer:
    if not v.principal.can(permission):
        raise Forbidden(v.principal, permission)
    return v


def acting(permission: Permission) -> Callable[..., Any]:
    """Dependency for a form post: signed in, holding `permission`, with the session's
    CSRF token in the form. Returns (viewer, form fields)."""

    async def check(request: Request, v: Viewer = Depends(viewer)) -> Posted:
        form = await request.form()
        if not hmac.compare_digest(str(form.get("csrf") or ""), v.csrf):
            raise CsrfMismatch()
        return Posted(_allowed(v, permission), form)

    return check


def secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded == "https"


def render(
    request: Request, name: str, v: Viewer | None, code: int = 200, **context: Any
) -> HTMLResponse:
    p = platform_of(request)
    paused: list[dict[str, str]] = []
    if v is not None:
        with p.db.session() as s:
            paused = killswitch.details(s)
    html = templates.get_template(name).render(
        request=request, v=v, paused=paused, prefix=PREFIX, **context
    )
    return HTMLResponse(html, status_code=code, headers=SECURITY_HEADERS)


def done(to: str) -> RedirectResponse:
    """After a successful post: back to a page (303, so a reload does not post again)."""
    return RedirectResponse(PREFIX + to, status_code=303, headers=SECURITY_HEADERS)


def attempt(request: Request, v: Viewer, fn: Callable[[], Any], to: str) -> Response:
    """Run a command; show its refusal as a page naming the reason instead of a trace."""
    try:
        fn()
    except (BatonError, LookupError, ValueError) as exc:
        status = 404 if isinstance(exc, LookupError) else 409
        return render(request, "error.html", v, code=status, message=str(exc), back=to)
    return done(to)


router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/incidents", failed: bool = False) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "sign_in.html", None, signin_token=token, next=_local(next), failed=failed
    )
    _cookie(response, request, SIGNIN_COOKIE, token, max_age=600)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    field = {k: str(form.get(k) or "") for k in ("name", "password", "signin", "next")}
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(field["signin"], expected):
        return HTMLResponse("sign-in form expired: reload it", 403, headers=SECURITY_HEADERS)
    opened = await run_in_threadpool(
        platform_of(request).commands.sign_in, field["name"], field["password"]
    )
    if opened is None:
        where = f"{PREFIX}/sign-in?failed=1&next={quote(_local(field['next']))}"
        return RedirectResponse(where, status_code=303, headers=SECURITY_HEADERS)
    response = RedirectResponse(
        PREFIX + _local(field["next"]), status_code=303, headers=SECURITY_HEADERS
    )
    _cookie(response, request, COOKIE, opened[0], max_age=12 * 3600)
    response.delete_cookie(SIGNIN_COOKIE, path=PREFIX)
    return response


@router.post("/sign-out")
def sign_out(request: Request, post: Posted = Depends(acting(Permission.READ))) -> Response:
    v = post.v
    platform_of(request).commands.sign_out(v.secret, v.actor)
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


def _local(path: str) -> str:
    """Only a path inside the console may follow sign-in (no open redirect)."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/incidents"
    return path


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
