"""Request body size limit, applied before any route sees the body.

Content-Length is checked first; a chunked or lying body is counted as it arrives and
refused as soon as it passes the limit, so no route ever buffers more than the limit.
"""

from __future__ import annotations

from typing import Any

import orjson

from baton.api.errors import error_body

Scope = dict[str, Any]


class BodyLimit:
    def __init__(self, app: Any, limit: Any) -> None:
        self.app = app
        self.limit = limit  # a callable, so tests and settings can change it at run time

    async def _refuse(self, send: Any) -> None:
        body = orjson.dumps(
            error_body("payload_too_large", f"body exceeds the {self.limit()}-byte limit")
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # disconnect: let the app see it
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)
