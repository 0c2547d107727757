"""What a request body may cost before any route sees it: size, time and memory.

Content-Length is checked first; a chunked or lying body is counted as it arrives and
refused as soon as it passes the size limit. A body must keep arriving at a minimum rate
(after a short grace), so a client trickling bytes cannot hold a connection and its
buffer for ever (408). All bodies being received share one memory budget: past it a
request is answered 503 with Retry-After instead of the process growing without bound.
Authentication (`authn.Authenticate`) runs before this, so none of it is spent on a
caller without a valid token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from baton.api.errors import send_error

Scope = dict[str, Any]
NO_BODY = ("GET", "HEAD", "OPTIONS", "DELETE")


@dataclass(frozen=True)
class BodyRules:
    max_bytes: int
    min_rate_bps: int
    grace_s: float
    budget_bytes: int


class Budget:
    """Bytes held by bodies being received or handled, across all requests (one loop)."""

    def __init__(self) -> None:
        self.held = 0
        self.peak = 0  # the most ever held at once: what the slow-client test measures

    def take(self, size: int, limit: int) -> bool:
        if self.held + size > limit:
            return False
        self.held += size
        self.peak = max(self.peak, self.held)
        return True

    def give(self, size: int) -> None:
        self.held -= size


class BodyLimit:
    def __init__(self, app: Any, rules: Callable[[], BodyRules], budget: Budget) -> None:
        self.app = app
        self.rules = rules  # a callable, so tests and settings can change it at run time
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in NO_BODY:
            await self.app(scope, receive, send)
            return
        rules = self.rules()
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > rules.max_bytes:
            await _too_large(send, rules)
            return
        held = 0
        try:
            chunks: list[bytes] = []
            started, more = time.monotonic(), True
            while more:
                # by now at least `held` bytes at min_rate, after the grace
                left = started + rules.grace_s + held / rules.min_rate_bps - time.monotonic()
                try:
                    async with asyncio.timeout(max(left, 0)):
                        message = await receive()
                except TimeoutError:
                    await send_error(
                        send,
                        408,
                        "request_timeout",
                        f"body arrived slower than {rules.min_rate_bps} bytes/s",
                        {"Connection": "close"},
                    )
                    return
                if message["type"] != "http.request":
                    await self.app(scope, receive, send)  # disconnect: let the app see it
                    return
                chunk = message.get("body", b"")
                if held + len(chunk) > rules.max_bytes:
                    await _too_large(send, rules)
                    return
                if not self.budget.take(len(chunk), rules.budget_bytes):
                    await send_error(
                        send,
                        503,
                        "unavailable",
                        "too many request bodies in flight; retry shortly",
                        {"Retry-After": "1", "Connection": "close"},
                    )
                    return
                held += len(chunk)
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            chunks.clear()
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
        finally:
            self.budget.give(held)


async def _too_large(send: Any, rules: BodyRules) -> None:
    await send_error(
        send,
        413,
        "payload_too_large",
        f"body exceeds the {rules.max_bytes}-byte limit",
        {"Connection": "close"},
    )
